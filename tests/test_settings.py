"""SwapSettings: validation and the CLI's NAME=VALUE overrides."""

from dataclasses import fields

import pytest

from core.settings import SwapSettings, field_types


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


@pytest.mark.parametrize("pair, message", [
    ("blur=-5", "blur=-5.0; must be within"),
    ("opacity=7", "opacity=7.0; must be within"),
    ("morph=3", "morph=3.0; must be within"),
    ("face_scale=0", "face_scale=0.0; must be within"),
    ("detect_interval=0", "detect_interval=0; must be within 1..300"),
    ("threads=-2", "threads=-2; must be within 0..64"),
    ("threads=100000", "threads=100000; must be within 0..64"),
])
def test_out_of_range_values_are_refused_up_front(pair, message):
    with pytest.raises(ValueError, match=message):
        SwapSettings().with_pairs([pair])


def test_negative_erode_is_a_dilation_and_allowed():
    assert SwapSettings(erode=-5.0).erode == -5.0


def test_field_types_cover_every_setting_with_its_value_type():
    types = field_types()
    assert list(types) == [f.name for f in fields(SwapSettings)]
    assert set(types.values()) <= {bool, int, float, str}
    assert types["label"] is bool and types["threads"] is int and types["erode"] is float
    assert types["model"] is str
