"""NVIDIA Triton Inference Server as a device: the swap network runs on a server.

A device string "triton://HOST:PORT" (gRPC) or "tritons://HOST:PORT" (gRPC over TLS) names
a server the user configured (never one discovered); the model setting then names a model
on that server. Connection options ride along as a query: "?timeout_ms=MS" (per request,
default 2000) and, for TLS, "?ca=FILE" (a CA certificate to trust, e.g. a self-signed one)
and "cert=FILE&key=FILE" (a client certificate, for a server that requires one).
Detection, landmarks and merge stay local (on the CPU); only the swap network's crop goes
out and its outputs come back.

`RemoteSession` answers the part of onnxruntime's InferenceSession the swappers use
(get_inputs, get_outputs, get_providers, run), from the server's model metadata, so a .dfm
served by Triton passes the same signature check (core.signatures) as a file and runs
through the same code. Every server error becomes one line naming the server.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FaceSwapError, ModelFileError
from core.triton_shm import SharedMemory

# gRPC's own log lines (e.g. a failed TLS handshake, at INFO) would come before the one-line
# error that already says it: only its errors, unless the user asks for more
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

SCHEMES = {"triton://": False, "tritons://": True}  # prefix -> TLS
TIMEOUT_S = 2.0  # per request; a slower answer is an error, never a stalled frame
LOCAL_DEVICE = "cpu"  # where detection and landmarks run when the swap runs on a server
_TYPES = {"FP32": ("tensor(float)", np.float32), "FP16": ("tensor(float16)", np.float16),
          "UINT8": ("tensor(uint8)", np.uint8), "INT32": ("tensor(int32)", np.int32),
          "INT64": ("tensor(int64)", np.int64)}


# gRPC channel: messages as large as a 512 px DFM's outputs (5 MB), and a server that comes
# back is found again within a second (gRPC's default backoff grows to two minutes)
CHANNEL_ARGS = [("grpc.max_send_message_length", 2**31 - 1),
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.min_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", 1000)]


class ServerError(FaceSwapError):
    """The server cannot be reached, or it refused or failed a request."""


TIMEOUT_MS = (50, 60_000)  # the range of ?timeout_ms=
# tritons:// options naming PEM files: what each is
PEM_OPTIONS = {"ca": "CA certificate", "cert": "client certificate", "key": "client key"}


@dataclass(frozen=True)
class Server:
    """One configured server, with its connection options."""

    host: str
    port: int
    tls: bool = False
    timeout_s: float = TIMEOUT_S  # per request
    ca: str = ""  # tritons: a CA certificate file to trust (PEM) besides the system's
    cert: str = ""  # tritons: this client's certificate (PEM), for a server that asks
    key: str = ""  # and its private key (PEM)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def id(self) -> str:
        """The server as a status line names it: scheme://HOST:PORT."""
        return f"{'tritons' if self.tls else 'triton'}://{self.address}"

    @property
    def device(self) -> str:
        """The whole device string, options included (settings and device lists keep it)."""
        options = []
        if self.timeout_s != TIMEOUT_S:
            options.append(f"timeout_ms={round(self.timeout_s * 1000)}")
        options += [f"{name}={value}" for name, value in
                    (("ca", self.ca), ("cert", self.cert), ("key", self.key)) if value]
        return self.id + ("?" + "&".join(options) if options else "")


def is_server(device: str) -> bool:
    """Whether a device string names an inference server rather than local hardware."""
    return isinstance(device, str) and device.strip().lower().startswith(tuple(SCHEMES))


def _options(device: str, query: str) -> dict[str, str]:
    options = {}
    for pair in filter(None, query.split("&")):
        name, sep, value = pair.partition("=")
        if not sep or name not in ("timeout_ms", *PEM_OPTIONS) or not value:
            raise ServerError(f"bad server option {pair!r} in {device!r}; expected "
                              "timeout_ms=MS or (tritons) ca=FILE, cert=FILE&key=FILE")
        options[name] = value
    return options


