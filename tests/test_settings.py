"""SwapSettings: validation and the CLI's NAME=VALUE overrides."""

import pytest

from core.settings import SwapSettings


def test_pairs_are_typed_per_field():
    s = SwapSettings().with_pairs(["mask=hull", "erode=2.5", "detect_interval=4", "label=off",
                                   "keep-eyes=yes"])
    assert (s.mask, s.erode, s.detect_interval, s.label, s.keep_eyes) == ("hull", 2.5, 4, False,
                                                                           True)


@pytest.mark.parametrize("pair, message", [
    ("nonsense=1", "expected NAME=VALUE"),
    ("erode", "expected NAME=VALUE"),
    ("erode=wide", "not a float"),
    ("label=maybe", "not a bool"),
    ("mask=oval", "mask='oval'"),
    ("faces=biggest", "faces='biggest'"),
])
def test_bad_pairs_name_the_problem(pair, message):
    with pytest.raises(ValueError, match=message):
        SwapSettings().with_pairs([pair])


def test_unknown_field_in_with_changes_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        SwapSettings().with_changes(colour="red")
