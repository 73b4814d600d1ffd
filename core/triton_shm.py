"""System shared memory between this process and a Triton server on the same machine.

When the server runs on this host (a second GPU process, a local studio box), the crop and
the outputs need not travel through gRPC messages: two shared memory regions per session
(inputs, outputs) are registered with the server once and every request only names them.
A server that refuses registration (PyTriton restricts it by default) or restarts without
them is talked to over the network instead, and registration is tried again next time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import weakref
from collections.abc import Sequence

import numpy as np

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_ids = itertools.count(1)


def fixed_shape(shape: Sequence[int | None]) -> list[int] | None:
    """The shape of one request: a leading dynamic (batch) size is 1; None if another size
    is dynamic (the regions could not be sized in advance)."""
    dims = [1 if i == 0 and d is None else d for i, d in enumerate(shape)]
    return None if any(d is None for d in dims) else [int(d) for d in dims]


def _release(client, regions: list[tuple[str, object]]) -> None:
    import tritonclient.utils.shared_memory as shm

    for name, handle in regions:
        with contextlib.suppress(Exception):  # a server that is gone has forgotten it
            client.unregister_system_shared_memory(name)
        with contextlib.suppress(Exception):
            shm.destroy_shared_memory_region(handle)


class SharedMemory:
    """An input region and an output region sized for one request of a model."""

    def __init__(self, client, inputs: list, outputs: list) -> None:
        import tritonclient.utils.shared_memory as shm

        self.client = client
        self.in_shapes = [fixed_shape(a.shape) for a in inputs]
        self.out_shapes = [fixed_shape(a.shape) for a in outputs]
        self.out_args = outputs
        self.in_sizes = [int(np.prod(s)) * np.dtype(a.dtype).itemsize
                         for s, a in zip(self.in_shapes, inputs, strict=True)]
        self.out_sizes = [int(np.prod(s)) * np.dtype(a.dtype).itemsize
                          for s, a in zip(self.out_shapes, outputs, strict=True)]
        tag = f"face_swap_{os.getpid()}_{next(_ids)}"
        self.names = (f"{tag}_in", f"{tag}_out")
        self.handles = (
            shm.create_shared_memory_region(self.names[0], f"/{self.names[0]}",
                                            sum(self.in_sizes)),
            shm.create_shared_memory_region(self.names[1], f"/{self.names[1]}",
                                            sum(self.out_sizes)))
        self.registered = False
        self._finalizer = weakref.finalize(self, _release, client,
                                           list(zip(self.names, self.handles, strict=True)))

    @classmethod
    def create(cls, client, host: str, inputs: list, outputs: list) -> SharedMemory | None:
        """Regions for a model on a server on this host, or None where they cannot serve."""
        if host not in LOCAL_HOSTS:
            return None
        if any(fixed_shape(a.shape) is None for a in [*inputs, *outputs]):
            return None
        try:
            memory = cls(client, inputs, outputs)
        except Exception:  # no /dev/shm, or the platform's shared memory is not POSIX
            return None
        return memory if memory.register() else (memory.close() or None)

    def register(self) -> bool:
        """Register both regions with the server (again after it restarted)."""
        for name, size in zip(self.names, (sum(self.in_sizes), sum(self.out_sizes)),
                              strict=True):
            try:
                self.client.unregister_system_shared_memory(name)
                self.client.register_system_shared_memory(name, f"/{name}", size)
            except Exception:
                self.registered = False
                return False
        self.registered = True
        return True

    def fits(self, arrays: list[np.ndarray]) -> bool:
        return [a.nbytes for a in arrays] == self.in_sizes

    def attach(self, requests: list, arrays: list[np.ndarray], wanted: list) -> None:
        """Write the inputs into the region and point the requests at the regions."""
        import tritonclient.utils.shared_memory as shm

        shm.set_shared_memory_region(self.handles[0], arrays)
        offset = 0
        for request, size in zip(requests, self.in_sizes, strict=True):
            request.set_shared_memory(self.names[0], size, offset)
            offset += size
        offset = 0
        for output, size in zip(wanted, self.out_sizes, strict=True):
            output.set_shared_memory(self.names[1], size, offset)
            offset += size

    def outputs(self) -> list[np.ndarray]:
        """Copies of the outputs the server wrote into the output region."""
        import tritonclient.utils.shared_memory as shm

        found, offset = [], 0
        for arg, shape, size in zip(self.out_args, self.out_shapes, self.out_sizes,
                                    strict=True):
            view = shm.get_contents_as_numpy(self.handles[1], arg.dtype, shape, offset)
            found.append(np.array(view, copy=True))
            offset += size
        return found

    def close(self) -> None:
        self._finalizer()
