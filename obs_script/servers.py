"""The script's "Inference servers" setting: NVIDIA Triton servers (core.triton) a filter can
run its swap network on. Each valid line becomes an entry of every filter's Device list and
the models each one serves entries of its Model list (asked with the model scan, off the UI
thread); frames go only to servers listed here or typed as a device, never to one
discovered."""

from __future__ import annotations

from collections.abc import Iterable

from core import registry, triton
from core.errors import FaceSwapError


def parse_lines(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """"triton://HOST:PORT" lines -> the devices (in the order given, once each) and one
    message per line that is not a server address."""
    devices, errors = [], []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            device = triton.parse(text).device
        except triton.ServerError as exc:
            errors.append(str(exc))
            continue
        if device not in devices:
            devices.append(device)
    return devices, errors


class Servers:
    """The configured servers and the mistakes in their lines."""

    def __init__(self) -> None:
        self.devices: list[str] = []  # "triton://HOST:PORT", in the order given
        self.errors: list[str] = []
        # device -> the models it lists (identified: usable or why not), or why none
        self.listed: dict[str, list[registry.ModelEntry] | str] = {}

    def set_lines(self, lines: Iterable[str]) -> None:
        self.devices, self.errors = parse_lines(lines)

    def list_models(self) -> None:
        """Ask every server for the models it serves: network, up to each one's request
        timeout, so never on the UI thread (the model scan calls it)."""
        listed: dict[str, list[registry.ModelEntry] | str] = {}
        for device in self.devices:
            try:
                listed[device] = registry.scan_server(device)
            except FaceSwapError as exc:
                listed[device] = str(exc)
        self.listed = listed

    def serving(self) -> dict[str, tuple[registry.ModelEntry, list[str]]]:
        """Model name -> (its entry, the servers that list it) from the last listing."""
        names: dict[str, tuple[registry.ModelEntry, list[str]]] = {}
        for device, listed in self.listed.items():
            for entry in listed if isinstance(listed, list) else ():
                names.setdefault(entry.name, (entry, []))[1].append(device)
        return names


SERVERS = Servers()  # one per OBS process, like the model catalog
