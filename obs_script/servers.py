"""The script's "Inference servers" setting: NVIDIA Triton servers (core.triton) a filter can
run its swap network on. Each valid line becomes an entry of every filter's Device list;
frames go only to servers listed here or typed as a device, never to one discovered."""

from __future__ import annotations

from collections.abc import Iterable

from core import triton


class Servers:
    """The configured servers and the mistakes in their lines."""

    def __init__(self) -> None:
        self.devices: list[str] = []  # "triton://HOST:PORT", in the order given
        self.errors: list[str] = []

    def set_lines(self, lines: Iterable[str]) -> None:
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
        self.devices, self.errors = devices, errors


SERVERS = Servers()  # one per OBS process, like the model catalog
