"""Per-model presets: what a user tunes for one .dfm comes back when that model is chosen.

DeepFaceLive keeps its swapper's settings per model; its users expect to tune a model once.
A preset holds the settings in PRESET_FIELDS (the crop framing, what the model is given and
gives back, morph) under the model's name: a registry name, or the file name without its
extension for a path, so a model keeps its preset whether it is chosen by name or by path
and wherever its folder is (renaming the file starts a new preset, as in DeepFaceLive).
Choosing a model with no preset brings the defaults of these settings, never another
model's values.

Presets are JSON: {"model name": {"setting": value, ...}, ...}. The OBS filter keeps them in
its settings (so they are saved with the scene collection); the command line reads them
from a file (`--presets FILE`).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from core.errors import InputError
from core.modelfiles import MODEL_SUFFIXES
from core.settings import SwapSettings, field_types

PRESET_FIELDS = ("morph", "face_coverage", "align_x_offset", "align_y_offset",
                 "exclude_moving_parts", "head_mode", "freeze_z_rotation", "presharpen",
                 "pre_gamma_r", "pre_gamma_g", "pre_gamma_b", "post_gamma_r", "post_gamma_g",
                 "post_gamma_b", "two_pass")
_DEFAULTS = SwapSettings()


def model_key(model: str) -> str:
    """The name a model's preset is kept under."""
    text = model.strip()
    path = Path(text)
    if text.startswith("persona:") or path.suffix.lower() not in MODEL_SUFFIXES:
        return text
    return path.stem


def values_of(settings: SwapSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in PRESET_FIELDS}


class Presets:
    """Model name -> its preset values."""

    def __init__(self, entries: dict[str, dict[str, object]] | None = None) -> None:
        self.entries: dict[str, dict[str, object]] = {}
        for model, values in (entries or {}).items():
            self.entries[model] = _checked(model, values)

    @classmethod
    def from_json(cls, text: str, source: str = "presets") -> Presets:
        """Parsed presets; InputError naming `source` and the problem when they are not."""
        if not text.strip():
            return cls()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise InputError(f"{source} must be a JSON object of model name -> settings")
        try:
            return cls(data)
        except ValueError as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def read(cls, path: str | Path) -> Presets:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read presets file {path}: {exc}") from None
        return cls.from_json(text, f"presets file {path}")

    def to_json(self) -> str:
        return json.dumps(self.entries, sort_keys=True)

    def recall(self, settings: SwapSettings) -> SwapSettings:
        """`settings` with its model's preset, or these settings' defaults when it has none."""
        stored = self.entries.get(model_key(settings.model))
        return settings.with_changes(**(stored if stored is not None
                                        else values_of(_DEFAULTS)))

    def remember(self, settings: SwapSettings) -> bool:
        """Keep `settings`' preset values for its model; True when that changed anything."""
        key, values = model_key(settings.model), values_of(settings)
        if self.entries.get(key) == values:
            return False
        self.entries[key] = values
        return True


def _checked(model: str, values: dict[str, object]) -> dict[str, object]:
    """A preset's values typed as the settings are, or ValueError naming the bad one."""
    types = field_types()
    unknown = set(values) - set(PRESET_FIELDS)
    if unknown:
        raise ValueError(f"model {model!r}: {', '.join(sorted(unknown))} cannot be in a preset "
                         f"(only {', '.join(PRESET_FIELDS)})")
    typed: dict[str, object] = {}
    for name, value in values.items():
        kind = types[name]
        if kind is bool and not isinstance(value, bool) or \
                kind is not bool and (isinstance(value, bool) or
                                      not isinstance(value, (int, float))):
            raise ValueError(f"model {model!r}: {name}={value!r} is not a {kind.__name__}")
        typed[name] = kind(value)
    SwapSettings().with_changes(**typed)  # ranges (ValueError naming the setting)
    return typed


assert set(PRESET_FIELDS) <= {f.name for f in fields(SwapSettings)}
