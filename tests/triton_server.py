"""A local NVIDIA Triton Inference Server for the tests: every .dfm / .onnx file in a folder
served under its file stem, run by onnxruntime inside PyTriton's Python callables.

Runs in its own venv (tests/triton_env.py makes it: nvidia-pytriton ships the tritonserver
binary, and its Python stub needs the system Python), not in the project's:
    python tests/triton_server.py --grpc-port 8001 --http-port 8000 --metrics-port 8002 \
        --ready-file READY --workspace WORK DIR

Tensor names, shapes and types are the ONNX graph's, so the server's model metadata is the
contract the client checks. A graph whose inputs and outputs all start with a dynamic
dimension is served with dynamic batching (Triton stacks concurrent requests), others as
they are; a model whose file name ends in "_slow" answers half a second late. Writes the
--ready-file once every model is loaded.

The official server lists the models of its repository folder; PyTriton loads its models
from elsewhere and leaves that folder empty, so its index would be empty. A folder per
served model there makes the index list them, with their state, as the official server
lists its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
          "tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
MAX_BATCH = 8
SLOW_S = 0.5  # a model whose file name ends in "_slow" answers this much later (timeouts)


def batched(session: ort.InferenceSession) -> bool:
    """Whether every input and output has a dynamic first dimension (a batch axis)."""
    return all(arg.shape and not isinstance(arg.shape[0], int)
               for arg in [*session.get_inputs(), *session.get_outputs()])


def tensors(args, drop_batch: bool) -> list[Tensor]:
    return [Tensor(name=arg.name, dtype=DTYPES[arg.type],
                   shape=tuple(d if isinstance(d, int) else -1
                               for d in (arg.shape[1:] if drop_batch else arg.shape)))
            for arg in args]


def infer_function(session: ort.InferenceSession, with_batch: bool, delay_s: float):
    names = [o.name for o in session.get_outputs()]

    def run(inputs: dict) -> dict:
        time.sleep(delay_s)
        return dict(zip(names, session.run(None, inputs), strict=True))

    if with_batch:  # Triton stacked the requests along the first axis
        return batch(lambda **inputs: run(inputs))
    return lambda requests: [run(dict(request.data)) for request in requests]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--ready-file", type=Path, required=True,
                        help="written once every model is loaded")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                        help="gRPC over TLS with this certificate and key (PEM)")
    parser.add_argument("--client-ca", type=Path,
                        help="with --tls: require a client certificate signed by this CA")
    parser.add_argument("--workspace", type=Path, required=True,
                        help="PyTriton's working folder (its default, in ~/.cache, stays "
                             "behind when the server is killed)")
    parser.add_argument("--restricted", action="store_true",
                        help="PyTriton's default: model listing, statistics and shared memory "
                             "need its access token (the official server allows them)")
    args = parser.parse_args()
    security = None if args.restricted else TritonSecurityConfig(restricted_endpoints=[])
    tls = {"grpc_use_ssl": True, "grpc_server_cert": args.tls[0],
           "grpc_server_key": args.tls[1]} if args.tls else {}
    if args.tls and args.client_ca:
        tls.update(grpc_use_ssl_mutual=True, grpc_root_cert=args.client_ca)
    config = TritonConfig(grpc_port=args.grpc_port, http_port=args.http_port,
                          metrics_port=args.metrics_port, exit_on_error=True, **tls)
    files = sorted(p for p in args.folder.iterdir() if p.suffix in (".dfm", ".onnx"))
    with Triton(config=config, security_config=security,
                workspace=args.workspace) as triton:
        for path in files:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
            with_batch = batched(session)
            model_config = ModelConfig(
                batching=with_batch, max_batch_size=MAX_BATCH,
                batcher=DynamicBatcher(max_queue_delay_microseconds=500))
            delay_s = SLOW_S if path.stem.endswith("_slow") else 0.0
            triton.bind(model_name=path.stem,
                        infer_func=infer_function(session, with_batch, delay_s),
                        inputs=tensors(session.get_inputs(), with_batch),
                        outputs=tensors(session.get_outputs(), with_batch),
                        config=model_config, strict=False)
        for path in files:  # listed by the repository index (see the module docstring)
            (args.workspace / "model-store" / path.stem).mkdir(parents=True, exist_ok=True)
        args.ready_file.write_text("ready\n", encoding="utf-8")
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