def parse(device: str) -> Server:
    """"triton://10.0.0.5:8001[?timeout_ms=MS]",
    "tritons://HOST:PORT[?ca=FILE][&cert=FILE&key=FILE]" -> Server;
    ServerError naming what is wrong otherwise."""
    text = device.strip()
    scheme = next((s for s in SCHEMES if text.lower().startswith(s)), None)
    rest, _, query = (text[len(scheme):] if scheme else "").partition("?")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # [::1]:8001
    if not scheme or not host or "/" in rest or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ServerError(f"bad server address {device!r}; expected triton://HOST:PORT "
                          "(gRPC, e.g. triton://192.168.1.20:8001) or tritons://HOST:PORT")
    options = _options(device, query)
    timeout = options.get("timeout_ms", str(round(TIMEOUT_S * 1000)))
    if not timeout.isdigit() or not TIMEOUT_MS[0] <= int(timeout) <= TIMEOUT_MS[1]:
        raise ServerError(f"timeout_ms in {device!r} must be within {TIMEOUT_MS[0]}.."
                          f"{TIMEOUT_MS[1]}")
    pem = {name: options.get(name, "") for name in PEM_OPTIONS}
    for name, value in pem.items():
        if value and not SCHEMES[scheme]:
            raise ServerError(f"{name}= in {device!r} is for TLS: use tritons://")
        if value and not Path(value).expanduser().is_file():
            raise ServerError(f"{PEM_OPTIONS[name]} not found: {value}")
    if bool(pem["cert"]) != bool(pem["key"]):
        raise ServerError(f"cert= and key= in {device!r} go together (a client certificate "
                          "and its private key)")
    return Server(host, int(port), SCHEMES[scheme], int(timeout) / 1000.0, **pem)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# gRPC's words for the usual ways a server cannot be reached -> what to tell a streamer
UNREACHABLE = (("Connection refused", "refused the connection: is it running?"),
               ("DEADLINE_EXCEEDED", "did not answer in time: is it overloaded or far away?"),
               ("Deadline Exceeded", "did not answer in time: is it overloaded or far away?"),
               ("DNS resolution failed", "cannot be found: check the address"),
               ("Name resolution", "cannot be found: check the address"),
               ("UNAVAILABLE", "cannot be reached: is it running, and is the address right?"))


def unreachable(server_id: str, exc: Exception) -> str:
    """A failed connection in plain words, e.g. "the inference server triton://host:9
    refused the connection: is it running?" (gRPC's own first line where it is not one of
    the usual causes)."""
    text = _first_line(exc)
    plain = next((words for needle, words in UNREACHABLE if needle in text), None)
    return f"the inference server {server_id} " + (plain or f"cannot be reached: {text}")


@dataclass(frozen=True)
class Arg:
    """A graph input or output as onnxruntime's NodeArg describes it."""

    name: str
    shape: tuple[int | None, ...]
    type: str  # "tensor(float)", ...
    dtype: type
    datatype: str  # Triton's name of it: "FP32", ...


def _args(entries: list[dict]) -> list[Arg]:
    found = []
    for entry in entries:
        kind, dtype = _TYPES.get(entry["datatype"], (entry["datatype"], None))
        shape = tuple(None if int(d) < 0 else int(d) for d in entry["shape"])
        found.append(Arg(entry["name"], shape, kind, dtype, entry["datatype"]))
    return found


def client(server: Server):
    """A gRPC client for `server` that answered a liveness check; ServerError if not."""
    import tritonclient.grpc as grpc

    def file(name: str) -> str | None:  # tritonclient reads the files
        return str(Path(name).expanduser()) if name else None

    try:
        connection = grpc.InferenceServerClient(
            server.address, ssl=server.tls, root_certificates=file(server.ca),
            private_key=file(server.key), certificate_chain=file(server.cert),
            channel_args=CHANNEL_ARGS)
        # live, not ready: a server is not "ready" while any model of its repository is
        # unloaded (strict readiness), and the others must go on; a model's own state shows
        # in its metadata and requests
        live = connection.is_server_live(client_timeout=server.timeout_s)
    except Exception as exc:
        raise ServerError(unreachable(server.id, exc)) from None
    if not live:
        raise ServerError(f"the inference server {server.id} is not live")
    return connection


def _model_args(connection, server: Server, model: str) -> tuple[list[Arg], list[Arg]]:
    """(inputs, outputs) of `model` from the server's metadata; ModelFileError if it has no
    such model or tensors of a type this client does not send."""
    try:
        meta = connection.get_model_metadata(model, as_json=True,
                                             client_timeout=server.timeout_s)
    except Exception as exc:
        raise ModelFileError(f"model {model!r} is not available on {server.id}: "
                             f"{_first_line(exc)}") from None
    inputs, outputs = _args(meta.get("inputs", [])), _args(meta.get("outputs", []))
    unknown = [a.name for a in [*inputs, *outputs] if a.dtype is None]
    if unknown:
        raise ModelFileError(f"model {model!r} on {server.id} has tensors of types this "
                             f"client does not send: {', '.join(unknown)}")
    return inputs, outputs


