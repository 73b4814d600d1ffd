"""A "bench DFM": the DeepFaceLab DFM contract with realistic compute and random weights.

Real .dfm files are hundreds of MB and user-trained, so throughput could not be measured
without one. This graph has the same interface (design §4: in_face:0 NHWC (N,R,R,3)
float32 [0,1], optional morph_value:0, three sigmoid outputs by position) and roughly the
depth, width and FLOPs of an SAEHD 224 "df-ud"-style model (ae_dims 256, e_dims 64,
d_dims 64, d_mask_dims 22): a 4-level 5x5 stride-2 encoder, a dense bottleneck, an
upscaling inter block, a face decoder with residual blocks and a 2x pixel-shuffle output,
and mask decoders. Its output is noise; only its cost is meaningful. Written from the
published architecture description, no DeepFaceLab code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
GRAPH_VERSION = 2  # in the cached file name: a changed graph is never read from an old file
OUT_GAIN = 0.1  # random weights: keep output logits small so sigmoids are not saturated


@dataclass(frozen=True)
class BenchDfmConfig:
    """Width and depth knobs named as in DeepFaceLab's SAEHD options."""

    resolution: int = 224
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22
    morph: bool = False  # AMP-style model with a morph_value:0 input
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution % 32 or self.resolution < 64:
            raise ValueError(f"bench DFM resolution must be a multiple of 32 >= 64, "
                             f"got {self.resolution}")
        for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
            if getattr(self, name) < 1:
                raise ValueError(f"bench DFM {name} must be >= 1")

    @property
    def file_name(self) -> str:
        morph = "-amp" if self.morph else ""
        return (f"bench-saehd-v{GRAPH_VERSION}{morph}-{self.resolution}-ae{self.ae_dims}"
                f"-e{self.e_dims}-d{self.d_dims}-m{self.d_mask_dims}-s{self.seed}.dfm")


