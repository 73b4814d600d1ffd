"""`python -m core triton-repo MODEL... --out DIR`: a model repository for NVIDIA Triton.

Each .dfm / .onnx file becomes DIR/NAME/1/model.onnx plus DIR/NAME/config.pbtxt for
Triton's onnxruntime backend: the graph's tensor names, types and shapes, dynamic batching
where every input and output has a batch axis (an AMP .dfm's morph value has none: served
unbatched), and an instance group on the GPU (or the CPU). The config is built as Triton's
own ModelConfig protobuf (tritonclient ships it), so a field Triton does not know cannot be
written. Serve it with the official container (README "Inference server").
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import onnx

from core import registry
from core.errors import ModelFileError

HELP = "write a Triton model repository (onnxruntime backend) for .dfm / .onnx models"
MAX_BATCH = (1, 64)
_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16",
          onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.INT32: "TYPE_INT32",
          onnx.TensorProto.INT64: "TYPE_INT64"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="model files, or names from `python -m core models`")
    parser.add_argument("--out", required=True, type=Path, help="repository folder to write")
    parser.add_argument("--cpu", action="store_true",
                        help="instances on the server's CPU (default: its GPUs)")
    parser.add_argument("--instances", type=int, default=1,
                        help="instances per GPU (or on the CPU), 1..16 (default 1)")
    parser.add_argument("--max-batch", type=int, default=8,
                        help=f"largest batch the dynamic batcher forms, {MAX_BATCH[0]}.."
                             f"{MAX_BATCH[1]} (default 8)")


def _tensors(values) -> list[tuple[str, int, list[int]]]:
    """(name, ONNX element type, dims with -1 for a dynamic size) of graph values."""
    found = []
    for value in values:
        kind = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                for d in kind.shape.dim]
        found.append((value.name, kind.elem_type, dims))
    return found


def model_config(name: str, path: Path, gpu: bool, instances: int, max_batch: int):
    """Triton's ModelConfig for the ONNX graph at `path`."""
    from tritonclient.grpc import model_config_pb2 as pb

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    inputs = _tensors(v for v in graph.input if v.name not in weights)
    outputs = _tensors(graph.output)
    batched = all(dims and dims[0] == -1 for _, _, dims in [*inputs, *outputs])
    config = pb.ModelConfig(name=name, backend="onnxruntime",
                            max_batch_size=max_batch if batched else 0)
    for values, field in ((inputs, config.input), (outputs, config.output)):
        for tensor_name, elem_type, dims in values:
            if elem_type not in _TYPES:
                raise ModelFileError(f"{path.name}: tensor {tensor_name} has ONNX type "
                                     f"{elem_type}, which this client does not send")
            entry = field.add(name=tensor_name, data_type=pb.DataType.Value(_TYPES[elem_type]))
            entry.dims.extend(dims[1:] if batched else dims)
    if batched:
        config.dynamic_batching.max_queue_delay_microseconds = 500
    group = config.instance_group.add(count=instances)
    group.kind = pb.ModelInstanceGroup.KIND_GPU if gpu else pb.ModelInstanceGroup.KIND_CPU
    return config


def run(args: argparse.Namespace) -> int:
    from google.protobuf import text_format

    if not 1 <= args.instances <= 16:
        raise ModelFileError(f"--instances must be within 1..16, got {args.instances}")
    if not MAX_BATCH[0] <= args.max_batch <= MAX_BATCH[1]:
        raise ModelFileError(f"--max-batch must be within {MAX_BATCH[0]}..{MAX_BATCH[1]}, "
                             f"got {args.max_batch}")
    entries = [registry.resolve(model) for model in args.models]
    for entry in entries:
        if entry.path is None or not entry.family.servable:
            raise ModelFileError(f"{entry.name} is {entry.family.words}, not a model file "
                                 "to serve")
    for entry in entries:
        name = entry.path.stem
        config = model_config(name, entry.path, not args.cpu, args.instances, args.max_batch)
        folder = args.out / name
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry.path, folder / "1" / "model.onnx")
        (folder / "config.pbtxt").write_text(text_format.MessageToString(config),
                                             encoding="utf-8")
        batching = f"dynamic batching up to {config.max_batch_size}" if config.max_batch_size \
            else "unbatched"
        print(f"{folder}: {entry.describe()}, {batching}, {args.instances} instance(s) on "
              f"{'the CPU' if args.cpu else 'each GPU'}")
    return 0