def model_args(device: str, model: str) -> tuple[list[Arg], list[Arg]]:
    """(inputs, outputs) of a served model, as a session's get_inputs/get_outputs give them:
    what identifying it needs, without a session (no shared memory, no cache entry)."""
    server = parse(device)
    connection = client(server)
    try:
        return _model_args(connection, server, model)
    finally:
        connection.close()


_OPEN: weakref.WeakSet[RemoteSession] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close every open session at exit, before the interpreter's teardown: a gRPC client
    still alive then fails in its __del__ (a traceback on stderr, or in OBS's log)."""
    for session in list(_OPEN):
        session.close()


class RemoteSession:
    """One model on one server, used like an onnxruntime InferenceSession."""

    def __init__(self, server: Server, model: str) -> None:
        self.server = server
        self.model = model
        self.timeout_s = server.timeout_s
        self._client = client(server)
        self._inputs, self._outputs = _model_args(self._client, server, model)
        self.round_trip_ms = 0.0  # the last request, network and server together
        self.failed = False  # a request failed: the next open_session connects afresh
        self._lock = threading.Lock()  # one gRPC call at a time per session
        # a server on this host: inputs and outputs through shared memory (core.triton_shm)
        self._shared = SharedMemory.create(self._client, server.host, self._inputs,
                                           self._outputs)
        _OPEN.add(self)

    def close(self) -> None:
        """Unregister its shared memory and let go of its connection (closed as it is
        dropped, while gRPC still works: at exit, see _close_all)."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        self._client = None

    @property
    def transport(self) -> str:
        """How the tensors travel now: "shared memory" or "network"."""
        return "shared memory" if self._shared and self._shared.registered else "network"

    def get_inputs(self) -> list[Arg]:
        return list(self._inputs)

    def get_outputs(self) -> list[Arg]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [self.server.id]

    def run(self, _names, feed: dict[str, np.ndarray], _options=None) -> list[np.ndarray]:
        """Every output, in the model's order, for `feed` (onnxruntime's run by position).
        An input the server declares with one more (batch) axis than given gets it."""
        import tritonclient.grpc as grpc

        arrays, requests = [], []
        for arg in self._inputs:
            array = np.ascontiguousarray(feed[arg.name], arg.dtype)
            if len(arg.shape) == array.ndim + 1:
                array = array[None]
            arrays.append(array)
            requests.append(grpc.InferInput(arg.name, list(array.shape), arg.datatype))
        wanted = [grpc.InferRequestedOutput(arg.name) for arg in self._outputs]
        start = time.perf_counter()
        with self._lock:
            shared = self._shared
            if shared is not None and shared.fits(arrays) \
                    and (shared.registered or shared.register()):
                shared.attach(requests, arrays, wanted)
            else:
                shared = None
                for request, array in zip(requests, arrays, strict=True):
                    request.set_data_from_numpy(array)
            try:
                result = self._client.infer(self.model, requests, outputs=wanted,
                                            client_timeout=self.timeout_s)
            except Exception as exc:
                self.failed = True
                if shared is not None:
                    shared.registered = False  # a restarted server must be told again
                raise ServerError(f"{self.server.id} model {self.model}: "
                                  f"{_first_line(exc)}") from None
            outputs = shared.outputs() if shared is not None else \
                [result.as_numpy(arg.name) for arg in self._outputs]
        self.round_trip_ms = (time.perf_counter() - start) * 1000.0
        return outputs




def list_models(device: str) -> list[str]:
    """The names of the models the server has loaded; ServerError where the server does not
    allow listing (PyTriton restricts the repository index) or cannot be reached."""
    server = parse(device)
    connection = client(server)
    try:
        index = connection.get_model_repository_index(as_json=True,
                                                      client_timeout=server.timeout_s)
    except Exception as exc:
        raise ServerError(f"{server.id} does not allow listing its models "
                          f"({_first_line(exc)}): name the model yourself") from None
    finally:
        connection.close()
    # a model of the repository that is not loaded has no state (or UNAVAILABLE)
    return sorted(m["name"] for m in index.get("models", []) if m.get("state") == "READY")
