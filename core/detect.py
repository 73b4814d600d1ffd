"""BlazeFace face detection (MediaPipe short- and full-range models): anchors, decoding, NMS.

The frame is letterboxed into the model's square input in its own layout; only that small
image is reordered to RGB and scaled, so a 4K RGBA frame costs one area-resize, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.frame import check_frame, to_rgb
from core.modelfiles import DETECTOR_FULL, DETECTOR_SHORT, builtin_model
from core.runtime import get_session, run

DETECTORS = ("short", "full", "auto", "both")
# two face boxes overlapping this much are one face (tracks that converged, a still's
# detections of one face from two passes or tiles)
DUPLICATE_IOU = 0.6
MIN_INPUT_FACE = 16.0  # px in the model input: smaller faces are missed (measured ~12)
# BlazeFace keypoints, in the detector's order. "Image-left" = smaller x (subject's right).
KEYPOINT_NAMES = ("eye_image_left", "eye_image_right", "nose_tip", "mouth_centre",
                  "ear_image_left", "ear_image_right")


@dataclass
class Detection:
    """One detected face in frame pixels."""

    box: np.ndarray  # (4,) float32 x0, y0, x1, y1
    score: float  # 0..1
    keypoints: np.ndarray  # (6, 2) float32, see KEYPOINT_NAMES

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def ssd_anchors(input_size: int, strides: list[int], per_cell: list[int]) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1] for MediaPipe's SSD layout (fixed size, offset 0.5).

    Layers with the same stride share one grid, anchors of a cell are consecutive.
    """
    anchors = []
    for stride, count in zip(strides, per_cell, strict=True):
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        anchors.append(np.repeat(centres, count, axis=1).reshape(-1, 2))
    return np.concatenate(anchors).astype(np.float32)


