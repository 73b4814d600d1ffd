"""`bench --device triton://HOST:PORT --model M --streams 1,2,4`: several streams, one server.

Each stream is its own connection sending the model's input back to back, as one filter or
one process per stream would; the server batches what arrives together (dynamic batching).
Reported per stream count: requests per second over all streams and per-stream latency. The
same model run in this process (when a local file of that name is found) is timed in the
same run, so the overhead of serving it is measured side by side, not against old figures.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from core import registry, runtime, triton
from core.errors import FaceSwapError
from core.worker import percentile


def _stream(session: triton.RemoteSession, feed: dict[str, np.ndarray], until: float,
            times: list[float], errors: list[str]) -> None:
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            session.run(None, feed)
        except FaceSwapError as exc:
            errors.append(str(exc))
            return
        times.append((time.perf_counter() - start) * 1000.0)


def measure(device: str, model: str, streams: int, seconds: float) -> dict[str, Any]:
    """Throughput and latency of `streams` concurrent connections for `seconds`."""
    server = triton.parse(device)
    sessions = [triton.RemoteSession(server, model) for _ in range(streams)]
    feed = runtime.dummy_feed(sessions[0], seed=0)
    for session in sessions:
        session.run(None, feed)  # connections up, the server warm
    times: list[list[float]] = [[] for _ in sessions]
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=_stream, args=(s, feed, until, t, errors),
                                name="face-swap-bench-stream", daemon=True)
               for s, t in zip(sessions, times, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise triton.ServerError(errors[0])
    every = [t for stream in times for t in stream]
    return {"streams": streams, "transport": sessions[0].transport, "requests": len(every),
            "requests_per_s": round(len(every) / seconds, 1),
            "per_stream_per_s": round(len(every) / seconds / streams, 1),
            "latency_ms": {"p50": round(percentile(every, 50), 2),
                           "p95": round(percentile(every, 95), 2)}}


def local_ms(model: str, runs: int = 20) -> float | None:
    """The same model's p50 in this process (CPU), when a local file of that name exists."""
    try:
        entry = registry.resolve(model)
    except FaceSwapError:
        return None
    if entry.path is None:
        return None
    session = runtime.get_session(entry.path, "cpu")
    feed = runtime.dummy_feed(session, seed=0)
    runtime.run(session, feed)
    return percentile(runtime.time_runs(session, feed, runs), 50)


def run_streams(device: str, model: str, counts: list[int], seconds: float) -> dict[str, Any]:
    rows = [measure(device, model, n, seconds) for n in counts]
    local = local_ms(model)
    single = next((r for r in rows if r["streams"] == 1), None)
    ratio = round(single["latency_ms"]["p50"] / local, 2) if single and local else None
    return {"server": triton.parse(device).id, "model": model, "seconds": seconds,
            "rows": rows, "local_ms": round(local, 2) if local else None,
            "overhead_ratio": ratio}


def print_streams(report: dict[str, Any]) -> None:
    transport = report["rows"][0]["transport"] if report["rows"] else "network"
    print(f"model {report['model']} on {report['server']} ({transport}), "
          f"{report['seconds']:.0f} s per row")
    print(f"{'streams':>8}{'req/s':>10}{'per stream':>12}{'p50 ms':>10}{'p95 ms':>10}")
    for row in report["rows"]:
        print(f"{row['streams']:>8}{row['requests_per_s']:>10.1f}"
              f"{row['per_stream_per_s']:>12.1f}{row['latency_ms']['p50']:>10.2f}"
              f"{row['latency_ms']['p95']:>10.2f}")
    if report["local_ms"] is None:
        print("no local file of that name: no in-process comparison")
    elif report["overhead_ratio"] is not None:
        print(f"in this process (CPU): {report['local_ms']:.2f} ms p50; one stream on the "
              f"server takes {report['overhead_ratio']:.2f}x that")
