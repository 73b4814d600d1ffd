"""Per-model presets (core.presets) and `--presets` on the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import DATA
from doubles import build_dfm, save

from core.cli import main
from core.errors import InputError
from core.presets import PRESET_FIELDS, Presets, model_key
from core.settings import SwapSettings


def test_a_model_is_known_by_its_name_however_it_is_chosen():
    assert model_key("double_224") == "double_224"
    assert model_key("/models/sub/double_224.dfm") == model_key("double_224")
    assert model_key("C:/x/inswapper_128.onnx") == "inswapper_128"
    assert model_key("persona:default") == "persona:default"


def test_recall_brings_the_models_values_or_the_defaults():
    presets = Presets({"double_224": {"face_coverage": 3.0, "two_pass": True}})
    tuned = presets.recall(SwapSettings(model="/any/where/double_224.dfm", erode=7.0))
    assert tuned.face_coverage == 3.0 and tuned.two_pass and tuned.erode == 7.0
    other = presets.recall(SwapSettings(model="other", face_coverage=5.0, presharpen=2.0))
    defaults = SwapSettings()
    assert all(getattr(other, n) == getattr(defaults, n) for n in PRESET_FIELDS)
    assert other.model == "other"


def test_remember_keeps_the_values_and_says_when_they_changed():
    presets = Presets()
    settings = SwapSettings(model="double_224", morph=0.4)
    assert presets.remember(settings) and not presets.remember(settings)
    assert presets.remember(settings.with_changes(morph=0.5))
    again = Presets.from_json(presets.to_json())
    assert again.recall(SwapSettings(model="double_224")).morph == 0.5
    assert set(again.entries["double_224"]) == set(PRESET_FIELDS)


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object of model name -> settings"),
    ('{"m": {"erode": 3}}', "erode cannot be in a preset"),
    ('{"m": {"two_pass": "yes"}}', "two_pass='yes' is not a bool"),
    ('{"m": {"face_coverage": true}}', "is not a float"),
    ('{"m": {"presharpen": 99}}', "presharpen=99"),
])
def test_bad_presets_are_one_line_errors(text, needle):
    with pytest.raises(InputError, match=needle) as caught:
        Presets.from_json(text, "presets file p.json")
    assert "\n" not in str(caught.value) and "p.json" in str(caught.value)


def test_presets_file_on_the_command_line(tmp_path, capsys):
    """--presets applies the chosen model's preset (as --set would), --set comes after it, a
    bad file is one line and exit 2."""
    model = save(build_dfm(224), tmp_path / "double_224.dfm")
    presets = tmp_path / "presets.json"
    presets.write_text(json.dumps({"double_224": {"align_x_offset": 0.15,
                                                  "post_gamma_r": 1.5}}))
    photo = str(DATA / "astronaut.png")

    def swap(name: str, *extra: str) -> np.ndarray:
        out = tmp_path / f"{name}.png"
        assert main(["swap", photo, "-o", str(out), "--model", str(model), *extra]) == 0
        return cv2.imread(str(out)).astype(int)

    preset = swap("preset", "--presets", str(presets))
    by_hand = swap("by_hand", "--set", "align_x_offset=0.15", "--set", "post_gamma_r=1.5")
    plain = swap("plain")
    np.testing.assert_array_equal(preset, by_hand)
    assert (np.abs(preset - plain).max(axis=2) > 20).sum() > 1000
    overridden = swap("overridden", "--presets", str(presets), "--set", "align_x_offset=0",
                      "--set", "post_gamma_r=1")
    np.testing.assert_array_equal(overridden, plain)
    capsys.readouterr()
    presets.write_text('{"double_224": {"mask": "hull"}}')
    assert main(["swap", photo, "-o", str(tmp_path / "x.png"), "--model", str(model),
                 "--presets", str(presets)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mask cannot be in a preset" in err[0]