class _Graph:
    """Collects nodes and He-initialised weights; every layer is NCHW inside."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def weight(self, shape: tuple[int, ...], fan_in: int, gain: float = 1.0) -> str:
        name = self.name("w")
        std = np.float32(gain * np.sqrt(2.0 / fan_in))
        value = self.rng.standard_normal(shape, dtype=np.float32) * std
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def const(self, value: np.ndarray) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1,
             gain: float = 1.0) -> str:
        w = self.weight((cout, cin, k, k), cin * k * k, gain)
        b = self.const(np.zeros(cout, np.float32))
        pad = k // 2
        return self.node("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4)

    def lrelu(self, x: str, alpha: float = 0.1) -> str:
        return self.node("LeakyRelu", [x], alpha=alpha)

    def upscale(self, x: str, cin: int, cout: int) -> str:
        """3x3 conv to 4x channels, leaky ReLU, pixel shuffle: 2x resolution."""
        y = self.lrelu(self.conv(x, cin, cout * 4, 3))
        return self.node("DepthToSpace", [y], blocksize=2, mode="DCR")

    def residual(self, x: str, ch: int) -> str:
        y = self.lrelu(self.conv(x, ch, ch, 3), 0.2)
        y = self.conv(y, ch, ch, 3, gain=0.2)  # small residual branch: activations stay tame
        return self.lrelu(self.node("Add", [x, y]), 0.2)

    def dense(self, x: str, cin: int, cout: int) -> str:
        w = self.weight((cin, cout), cin)
        return self.node("Add", [self.node("MatMul", [x, w]), self.const(np.zeros(cout,
                                                                                  np.float32))])


def _mask_decoder(g: _Graph, code: str, cin: int, m: int, levels: int) -> str:
    x, ch = code, cin
    for i in range(levels):
        out_ch = m * 2 ** (levels - 1 - i)
        x, ch = g.upscale(x, ch, out_ch), out_ch
    return g.node("Sigmoid", [g.conv(x, ch, 1, 1, gain=OUT_GAIN)])


def build_bench_dfm(config: BenchDfmConfig | None = None) -> onnx.ModelProto:
    """The bench DFM graph for `config` (default: SAEHD 224-like). Deterministic per seed."""
    c = config or BenchDfmConfig()
    r, g = c.resolution, _Graph(c.seed)
    x = g.node("Transpose", ["in_face:0"], perm=[0, 3, 1, 2])
    # encoder: 4 x (5x5 conv, stride 2): R -> R/16
    ch = 3
    for level in range(4):
        out_ch = c.e_dims * 2 ** level
        x, ch = g.lrelu(g.conv(x, ch, out_ch, 5, 2)), out_ch
    enc_res = r // 16
    flat = g.node("Reshape", [x, g.const(np.array([0, -1], np.int64))])

    def inter() -> str:
        """dense bottleneck -> dense to (R/32)^2 x 2*ae -> upscale back to R/16."""
        low = r // 32
        h = g.dense(flat, ch * enc_res * enc_res, c.ae_dims)
        h = g.dense(h, c.ae_dims, low * low * c.ae_dims * 2)
        h = g.node("Reshape", [h, g.const(np.array([-1, c.ae_dims * 2, low, low], np.int64))])
        return g.upscale(h, c.ae_dims * 2, c.ae_dims * 2)

    code = inter()
    code_ch = c.ae_dims * 2
    if c.morph:  # AMP: blend two codes by morph_value
        other = inter()
        m = g.node("Reshape", ["morph_value:0", g.const(np.array([1, 1, 1, 1], np.int64))])
        inv = g.node("Sub", [g.const(np.array(1.0, np.float32)), m])
        code = g.node("Add", [g.node("Mul", [code, m]), g.node("Mul", [other, inv])])

    # face decoder: 3 x (upscale + residual) to R/2, then 3x3 conv to 12 ch + pixel shuffle
    f, fch = code, code_ch
    for level in range(3):
        out_ch = c.d_dims * 2 ** (3 - level)
        f = g.residual(g.upscale(f, fch, out_ch), out_ch)
        fch = out_ch
    f = g.node("DepthToSpace", [g.conv(f, fch, 12, 3, gain=OUT_GAIN)], blocksize=2, mode="DCR")
    face = g.node("Sigmoid", [f])
    celeb_mask = _mask_decoder(g, code, code_ch, c.d_mask_dims, 4)
    dst_mask = _mask_decoder(g, code, code_ch, c.d_mask_dims, 4)

    names = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
    for name, src in zip(names, (dst_mask, face, celeb_mask), strict=True):
        g.nodes.append(helper.make_node("Transpose", [src], [name], perm=[0, 2, 3, 1]))
    inputs = [helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", r, r, 3])]
    if c.morph:
        inputs.append(helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT, [1]))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", r, r, k])
               for n, k in zip(names, (1, 3, 1), strict=True)]
    graph = helper.make_graph(g.nodes, "bench_saehd", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="obs-face-swap bench DFM")
    model.ir_version = 8
    helper.set_model_props(model, {k: str(v) for k, v in asdict(c).items()})
    return model


def macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one batch-1 inference (Conv and MatMul; the rest is noise)."""
    import onnx.shape_inference

    inferred = onnx.shape_inference.infer_shapes(_batch_one(model))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            cout, cin, kh, kw = weights[node.input[1]]
            _, _, h, w = shapes[node.output[0]]
            total += h * w * cout * cin * kh * kw
        elif node.op_type == "MatMul":
            cin, cout = weights[node.input[1]]
            total += cin * cout
    return total


def _batch_one(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    return copy


def ensure_bench_dfm(folder: str | Path | None = None,
                     config: BenchDfmConfig | None = None) -> Path:
    """Path of the bench DFM for `config` in `folder` (default: the user cache), written on
    first use (about 270 MB for the default config; never committed)."""
    from core.runtime import cache_dir

    c = config or BenchDfmConfig()
    base = Path(folder) if folder is not None else cache_dir() / "bench"
    base.mkdir(parents=True, exist_ok=True)
    path = base / c.file_name
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        onnx.save(build_bench_dfm(c), str(tmp))
        tmp.replace(path)  # atomic: a crash mid-write never leaves a truncated model
    return path
