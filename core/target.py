"""Where the swap model runs, as the settings name it: hardware of this machine ("cpu",
"cuda:0", see core.devices) or an inference server ("triton://HOST:PORT", core.triton).
One type answers what the engine asks about either, so a second kind of server changes
this module, not its callers."""

from __future__ import annotations

from dataclasses import dataclass

from core import triton


@dataclass(frozen=True)
class Target:
    """A settings device string and what follows from it."""

    device: str = "cpu"

    @property
    def served(self) -> bool:
        """Whether the swap model runs on an inference server rather than here."""
        return triton.is_server(self.device)

    @property
    def local(self) -> str:
        """The device of this machine for the models that always run here beside the swap
        model (detection, landmarks, hands, the recogniser, an inswapper's embedder)."""
        return triton.LOCAL_DEVICE if self.served else self.device
