"""Tiny ONNX test doubles with the exact DFM, inswapper and ArcFace contracts (design §4).

Real swap weights are large and licence-bound, so tests and benchmarks run these instead.
Each double has a known, deliberately asymmetric effect, reproduced in numpy by the
`expected_*` functions, so that a wrong colour order (RGB vs BGR), layout (NHWC vs NCHW),
value range ([0,1] vs [0,255]), a flipped crop, a missing morph_value or an unused emap all
change the result. `write_doubles(folder)` writes every double (plus broken files for the
registry) to a folder for benchmarks and OBS tests:
`python -m tests.doubles OUT_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9
# DFM celeb face (BGR): flip left-right, then B*0.5, G, 1-R; times (0.5 + 0.5*morph).
DFM_SCALE = np.array([0.5, 1.0, -1.0], np.float32)
DFM_BIAS = np.array([0.0, 0.0, 1.0], np.float32)
# inswapper output (RGB): flip left-right, R*0.9, G*0.6, B*0.3, plus 0.1 * (source @ W).
SWAP_SCALE = np.array([0.9, 0.6, 0.3], np.float32)
SWAP_GAIN = 0.1
SEED = 1234


def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed random matrices: inswapper source->offset, ArcFace pool->512, bias, emap."""
    rng = np.random.default_rng(SEED)
    source_w = rng.standard_normal((512, 3)).astype(np.float32)
    arc_w = rng.standard_normal((12, 512)).astype(np.float32)
    arc_b = rng.standard_normal((512,)).astype(np.float32)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512.0)).astype(np.float32)
    return source_w, arc_w, arc_b, emap


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="obs-face-swap-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def dfm_masks(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(face mask, celeb mask), each (R, R): a left->right ramp and a top-1 / bottom-0.5 step."""
    ramp = ((np.arange(resolution, dtype=np.float32) + 0.5) / resolution)[None, :]
    face = np.repeat(ramp, resolution, axis=0)
    celeb = np.ones((resolution, resolution), np.float32)
    celeb[resolution // 2:] = 0.5
    return face, celeb


def build_dfm(resolution: int = 224, morph: bool = False,
              poison: float | None = None) -> onnx.ModelProto:
    """A DFM: in_face:0 (N,R,R,3) BGR [0,1] [+ morph_value:0 (1,)] -> 3 outputs by position.
    `poison` (nan or inf) multiplies its face output: a broken model that still runs."""
    r = resolution
    face_mask, celeb_mask = dfm_masks(r)
    inits = [
        _const("flip_idx", np.arange(r - 1, -1, -1, dtype=np.int64)),
        _const("scale", DFM_SCALE.reshape(1, 1, 1, 3)),
        _const("bias", DFM_BIAS.reshape(1, 1, 1, 3)),
        _const("zero", np.array(0.0, np.float32)),
        _const("one", np.array(1.0, np.float32)),
        _const("half", np.array([0.5], np.float32)),
        _const("ch_start", np.array([0], np.int64)),
        _const("ch_end", np.array([1], np.int64)),
        _const("ch_axis", np.array([3], np.int64)),
        _const("face_mask_c", face_mask.reshape(1, r, r, 1)),
        _const("celeb_mask_c", celeb_mask.reshape(1, r, r, 1)),
    ]
    nodes = [
        helper.make_node("Gather", ["in_face:0", "flip_idx"], ["flipped"], axis=2),
        helper.make_node("Mul", ["flipped", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["coloured"]),
        helper.make_node("Slice", ["in_face:0", "ch_start", "ch_end", "ch_axis"], ["chan0"]),
        helper.make_node("Mul", ["chan0", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "face_mask_c"], ["out_face_mask:0"]),
        helper.make_node("Add", ["zeros", "celeb_mask_c"], ["out_celeb_face_mask:0"]),
    ]
    inputs = [helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", r, r, 3])]
    if morph:
        inputs.append(helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT, [1]))
        nodes += [
            helper.make_node("Mul", ["morph_value:0", "half"], ["morph_half"]),
            helper.make_node("Add", ["morph_half", "half"], ["factor"]),
            helper.make_node("Mul", ["coloured", "factor"], ["morphed"]),
        ]
        last = "morphed"
    else:
        last = "coloured"
    if poison is None:
        nodes.append(helper.make_node("Clip", [last, "zero", "one"], ["out_celeb_face:0"]))
    else:
        inits.append(_const("poison", np.array(poison, np.float32)))
        nodes += [helper.make_node("Clip", [last, "zero", "one"], ["clipped"]),
                  helper.make_node("Mul", ["clipped", "poison"], ["out_celeb_face:0"])]
    outputs = [
        helper.make_tensor_value_info("out_face_mask:0", TensorProto.FLOAT, ["N", r, r, 1]),
        helper.make_tensor_value_info("out_celeb_face:0", TensorProto.FLOAT, ["N", r, r, 3]),
        helper.make_tensor_value_info("out_celeb_face_mask:0", TensorProto.FLOAT, ["N", r, r, 1]),
    ]
    return _model(helper.make_graph(nodes, "dfm_double", inputs, outputs, inits))


def expected_dfm(in_face_bgr: np.ndarray, morph: float | None = None) -> np.ndarray:
    """What the DFM double returns as out_celeb_face:0 for a (N,R,R,3) BGR [0,1] batch."""
    out = in_face_bgr[:, :, ::-1, :] * DFM_SCALE + DFM_BIAS
    if morph is not None:
        out = out * (0.5 + 0.5 * morph)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def build_arcface() -> onnx.ModelProto:
    """ArcFace embedder: [1,3,112,112] -> [1,512]; 2x2 average pooling per channel @ W + b."""
    _, arc_w, arc_b, _ = _weights()
    inits = [_const("arc_w", arc_w), _const("arc_b", arc_b)]
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[56, 56],
                         strides=[56, 56]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "arc_w"], ["proj"]),
        helper.make_node("Add", ["proj", "arc_b"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes, "arcface_double",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])], inits)
    return _model(graph)


