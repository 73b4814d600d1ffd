"""onnxruntime sessions: one cache per process, keyed by (model file, device, options).

Every session knows the provider it actually runs on and, when that is not the device the
caller asked for, the reason; `session_info(session)` gives both, so a CPU fallback is
always visible. Loading is serialised per key only, so a big model loading in the
background never blocks a small one that another thread needs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core import devices, triton
from core.errors import ModelFileError, one_line
from core.modelfiles import file_version
from core.target import Target

SPIN = os.environ.get("OBS_FACE_SWAP_ORT_SPIN", "0")  # "1": onnxruntime's default spinning
MAX_CACHED = 8  # sessions kept alive by the cache itself (users of a session keep their own ref)

# onnxruntime-gpu 1.31 warns "No registered plugin EP device found for CUDAExecutionProvider"
# on every CUDA session, which then runs on CUDA as asked: it reads like a failure. Where a
# session runs is reported by session_info (and `devices --check`), so only onnxruntime's
# errors are printed; OBS_FACE_SWAP_ORT_WARNINGS=1 brings its warnings back (among them why a
# provider did not initialise, which a fallback's reason points to).
if os.environ.get("OBS_FACE_SWAP_ORT_WARNINGS", "0") != "1":
    ort.set_default_logger_severity(3)


@dataclass(frozen=True)
class SessionInfo:
    """What a cached session runs on and why, if that is not what was asked for."""

    path: str
    requested: str  # device string the caller asked for
    device: str  # device string actually used ("cpu" after a fallback)
    provider: str  # session.get_providers()[0]: the provider running the graph
    threads: int
    reason: str = ""  # non-empty when `device` differs from `requested`
    first_run_ms: float = 0.0  # the warm-up run of a GPU session at load (0 on the CPU)


_Key = tuple[str, int, int, str, int]
_cache: OrderedDict[_Key, tuple[ort.InferenceSession, SessionInfo]] = OrderedDict()
_key_locks: dict[_Key, threading.Lock] = {}
_lock = threading.Lock()


def default_threads() -> int:
    """Half the cores (at least 1): the rest stay free for OBS's encoder and render."""
    return max(1, (os.cpu_count() or 2) // 2)


def cache_dir() -> Path:
    """Per-user cache (TensorRT engines, generated bench models); $OBS_FACE_SWAP_CACHE wins."""
    base = os.environ.get("OBS_FACE_SWAP_CACHE") or Path.home() / ".cache" / "obs-face-swap"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle intra-op threads normally spin for a while after each run. With several sessions
    # per frame (detector, FaceMesh, swap model) each pool's spinning steals cores from the
    # next session and from OBS, so idle threads sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", SPIN)
    # onnxruntime's CPU arena keeps the peak of every session's working memory for good and
    # extends it in steps when runs overlap (background checks beside the frame): measured
    # in the soak (tests/test_soak.py), the engine's heap held 130-186 MB and grew 4-11 MB
    # per settings cycle on a busy machine; without the arena it stays at 82 MB, flat. The
    # persona path's speed is the same within noise (720p: 54.7/56.0 fps with the arena,
    # 54.4/52.0 without, same machine and run), a DFM's too (1.46-1.48 vs 1.47-1.54 fps).
    options.enable_cpu_mem_arena = False
    return options


def _provider_options(device: devices.Device) -> dict[str, object]:
    if device.kind in ("cuda", "dml"):
        return {"device_id": device.index}
    if device.kind == "tensorrt":
        return {"device_id": device.index, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache_dir() / "tensorrt"), "trt_fp16_enable": True}
    return {}


