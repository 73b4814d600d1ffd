"""The script's hotkeys (Settings > Hotkeys, saved with the script): toggle swap on/off, next
and previous model. They act on the Face Swap filters of the sources now on program (all
filters when none is)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from obs_script import libobs as L
from obs_script import obsdata

HOTKEYS = {"face_swap.toggle": "Face Swap: toggle swap on/off",
           "face_swap.next_model": "Face Swap: next model",
           "face_swap.previous_model": "Face Swap: previous model"}


def step_model(names: list[str], current: str, step: int) -> str:
    """The model `step` places after `current` in `names`, wrapping around."""
    if not names:
        raise ValueError("no models to step through")
    index = names.index(current) if current in names else (-1 if step > 0 else 0)
    return names[(index + step) % len(names)]


class Hotkeys:
    """The hotkeys' actions; `live()` is registration.live_instances."""

    def __init__(self, live: Callable[[], AbstractContextManager[list]]) -> None:
        self.live = live

    @staticmethod
    def on_program(filters: list) -> list:
        """The filters whose source is on program output, or every filter if none is."""
        shown = [f for f in filters if L.obs_source_active(L.obs_filter_get_parent(f.source))]
        return shown or filters

    def toggle(self) -> None:
        with self.live() as filters:
            for flt in self.on_program(filters):
                L.obs_source_set_enabled(flt.source, not L.obs_source_enabled(flt.source))

    def step(self, step: int) -> None:
        from obs_script.catalog import CATALOG  # scanned in the background, not on the UI

        names = CATALOG.swapper_names()
        if names is None:
            L.log(L.LOG_INFO, "model list still being scanned: try the hotkey again")
            return
        with self.live() as filters:
            for flt in self.on_program(filters):
                model = step_model(names, flt.settings.model, step)
                obsdata.update_source(flt.source, model=model)

    def actions(self) -> dict[str, Callable[[], None]]:
        return {"face_swap.toggle": self.toggle,
                "face_swap.next_model": lambda: self.step(1),
                "face_swap.previous_model": lambda: self.step(-1)}
