"""Execution targets: which devices this machine can run models on, and how to ask for one.

Device strings are what users and settings carry: "cpu", "cuda:N", "tensorrt:N", "dml:N",
"coreml". A requested device that is not usable resolves to the CPU *with a reason*, so the
caller can show why it is not running where the user asked (no silent CPU fallback).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from dataclasses import dataclass

import onnxruntime as ort

from core.errors import FaceSwapError
from core.target import Target

DEVICE_KINDS = ("cpu", "cuda", "tensorrt", "dml", "coreml")
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
_KIND_OF_PROVIDER = {v: k for k, v in PROVIDERS.items()}


class DeviceError(FaceSwapError):
    """A device string that names no known kind of device (e.g. "gpu0")."""


@dataclass(frozen=True)
class Device:
    """One execution target, named the way a user can recognise it."""

    id: str  # "cpu", "cuda:0", ...: what settings and the CLI carry
    kind: str  # one of DEVICE_KINDS
    index: int
    name: str  # human-readable, e.g. "NVIDIA GeForce RTX 3060"
    memory_mb: int | None = None
    provider: str = ""  # onnxruntime execution provider name

    @property
    def label(self) -> str:
        """One line for a dropdown: "cuda:0  NVIDIA RTX 3060 (12288 MB)"."""
        memory = f" ({self.memory_mb} MB)" if self.memory_mb else ""
        return f"{self.id}  {self.name}{memory}"

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "index": self.index, "name": self.name,
                "memory_mb": self.memory_mb, "provider": self.provider}


@dataclass(frozen=True)
class Placement:
    """Where a session will run: the device used and, if it differs from the request, why."""

    requested: str
    device: Device
    reason: str = ""  # empty when the requested device is the one used


def parse_device(text: str) -> tuple[str, int]:
    """"cuda:1" -> ("cuda", 1); "cuda" -> ("cuda", 0). Raises DeviceError on anything else."""
    if not isinstance(text, str):
        raise ValueError(f"device must be a string, got {type(text).__name__}")
    value = text.strip().lower()
    kind, _, index = value.partition(":")
    if kind not in DEVICE_KINDS:
        raise DeviceError(f"unknown device {text!r}; expected cpu, cuda:N, tensorrt:N, dml:N "
                          "or coreml")
    if not index:
        return kind, 0
    if not index.isdigit() or kind in ("cpu", "coreml") and index != "0":
        raise DeviceError(f"bad device index in {text!r}; expected e.g. {kind}:0")
    return kind, int(index)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


def _cuda_driver_gpus() -> list[tuple[str, int]]:
    """(name, memory MB) of each CUDA GPU from the driver library; [] when there is no driver."""
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    found = ctypes.util.find_library("cuda")
    if found:
        names.append(found)
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return []
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    gpus = []
    total_mem = getattr(lib, "cuDeviceTotalMem_v2", None) or lib.cuDeviceTotalMem
    for i in range(count.value):
        handle = ctypes.c_int(0)
        if lib.cuDeviceGet(ctypes.byref(handle), i) != 0:
            continue
        buf = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(buf, 256, handle)
        memory = ctypes.c_size_t(0)
        total_mem(ctypes.byref(memory), handle)
        gpus.append((buf.value.decode(errors="replace") or f"CUDA GPU {i}",
                     memory.value // (1 << 20)))
    return gpus


def _ep_devices(provider: str) -> list:
    """onnxruntime's own device list for one provider (plugin EPs, ORT >= 1.22); [] if none."""
    get = getattr(ort, "get_ep_devices", None)
    if get is None:
        return []
    try:
        return [d for d in get() if d.ep_name == provider]
    except Exception:  # an EP library that fails to enumerate must not hide the others
        return []


