"""The test inference server: a venv with nvidia-pytriton (which ships the tritonserver
binary) and onnxruntime, made once per machine with the system Python, and a running server
(tests/triton_server.py) serving a folder of models on free local ports.

The system Python, because PyTriton's Python stub fails at model load under a pyenv-built
interpreter ("'_thread.RLock' object has no attribute '_recursion_count'"). The venv lives
in the project's cache folder, keyed by what is installed in it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from core import ROOT
from core.runtime import cache_dir

SYSTEM_PYTHON = Path("/usr/bin/python3")
# nvidia-pytriton 0.7.0, onnxruntime and numpy, locked for Debian 12's Python 3.11
# (install/lock.py refreshes it with the others)
LOCK = ROOT / "install" / "locks" / "triton-test-server.txt"
SERVER = Path(__file__).with_name("triton_server.py")
START_TIMEOUT_S = 180.0


def server_python() -> Path:
    """The venv's python, made (about 30 s, ~500 MB) when missing or out of date."""
    venv = cache_dir() / "triton-test-server"
    python = venv / "bin" / "python"
    stamp = venv / "installed.txt"
    wanted = LOCK.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not SYSTEM_PYTHON.exists():
        raise RuntimeError(f"the test Triton server needs {SYSTEM_PYTHON} (Debian/Ubuntu's "
                           "python3 with python3-venv)")
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--require-hashes", "--no-deps", "-r", str(LOCK)], check=True)
    stamp.write_text(wanted)
    return python


class TritonServer:
    """tests/triton_server.py on free ports, serving every model file in `folder`; the
    device string to reach it is `device`. Stop and start it again to simulate an outage
    (same ports)."""

    def __init__(self, folder: Path, log: Path, tls: tuple[Path, Path] | None = None,
                 restricted: bool = False, client_ca: Path | None = None) -> None:
        self.folder = folder
        self.log = log
        self.tls = tls  # (certificate, key): gRPC over TLS
        self.client_ca = client_ca  # with tls: clients must show a certificate it signed
        self.restricted = restricted  # listing and shared memory refused, as PyTriton's default
        self.ports = server_ports(3)  # gRPC, HTTP, metrics
        self.device = f"{'tritons' if tls else 'triton'}://127.0.0.1:{self.ports[0]}"
        self.workspace = log.with_name(log.stem + "-workspace")
        self.process: subprocess.Popen | None = None

    def start(self) -> TritonServer:
        """Start the server and wait until it serves every model. A port still held after a
        restart (tritonserver itself binds without waiting for the kernel to free it) makes
        it fail at once: it is then tried again until START_TIMEOUT_S."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            offset = self.log.stat().st_size if self.log.exists() else 0
            ready = self._launch()
            while not ready.exists():
                taken = b"already in use" in self.log.read_bytes()[offset:]
                if taken and time.monotonic() < deadline:
                    break
                if taken or self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_bytes()[-3000:].decode(errors="replace")
                    self.stop()
                    raise RuntimeError(f"the test Triton server did not start:\n{tail}")
                time.sleep(0.5)
            else:
                return self
            self.stop()
            time.sleep(2.0)

    def _launch(self) -> Path:
        """Start the server process; the file it writes once it is ready."""
        grpc_port, http_port, metrics_port = self.ports
        ready = self.log.with_suffix(".ready")
        ready.unlink(missing_ok=True)
        shutil.rmtree(self.workspace, ignore_errors=True)  # PyTriton wants a fresh one
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(server_python()), str(SERVER), str(self.folder), "--grpc-port", str(grpc_port),
             "--http-port", str(http_port), "--metrics-port", str(metrics_port),
             "--ready-file", str(ready), "--workspace", str(self.workspace),
             *(["--tls", *map(str, self.tls)] if self.tls else []),
             *(["--client-ca", str(self.client_ca)] if self.client_ca else []),
             *(["--restricted"] if self.restricted else [])],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
        out.close()
        return ready

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        self.process = None
        # tritonserver (a child in the same group) may outlive PyTriton's Python for a moment:
        # the ports are free once it is gone, and a restart can bind them
        deadline = time.monotonic() + 30.0
        while not all(port_free(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.2)


def server_ports(count: int) -> tuple[int, ...]:
    """Free ports below the kernel's ephemeral range: while the server is stopped for a
    restart, no outgoing connection (OBS retrying it, say) can be given one of them."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(10000, max(10001, low))
        if port not in chosen and port_free(port):
            chosen.append(port)
    return tuple(chosen)


def port_free(port: int) -> bool:
    """Whether a server could listen on `port` now (as Triton does, on every interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def self_signed(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by itself, and its key (PEM)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key