def expected_arcface(blob: np.ndarray) -> np.ndarray:
    """The ArcFace double's raw (not normalised) output for a [1,3,112,112] blob."""
    _, arc_w, arc_b, _ = _weights()
    pooled = blob.reshape(1, 3, 2, 56, 2, 56).mean(axis=(3, 5)).reshape(1, 12)
    return (pooled @ arc_w + arc_b).astype(np.float32)


def build_inswapper() -> onnx.ModelProto:
    """inswapper: target [1,3,128,128] RGB [0,1], source [1,512] -> output; emap last init."""
    source_w, _, _, emap = _weights()
    inits = [
        _const("flip_idx", np.arange(127, -1, -1, dtype=np.int64)),
        _const("scale", SWAP_SCALE.reshape(1, 3, 1, 1)),
        _const("source_w", source_w * SWAP_GAIN),
        _const("offset_shape", np.array([1, 3, 1, 1], np.int64)),
        _const("zero", np.array(0.0, np.float32)),
        _const("one", np.array(1.0, np.float32)),
        _const("emap", emap),  # must stay LAST: consumers read the emap from here
    ]
    nodes = [
        helper.make_node("Gather", ["target", "flip_idx"], ["flipped"], axis=3),
        helper.make_node("Mul", ["flipped", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["source", "source_w"], ["offset"]),
        helper.make_node("Reshape", ["offset", "offset_shape"], ["offset4"]),
        helper.make_node("Add", ["scaled", "offset4"], ["shifted"]),
        helper.make_node("Clip", ["shifted", "zero", "one"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "inswapper_double",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])], inits)
    return _model(graph)


def emap() -> np.ndarray:
    """The 512x512 emap stored as the inswapper double's last initializer."""
    return _weights()[3].copy()


def expected_inswapper(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The inswapper double's output for target [1,3,128,128] and source [1,512]."""
    source_w = _weights()[0] * SWAP_GAIN
    out = target[..., ::-1] * SWAP_SCALE.reshape(1, 3, 1, 1) \
        + (source @ source_w).reshape(1, 3, 1, 1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def build_foreign() -> onnx.ModelProto:
    """A valid ONNX model that is no swap model (an image classifier-like signature)."""
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["logits"])]
    graph = helper.make_graph(
        nodes, "foreign",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 1, 1])])
    return _model(graph)