def _tensorrt_present() -> bool:
    """onnxruntime-gpu always lists its TensorRT provider; usable only with TensorRT's
    library (libnvinfer, e.g. from the `tensorrt` wheel) loadable."""
    if sys.platform == "win32":
        names = [f"nvinfer_{v}.dll" for v in (10, 9, 8)] + ["nvinfer.dll"]
    else:
        names = [f"libnvinfer.so.{v}" for v in (10, 9, 8)] + ["libnvinfer.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _gpu_devices(kind: str, available: set[str]) -> list[Device]:
    """CUDA / TensorRT devices: driver names and memory, confirmed by onnxruntime's providers."""
    provider = PROVIDERS[kind]
    ep_devices = _ep_devices(provider)
    if provider not in available and not ep_devices:
        return []
    if kind == "tensorrt" and not _tensorrt_present():
        return []
    driver = _cuda_driver_gpus()
    count = len(driver) or len(ep_devices)
    devices = []
    for i in range(count):
        name, memory = driver[i] if i < len(driver) else (None, None)
        if name is None and i < len(ep_devices):
            meta = dict(ep_devices[i].device.metadata)
            name = meta.get("Description") or f"{ep_devices[i].device.vendor} GPU {i}"
        label = f"{name} (TensorRT)" if kind == "tensorrt" else name
        devices.append(Device(f"{kind}:{i}", kind, i, label, memory, provider))
    return devices


def _dml_devices(available: set[str]) -> list[Device]:
    provider = PROVIDERS["dml"]
    ep_devices = _ep_devices(provider)
    if ep_devices:
        devices = []
        for i, d in enumerate(ep_devices):
            meta = dict(d.device.metadata)
            name = meta.get("Description") or f"{d.device.vendor} adapter {i}"
            devices.append(Device(f"dml:{i}", "dml", i, name, None, provider))
        return devices
    if provider in available:
        return [Device("dml:0", "dml", 0, "default DirectML adapter", None, provider)]
    return []


@functools.cache
def list_devices() -> tuple[Device, ...]:
    """Every usable execution target, CPU first. Cached: hardware does not change at run time."""
    available = set(ort.get_available_providers())
    import os

    devices = [Device("cpu", "cpu", 0, f"{_cpu_name()} ({os.cpu_count() or 1} threads)", None,
                      PROVIDERS["cpu"])]
    devices += _gpu_devices("cuda", available)
    devices += _gpu_devices("tensorrt", available)
    if sys.platform == "win32" or PROVIDERS["dml"] in available:
        devices += _dml_devices(available)
    if PROVIDERS["coreml"] in available or _ep_devices(PROVIDERS["coreml"]):
        devices.append(Device("coreml", "coreml", 0, "Apple CoreML (Neural Engine / GPU)", None,
                              PROVIDERS["coreml"]))
    return tuple(devices)


def cpu_device() -> Device:
    return list_devices()[0]


def resolve(requested: str) -> Placement:
    """The device a session for `requested` will use; the CPU with a reason if unavailable."""
    kind, index = parse_device(requested)
    if kind == "cpu":
        return Placement(requested, cpu_device())
    devices = list_devices()
    for device in devices:
        if device.kind == kind and device.index == index:
            return Placement(requested, device)
    same_kind = [d.id for d in devices if d.kind == kind]
    if same_kind:
        reason = f"{requested} not found (this machine has {', '.join(same_kind)})"
    elif PROVIDERS[kind] not in ort.get_available_providers():
        reason = (f"{PROVIDERS[kind]} is not available in this onnxruntime build "
                  f"({ort.get_device()}, providers: {', '.join(ort.get_available_providers())})")
    elif kind == "tensorrt" and not _tensorrt_present():
        reason = "TensorRT's libraries (libnvinfer) are not installed"
    else:
        driver = " (NVIDIA driver: libcuda)" if kind in ("cuda", "tensorrt") else ""
        reason = f"onnxruntime has {PROVIDERS[kind]} but no {kind} device answered{driver}"
    return Placement(requested, cpu_device(), f"{requested} unavailable, using CPU: {reason}")


def kind_of_provider(provider: str) -> str:
    """"CUDAExecutionProvider" -> "cuda"; unknown providers map to their own name."""
    return _KIND_OF_PROVIDER.get(provider, provider)


_PROVIDER_WORDS = {"cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "tensorrt": "NVIDIA GPU (TensorRT)",
                   "dml": "GPU (DirectML)", "coreml": "Apple CoreML"}


def provider_words(provider: str, threads: int) -> str:
    """A provider as a streamer reads it: "CPU, 2 threads", "NVIDIA GPU (CUDA)"."""
    kind = kind_of_provider(provider)
    if kind == "cpu":
        return f"CPU, {threads} thread{'s' if threads != 1 else ''}"
    return _PROVIDER_WORDS.get(kind, provider or "-")


def device_note(requested: str, provider: str) -> str:
    """Why work asked for `requested` is not running there ("" when it is): shown by every
    host so a CPU fallback is never silent. `provider` is the session's active provider."""
    if Target(requested).served:
        return ""  # no fallback: a server that does not answer is an error (core.triton)
    try:
        placement = resolve(requested)
    except FaceSwapError as exc:
        return str(exc)
    if placement.reason:
        return placement.reason
    wanted = PROVIDERS[placement.device.kind]
    if provider and provider.endswith("ExecutionProvider") and provider != wanted:
        return f"{requested} requested but the model runs on {provider}"
    return ""