# name -> (model file, input size, strides, anchors per cell)
_MODELS = {
    "short": (DETECTOR_SHORT, 128, [8, 16], [2, 6]),
    "full": (DETECTOR_FULL, 192, [4], [1]),
}


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """2x3 affine frame px -> square `size` input, aspect kept, centred (zero padding)."""
    scale = size / max(width, height)
    tx = (size - width * scale) / 2.0
    ty = (size - height * scale) / 2.0
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]], np.float32)


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Square `size` image of `frame` (same layout) and the frame->input matrix.

    Area averaging keeps small faces in big frames from aliasing away (a plain bilinear
    warp from 4K to 128 px samples 1 pixel in 30).
    """
    h, w = frame.shape[:2]
    m = letterbox_matrix(w, h, size)
    nw = max(1, min(size, round(w * m[0, 0])))
    nh = max(1, min(size, round(h * m[1, 1])))
    if w > 4 * nw:
        # Big frames: pick every k-th pixel down to 4x the target first (cheap), then
        # average 4x4 blocks; a full INTER_AREA pass over a 4K frame costs ~8 ms.
        frame = cv2.resize(frame, (4 * nw, 4 * nh), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size, frame.shape[2]), np.uint8)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    # The exact matrix of what was drawn (rounding of nw/nh and the integer offset).
    m = np.array([[nw / w, 0.0, x0], [0.0, nh / h, y0]], np.float32)
    return out, m


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0y0x1y1 box against (N, 4) boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = 0.3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe-style blending NMS: overlapping candidates are averaged, weighted by score.

    BlazeFace fires on many neighbouring anchors; averaging them (instead of keeping the
    single best) gives steadier boxes and keypoints.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (iou(boxes[i], boxes) > threshold)
        w = scores[overlap][:, None]
        box = (boxes[overlap] * w).sum(0) / w.sum()
        kps = (keypoints[overlap] * w[:, :, None]).sum(0) / w.sum()
        out.append((box.astype(np.float32), kps.astype(np.float32), float(scores[i])))
        remaining &= ~overlap
    return out


class FaceDetector:
    """BlazeFace on a frame: the whole frame, plus tiles where small faces would vanish.

    kind: "short" (128 px, faces within ~2 m, fastest), "full" (192 px, small/far faces
    too, but it misses a face that fills the frame), "auto" (full range, then short range
    on the whole frame when full range finds nothing: far and very close faces) or "both"
    (full range, and the short range's faces that it did not find: what a still image
    uses - short range finds some profiles beside a face full range found, e.g. a man in
    profile in front of a frontal one in ../shared/data/real_turns image01505).
    min_size: smallest face kept, in frame px (box long side).
    scan_size: smallest face to look for: frames too big for such a face to survive the
    downscale to the model input are also scanned in tiles (see tiles()); 0: never.
    """

    def __init__(self, kind: str = "full", score_threshold: float = 0.5, min_size: float = 0.0,
                 max_faces: int = 8, scan_size: float = 0.0, nms_threshold: float = 0.3,
                 device: str = "cpu", threads: int = 0) -> None:
        if kind not in DETECTORS:
            raise ValueError(f"detector kind {kind!r}; expected one of {', '.join(DETECTORS)}")
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.kind = kind
        self.score_threshold = score_threshold
        self.min_size = float(min_size)
        self.scan_size = float(scan_size)
        self.max_faces = int(max_faces)
        self.nms_threshold = nms_threshold
        self._models = {}
        for name in ("short", "full") if kind in ("auto", "both") else (kind,):
            file, size, strides, per_cell = _MODELS[name]
            session = get_session(builtin_model(file), device, threads)
            self._models[name] = (session, size, ssd_anchors(size, strides, per_cell))
        self._logit_threshold = float(np.log(score_threshold / (1.0 - score_threshold)))

    def tiles(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Overlapping x0, y0, x1, y1 tiles that make a `scan_size` face big enough for the
        model (~16 input px); none when the whole frame already does.

        BlazeFace sees the frame at 128/192 px: in a 1080p frame a 48 px face would shrink
        to 5-7 px, too small to detect. Tiles keep small faces findable in big frames.
        """
        size = self._models["short" if self.kind == "short" else "full"][1]
        if self.scan_size <= 0 or size / max(width, height) * self.scan_size >= MIN_INPUT_FACE:
            return []
        side = int(size * self.scan_size / MIN_INPUT_FACE)
        # Half-tile steps: any face up to side/2 lies wholly inside some tile; the
        # whole-frame pass finds faces from max(w, h) / 12 px up, which leaves no gap for
        # frames up to 72 x scan_size px (3456 px at scan_size 48).
        step = max(1, side // 2)
        xs = list(range(0, max(1, width - side), step)) + [max(0, width - side)]
        ys = list(range(0, max(1, height - side), step)) + [max(0, height - side)]
        return [(x, y, min(width, x + side), min(height, y + side))
                for y in sorted(set(ys)) for x in sorted(set(xs))]

    def detect(self, frame: np.ndarray, fmt: str) -> list[Detection]:
        """Faces in `frame` (layout `fmt`), best score first, at most max_faces.

        Runs on the whole frame, plus on every tile when scan_size asks for it.
        """
        check_frame(frame, fmt)
        h, w = frame.shape[:2]
        regions = [(0, 0, w, h)] + self.tiles(w, h)
        return self.detect_regions(frame, fmt, regions)

    def detect_regions(self, frame: np.ndarray, fmt: str,
                       regions: list[tuple[int, int, int, int]]) -> list[Detection]:
        """Faces found in any of the x0, y0, x1, y1 `regions` of a checked frame."""
        whole = (0, 0, frame.shape[1], frame.shape[0])
        passes = [("full", regions), ("short", [whole])] if self.kind in ("auto", "both") \
            else [(self.kind, regions)]
        found: list[Detection] = []
        for kind, areas in passes:
            parts = [self._candidates(kind, frame, fmt, region) for region in areas]
            boxes = np.concatenate([p[0] for p in parts])
            if len(boxes):
                kps = np.concatenate([p[1] for p in parts])
                scores = np.concatenate([p[2] for p in parts])
                more = self._select(boxes, kps, scores)
                if self.kind != "both":
                    return more
                found += [d for d in more if not found or iou(
                    d.box, np.stack([f.box for f in found])).max() <= self.nms_threshold]
        return found[:self.max_faces]

    def _select(self, boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray) -> list[Detection]:
        out = []
        for box, points, score in weighted_nms(boxes, kps, scores, self.nms_threshold):
            det = Detection(box=box, score=score, keypoints=points)
            if det.size >= self.min_size:
                out.append(det)
            if len(out) == self.max_faces:
                break
        return out

    def _candidates(self, name: str, frame: np.ndarray, fmt: str,
                    region: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
        """Raw (pre-NMS) boxes, keypoints and scores in frame px, from one region.

        In a tile (not the whole frame), faces cut by the tile's edge are dropped: another
        tile or the whole-frame pass sees them whole.
        """
        x0, y0, x1, y1 = region
        whole = region == (0, 0, frame.shape[1], frame.shape[0])
        frame = frame[y0:y1, x0:x1]
        session, size, anchors = self._models[name]
        image, m = letterbox(frame, size)
        x = to_rgb(image, fmt).astype(np.float32) * (2.0 / 255.0) - 1.0
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        reg, cls = run(session, {session.get_inputs()[0].name: x})
        logits = np.clip(cls[0, :, 0], -100.0, 100.0)
        keep = np.flatnonzero(logits > self._logit_threshold)
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0)
        reg = reg[0, keep] / size
        centre = reg[:, 0:2] + anchors[keep]
        half = reg[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anchors[keep][:, None, :]
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        # Model-input [0,1] -> input px -> frame px (undo the letterbox and the tile offset).
        sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
        boxes = (boxes * size - [tx, ty, tx, ty]) / [sx, sy, sx, sy] + [x0, y0, x0, y0]
        kps = (kps * size - [tx, ty]) / [sx, sy] + [x0, y0]
        if not whole:
            inside = ((boxes[:, 0] >= x0) & (boxes[:, 1] >= y0) & (boxes[:, 2] <= x1)
                      & (boxes[:, 3] <= y1))
            boxes, kps, scores = boxes[inside], kps[inside], scores[inside]
        return boxes.astype(np.float32), kps.astype(np.float32), scores