def build_slow_chain(nodes: int = 2000, size: int = 512) -> onnx.ModelProto:
    """x (size, size) -> x @ W @ W ... (`nodes` MatMuls): seconds of CPU in many small
    graph nodes, the shape of a slow model that a cancelled run stops part-way through."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    names = ["x"] + [f"h{i}" for i in range(nodes)]
    graph = helper.make_graph(
        [helper.make_node("MatMul", [names[i], "w"], [names[i + 1]]) for i in range(nodes)],
        "slow_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [size, size])],
        [_const("w", w)])
    return _model(graph)


def synthetic_face(cx: float, cy: float, size: float, angle_deg: float = 0.0):
    """A Face with plausible FaceMesh geometry (oval, eyes, nose, mouth) for merge tests.

    `size` is the face width in px; the oval is 1.25x taller than wide. Points not in a
    named subset sit on the nose tip so they never stretch the hull.
    """
    from core.face import (
        EYE_IMAGE_LEFT,
        EYE_IMAGE_RIGHT,
        FACE_OVAL,
        MOUTH_CORNER_IMAGE_LEFT,
        MOUTH_CORNER_IMAGE_RIGHT,
        NOSE_TIP,
        Face,
    )

    half_w, half_h = size / 2.0, size * 0.625
    local = np.zeros((468, 2), np.float64)
    local[:] = (0.0, 0.1 * half_h)
    t = np.linspace(-np.pi / 2, 1.5 * np.pi, len(FACE_OVAL), endpoint=False)
    local[FACE_OVAL] = np.stack([half_w * np.cos(t), half_h * np.sin(t)], axis=1)
    for index, ex in ((EYE_IMAGE_LEFT, -0.36), (EYE_IMAGE_RIGHT, 0.36)):
        e = np.linspace(0, 2 * np.pi, len(index), endpoint=False)
        local[index] = np.stack([ex * half_w + 0.12 * half_w * np.cos(e),
                                 -0.2 * half_h + 0.05 * half_h * np.sin(e)], axis=1)
    local[NOSE_TIP] = (0.0, 0.1 * half_h)
    local[MOUTH_CORNER_IMAGE_LEFT] = (-0.3 * half_w, 0.45 * half_h)
    local[MOUTH_CORNER_IMAGE_RIGHT] = (0.3 * half_w, 0.45 * half_h)
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    xy = local @ rot.T + (cx, cy)
    landmarks = np.zeros((468, 3), np.float32)
    landmarks[:, :2] = xy
    oval = xy[FACE_OVAL]
    box = np.array([*oval.min(0), *oval.max(0)], np.float32)
    return Face(landmarks=landmarks, box=box, score=1.0, pose=(0.0, 0.0, angle_deg))


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_truncated(source: Path, path: str | Path, keep: float = 0.5) -> Path:
    """A copy of `source` cut to `keep` of its size: a half-finished download."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def write_doubles(folder: str | Path, resolution: int = 224, broken: bool = False
                  ) -> dict[str, Path]:
    """Write every double to `folder`; with `broken`, also the three unusable files.

    Names: dfm (plain), dfm_amp (with morph_value), inswapper_128 + w600k_r50 (its embedder)
    and, when broken: truncated.dfm, not_onnx.onnx, foreign.onnx.
    """
    folder = Path(folder)
    files = {
        "dfm": save(build_dfm(resolution), folder / f"double_{resolution}.dfm"),
        "dfm_amp": save(build_dfm(resolution, morph=True), folder / f"double_amp_{resolution}.dfm"),
        "inswapper": save(build_inswapper(), folder / "inswapper_128.onnx"),
        "arcface": save(build_arcface(), folder / "w600k_r50.onnx"),
    }
    if broken:
        files["truncated"] = write_truncated(files["dfm"], folder / "truncated.dfm")
        not_onnx = folder / "not_onnx.onnx"
        not_onnx.write_text("this is a text file, not a model\n")
        files["not_onnx"] = not_onnx
        files["foreign"] = save(build_foreign(), folder / "foreign.onnx")
    return files


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.doubles OUT_DIR")
    for kind, written in write_doubles(sys.argv[1]).items():
        print(f"{kind}: {written}")