@functools.cache
def _preload_cuda_libraries() -> None:
    """CUDA/cuDNN from NVIDIA's pip wheels (nvidia-*-cu12) are not on the loader path;
    onnxruntime-gpu >= 1.21 can load them first. System-wide CUDA needs nothing."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None and importlib.util.find_spec("nvidia") is not None:
        preload(directory="")


def _create(path: str, device: devices.Device, threads: int) -> ort.InferenceSession:
    """A session on `device` with the CPU behind it for nodes the device cannot run."""
    options = _options(threads)
    if device.kind == "cpu":
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    if device.kind in ("cuda", "tensorrt"):
        _preload_cuda_libraries()
    available = ort.get_available_providers()
    if device.provider in available:
        providers: list = [(device.provider, _provider_options(device))]
        if device.kind == "tensorrt" and "CUDAExecutionProvider" in available:
            providers.append(("CUDAExecutionProvider", {"device_id": device.index}))
        providers.append("CPUExecutionProvider")
        return ort.InferenceSession(path, options, providers=providers)
    # Plugin EPs (e.g. onnxruntime-gpu >= 1.2x's CUDA plugin) are attached per hardware device.
    ep_devices = devices._ep_devices(device.provider)
    if device.index >= len(ep_devices):
        raise RuntimeError(f"{device.provider} has no device {device.index}")
    options.add_provider_for_devices([ep_devices[device.index]], {})
    return ort.InferenceSession(path, options)


def _load(path: str, requested: str, threads: int) -> tuple[ort.InferenceSession, SessionInfo]:
    placement = devices.resolve(requested)
    reason = placement.reason
    device = placement.device
    try:
        session = _create(path, device, threads)
    except Exception as exc:  # onnxruntime raises several unrelated types
        if device.kind == "cpu":
            raise ModelFileError(f"cannot load model {path}: {one_line(exc)}") from None
        reason = f"{requested} failed to start, using CPU: {one_line(exc)}"
        device = devices.cpu_device()
        try:
            session = _create(path, device, threads)
        except Exception as exc2:
            raise ModelFileError(f"cannot load model {path}: {one_line(exc2)}") from None
    provider = session.get_providers()[0]
    if device.kind != "cpu" and provider != device.provider:
        reason = (f"{requested}: {device.provider} did not initialise, running on {provider} "
                  f"(a driver or library it needs, e.g. CUDA/cuDNN, is missing or does not "
                  f"match onnxruntime {ort.__version__}; `python -m core devices --check "
                  f"{requested}` with OBS_FACE_SWAP_ORT_WARNINGS=1 prints onnxruntime's reason)")
        device = devices.cpu_device()
    first_run_ms = 0.0
    if device.kind != "cpu":
        # A GPU session's first run allocates and picks convolution algorithms (on CUDA ~3 s
        # for a process's first model, ~0.5 s after): done here, on the loading thread, not
        # on a live frame. A model that cannot run on the zero input (dynamic sizes of 1)
        # keeps its GPU session.
        try:
            first_run_ms = warm_up(session)
        except Exception:  # the first real frame pays for it instead
            first_run_ms = 0.0
    info = SessionInfo(path, requested, device.id, provider, threads, reason, first_run_ms)
    return session, info


def open_session(path: str | Path, device: str = "cpu",
                 threads: int = 0) -> tuple[ort.InferenceSession, SessionInfo]:
    """A shared session for `path` on `device` plus where it really runs.

    Raises ModelFileError if the file is missing or unloadable, DeviceError for a malformed
    device string. A device that is not usable gives a CPU session whose info has a reason.
    """
    if Target(device).served:
        return _open_remote(str(path), device)
    resolved = Path(path).resolve()
    try:
        version = file_version(resolved)
    except OSError:
        raise ModelFileError(f"model file not found: {resolved}") from None
    threads = threads or default_threads()
    devices.parse_device(device)  # malformed strings fail here, before any loading
    # mtime and size in the key: a model file replaced on disk is loaded afresh.
    key = (*version, device.strip().lower(), threads)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            hit = _cache.get(key)
        if hit is None:
            hit = _load(str(resolved), device, threads)
        with _lock:
            _cache[key] = hit
            _cache.move_to_end(key)
            while len(_cache) > MAX_CACHED:
                _cache.popitem(last=False)
            _key_locks.pop(key, None)
        return hit


def _open_remote(model: str, device: str) -> tuple[triton.RemoteSession, SessionInfo]:
    """A model on an inference server (core.triton), shared like a local session; a fresh
    connection once the cached one has failed."""
    key = (model, 0, 0, device.strip().lower(), 0)  # a name, never a file's absolute path
    with _lock:
        hit = _cache.get(key)
        if hit is not None and not hit[0].failed:
            _cache.move_to_end(key)
            return hit
    server = triton.parse(device)
    session = triton.RemoteSession(server, model)
    hit = (session, SessionInfo(model, device, server.id, server.id, 0))
    with _lock:
        _cache[key] = hit
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return hit


def round_trip_ms(session) -> float:
    """The last run's network round trip of a served session (core.triton); 0 for a local
    one."""
    return session.round_trip_ms if isinstance(session, triton.RemoteSession) else 0.0


def get_session(path: str | Path, device: str = "cpu", threads: int = 0) -> ort.InferenceSession:
    """A shared InferenceSession for `path` on `device`; raises ModelFileError if unloadable."""
    return open_session(path, device, threads)[0]


def session_info(session: ort.InferenceSession) -> SessionInfo:
    """Where a session from this cache runs; for foreign sessions, what it reports itself."""
    with _lock:
        for cached, info in _cache.values():
            if cached is session:
                return info
    provider = session.get_providers()[0]
    device = devices.kind_of_provider(provider)
    return SessionInfo("", device, device, provider, 0)


def dummy_feed(session: ort.InferenceSession, batch: int = 1,
               seed: int | None = None) -> dict[str, np.ndarray]:
    """Inputs for every graph input, dynamic dims set to `batch`: zeros, or uniform [0,1)
    noise when `seed` is given (for timing a model alone, as the benchmark does)."""
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
              "tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    rng = None if seed is None else np.random.default_rng(seed)
    feed = {}
    for arg in session.get_inputs():
        dtype = dtypes.get(arg.type)
        if dtype is None:
            raise ValueError(f"cannot make an input for {arg.name} of type {arg.type}")
        shape = [d if isinstance(d, int) and d > 0 else batch for d in arg.shape]
        if rng is None or not np.issubdtype(dtype, np.floating):
            feed[arg.name] = np.zeros(shape, dtype)
        else:
            feed[arg.name] = rng.random(shape, dtype=np.float32).astype(dtype)
    return feed


_run_options: weakref.WeakKeyDictionary[threading.Thread, ort.RunOptions] = \
    weakref.WeakKeyDictionary()
_run_options_lock = threading.Lock()
_local = threading.local()  # this thread's RunOptions, read without the lock on every run


def _thread_run_options(thread: threading.Thread) -> ort.RunOptions:
    with _run_options_lock:
        options = _run_options.get(thread)
        if options is None:
            options = _run_options[thread] = ort.RunOptions()
        return options


def run(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output of `session` for `feed`, under the calling thread's RunOptions, which
    cancel_runs() can trip from another thread: every model run of the engine goes here."""
    options = getattr(_local, "run_options", None)
    if options is None:
        options = _local.run_options = _thread_run_options(threading.current_thread())
    return session.run(None, feed, options)


def cancel_runs(thread: threading.Thread) -> None:
    """End `thread`'s model runs with an error: the one in progress (at its next graph node)
    and every later one. For a worker being stopped: a frame nobody will see is not worth
    seconds of a slow model, nor a thread still inside onnxruntime when its host exits."""
    _thread_run_options(thread).terminate = True


def time_runs(session: ort.InferenceSession, feed: dict[str, np.ndarray],
              runs: int) -> list[float]:
    """Milliseconds of each of `runs` session.run calls on `feed`."""
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        run(session, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def warm_up(session: ort.InferenceSession, runs: int = 1) -> float:
    """Run the graph on zeros so first-call costs (allocation, kernel tuning, TensorRT engine
    build) happen now rather than on a live frame; returns ms of the last run."""
    return time_runs(session, dummy_feed(session), runs)[-1]
