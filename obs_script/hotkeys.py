"""The script's hotkeys (Settings > Hotkeys, saved with the script): toggle the swap, privacy
now, enrol the face in view, next and previous model. Toggle, enrol and the model keys act
on the Face Swap filters of the sources now on program (all filters when none is); privacy
now on every filter.

No key can put the real face on stream in a privacy mode: there the toggle switches between
the swap and the privacy view (the whole source covered), never to the raw source; only a
filter set to "show the real face" is switched off and on. "Privacy now" is the panic key:
it covers every source with a Face Swap filter (switching on filters that were off), and
uncovers them on the next press."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from obs_script import enrolment, obsdata
from obs_script import libobs as L

HOTKEYS = {"face_swap.toggle": "Face Swap: toggle swap on/off (privacy mode: swap / cover)",
           "face_swap.privacy_now": "Face Swap: privacy now (cover every source / uncover)",
           "face_swap.enrol_now": "Face Swap: enrol the face in view (filters swapping only "
                                  "enrolled people)",
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
                if flt.settings.on_lost == "original":
                    L.obs_source_set_enabled(flt.source, not L.obs_source_enabled(flt.source))
                elif not L.obs_source_enabled(flt.source):
                    flt.covered = False  # a privacy-mode filter switched off: swap again
                    L.obs_source_set_enabled(flt.source, True)
                else:
                    flt.covered = not flt.covered

    def privacy_now(self) -> None:
        with self.live() as filters:
            cover = not all(f.covered and L.obs_source_enabled(f.source) for f in filters)
            for flt in filters:
                flt.covered = cover
                if cover:
                    L.obs_source_set_enabled(flt.source, True)

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

    def enrol_now(self) -> None:
        with self.live() as filters:
            for flt in self.on_program(filters):
                if flt.settings.faces == "enrolled":
                    enrolment.enrol_view(flt)

    def actions(self) -> dict[str, Callable[[], None]]:
        return {"face_swap.toggle": self.toggle,
                "face_swap.privacy_now": self.privacy_now,
                "face_swap.enrol_now": self.enrol_now,
                "face_swap.next_model": lambda: self.step(1),
                "face_swap.previous_model": lambda: self.step(-1)}
