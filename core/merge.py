"""One merge for every swapper: mask, colour transfer, paste-back into the face ROI.

Everything heavy happens in the small crop (S x S) or in the face's region of interest in
the frame, never on the full frame: at 1080p the merge must cost a few milliseconds. Pixels
where the final (feathered, warped) mask is exactly zero are left bit-identical, and the
alpha channel of RGBA/BGRA frames is never written.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.adjust import compress_colors
from core.align import crop_scale, face_motion
from core.face import FACE_OVAL, Face
from core.frame import check_frame, to_bgr, to_rgb
from core.settings import COLOR_TRANSFERS, SwapSettings
from core.swap.base import SwapOutput


def _as3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])


def _check_output(out: SwapOutput) -> int:
    crop = out.crop
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 \
            or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        shape = getattr(crop, "shape", None)
        raise ValueError(f"swap crop must be (S, S, 3) uint8 RGB, got {shape}")
    if np.asarray(out.matrix).shape != (2, 3):
        raise ValueError(f"swap matrix must be 2x3, got {np.asarray(out.matrix).shape}")
    size = crop.shape[0]
    if out.mask is not None and out.mask.shape != (size, size):
        raise ValueError(f"swap mask shape {out.mask.shape} does not match crop {size}x{size}")
    if (out.backdrop is None) != (out.coverage is None) or out.backdrop is not None and (
            out.backdrop.shape != crop.shape or out.backdrop.dtype != np.uint8
            or out.coverage.shape != (size, size) or out.coverage.dtype != np.float32):
        raise ValueError(f"a swap backdrop must be {crop.shape} uint8 with a ({size}, {size}) "
                         "float32 coverage, and the one comes with the other")
    return size


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` (uint8) grown by `radius` px in every direction: everything within `radius` of
    its full (255) pixels becomes 255. A distance transform: 0.3 ms for a 256 px crop where
    dilating by a disc of 40 px took 5."""
    if radius <= 0:
        return mask
    distance = cv2.distanceTransform(cv2.bitwise_not(mask), cv2.DIST_L2, 5)
    return cv2.max(mask, cv2.compare(distance, float(radius), cv2.CMP_LE))


def hull_mask(face: Face, matrix: np.ndarray, size: int, grow_px: int = 0) -> np.ndarray:
    """Face-oval hull of the live landmarks, drawn in crop space and grown by `grow_px`:
    float32 (size, size) 0/1."""
    pts = face.landmarks[FACE_OVAL, :2].astype(np.float64)
    crop_pts = pts @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix)[:, 2]
    hull = cv2.convexHull(np.round(crop_pts * 16).astype(np.int32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return grow(mask, grow_px).astype(np.float32) * np.float32(1 / 255)


def feather(mask: np.ndarray, erode_px: float, blur_px: float) -> np.ndarray:
    """Erode (or dilate when negative), then blur; the result is exactly 0 on the crop border.

    The border stays zero so that the warp back into the frame never shows the crop's edge.
    """
    radius = int(round(abs(erode_px)))
    if radius > 0:
        # 8-bit morphology is ~3x faster than float; 1/255 steps are below what a frame shows.
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask8 = cv2.convertScaleAbs(mask, alpha=255.0)
        mask8 = cv2.erode(mask8, kernel) if erode_px > 0 else cv2.dilate(mask8, kernel)
        mask = mask8.astype(np.float32) * np.float32(1 / 255)
    else:
        mask = mask.copy()
    blur_r = int(math.ceil(blur_px))
    margin = min(blur_r + 1, mask.shape[0] // 2)
    mask[:margin] = 0.0
    mask[-margin:] = 0.0
    mask[:, :margin] = 0.0
    mask[:, -margin:] = 0.0
    if blur_r > 0:
        # Finite kernel: the mask spreads at most blur_r px, so the ROI stays bounded.
        mask = cv2.GaussianBlur(mask, (2 * blur_r + 1, 2 * blur_r + 1), blur_r / 3.0)
    return mask


def _rct(swap: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in LAB: match mean and std of the swap to the target."""
    scale = np.float32(1 / 255)
    src = cv2.cvtColor(swap.astype(np.float32) * scale, cv2.COLOR_RGB2LAB)
    dst = cv2.cvtColor(target.astype(np.float32) * scale, cv2.COLOR_RGB2LAB)
    mu_s, sd_s = (v.reshape(3) for v in cv2.meanStdDev(src, mask=inside))
    mu_d, sd_d = (v.reshape(3) for v in cv2.meanStdDev(dst, mask=inside))
    gain = sd_d / np.maximum(sd_s, 1e-3)
    # Per-channel affine map as one 3x4 cv2.transform (numpy broadcasting over 3 is slow).
    affine = np.hstack([np.diag(gain), (mu_d - mu_s * gain)[:, None]]).astype(np.float32)
    rgb = cv2.cvtColor(cv2.transform(src, affine), cv2.COLOR_LAB2RGB)
    return cv2.convertScaleAbs(np.clip(rgb, 0.0, 1.0), alpha=255.0)  # rounds to uint8


def _hist(swap: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching of the swap to the target, statistics inside the mask."""
    levels = np.arange(256, dtype=np.float64)
    channels = []
    for c in range(3):
        src_cdf = np.cumsum(cv2.calcHist([swap], [c], inside, [256], [0, 256]).ravel())
        dst_cdf = np.cumsum(cv2.calcHist([target], [c], inside, [256], [0, 256]).ravel())
        lut = np.interp(src_cdf / src_cdf[-1], dst_cdf / dst_cdf[-1], levels)
        channels.append(cv2.LUT(swap[..., c], np.clip(lut + 0.5, 0, 255).astype(np.uint8)))
    return cv2.merge(channels)


def transfer_color(swap: np.ndarray, target: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Colour-match the swapped RGB crop to the original RGB crop, statistics inside `mask`."""
    if mode not in COLOR_TRANSFERS:
        raise ValueError(f"colour transfer {mode!r}; expected one of {', '.join(COLOR_TRANSFERS)}")
    inside = (mask > 0.5).astype(np.uint8)
    if mode == "none" or cv2.countNonZero(inside) < 16:
        return swap
    if mode == "rct":
        return _rct(swap, target, inside)
    return _hist(swap, target, inside)


def placement(face: Face, matrix: np.ndarray, settings: SwapSettings,
              backdrop: bool = False) -> np.ndarray:
    """frame -> crop matrix after face_scale and face offset are applied to the swapped face:
    matrix . motion^-1 (face_motion). A swap with a backdrop moved its face itself (its
    backdrop, the live surroundings, must stay where they are): its own matrix."""
    motion = None if backdrop else face_motion(face, settings)
    if motion is None:
        return np.asarray(matrix, np.float32)
    return (_as3x3(matrix) @ np.linalg.inv(motion))[:2].astype(np.float32)


MASK_PARTS = {"both": ("source", "celeb", "hull"), "model": ("source", "celeb"),
              "hull": ("hull",), "source": ("source",), "celeb": ("celeb",),
              "source_hull": ("source", "hull"), "celeb_hull": ("celeb", "hull")}
INTERPOLATION_FLAGS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                       "lanczos4": cv2.INTER_LANCZOS4}


def crop_mask(face: Face, out: SwapOutput, settings: SwapSettings) -> np.ndarray:
    """The final feathered mask in crop space (float32 0..1), opacity not yet applied.

    settings.mask names the masks multiplied together (MASK_PARTS): the model's mask of your
    face ("source"), its mask of the swapped face ("celeb"), the outline of your face's
    landmarks ("hull"). A model mask the swapper does not give is left out; when none of
    the chosen masks is there, the outline is used.
    """
    size = _check_output(out)
    given = {"source": out.mask, "celeb": out.celeb_mask}
    parts = [p for p in MASK_PARTS[settings.mask] if p == "hull" or given[p] is not None]
    face_px = face.size * crop_scale(out.matrix)
    mask = hull_mask(face, out.matrix, size, round(out.outline * face_px)) \
        if "hull" in parts or not parts else np.ones((size, size), np.float32)
    for part in parts:
        if part != "hull":
            mask = mask * given[part].astype(np.float32)
    return feather(mask, settings.erode / 100.0 * face_px, settings.blur / 100.0 * face_px)


def merge(frame: np.ndarray, fmt: str, face: Face, out: SwapOutput,
          settings: SwapSettings, keep: np.ndarray | None = None
          ) -> tuple[int, int, int, int] | None:
    """Blend the swapped crop into `frame` in place; returns the touched ROI (x0, y0, x1, y1).

    `keep`: a frame-sized uint8 map (255 = all) of what stays in front of the swap (a hand
    over the face, core.hands.hand_mask): the swap is drawn under it by that much less.

    The mask is crop_mask's (settings.mask); the swapped face is colour-matched
    (settings.color_transfer, from the face's own pixels: out.coverage of them where the
    swap has a backdrop), optionally colour-compressed, drawn over its backdrop (as it is)
    if it has one, and warped into the frame with settings.interpolation. Only the ROI is
    read and written; pixels whose warped mask is 0 keep their exact values.
    Returns None when nothing was written (empty mask, face outside the frame, opacity 0).
    """
    check_frame(frame, fmt)
    mask = crop_mask(face, out, settings)  # checks `out` (settings are checked when made)
    size = mask.shape[0]
    if settings.opacity <= 0.0:
        return None
    swap = out.crop
    if settings.color_transfer != "none":
        original = cv2.warpAffine(frame, np.asarray(out.matrix, np.float32), (size, size),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        face_only = mask if out.backdrop is None else mask * out.coverage
        swap = transfer_color(swap, to_rgb(original, fmt), face_only,
                              settings.color_transfer)
    if settings.color_compression > 0.0:
        face = compress_colors(swap.astype(np.float32) * np.float32(1 / 255),
                               settings.color_compression)
        swap = cv2.convertScaleAbs(face, alpha=255.0)
    if out.backdrop is not None:  # the face, colour-matched, over what is behind it
        swap = cv2.blendLinear(swap, out.backdrop, out.coverage,
                               np.float32(1.0) - out.coverage)
    if settings.opacity < 1.0:
        mask = mask * np.float32(settings.opacity)

    bx, by, bw, bh = cv2.boundingRect((mask > 0).view(np.uint8))
    if bw == 0 or bh == 0:
        return None
    to_crop = placement(face, out.matrix, settings, out.backdrop is not None)
    # Bounding box of the non-zero mask (+1 px for bilinear taps) mapped into the frame.
    corners = np.array([[bx - 1, by - 1], [bx + bw, by - 1], [bx - 1, by + bh],
                        [bx + bw, by + bh]], np.float64)
    to_frame = np.linalg.inv(_as3x3(to_crop))
    pts = corners @ to_frame[:2, :2].T + to_frame[:2, 2]
    height, width = frame.shape[:2]
    x0 = max(int(math.floor(pts[:, 0].min())), 0)
    y0 = max(int(math.floor(pts[:, 1].min())), 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + 1, width)
    y1 = min(int(math.ceil(pts[:, 1].max())) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None

    # ROI px -> crop px, for warpAffine with WARP_INVERSE_MAP.
    roi_to_crop = to_crop.astype(np.float64).copy()
    roi_to_crop[:, 2] += roi_to_crop[:, :2] @ np.array([x0, y0], np.float64)
    dsize = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    roi_mask = cv2.warpAffine(mask, roi_to_crop, dsize, flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if keep is not None:
        roi_mask *= np.float32(1.0) - keep[y0:y1, x0:x1] * np.float32(1 / 255)
    # the swap (RGB) in the frame's colour order; the frame's alpha is kept below
    color = to_bgr(swap, "rgb") if fmt.startswith("bgr") else np.ascontiguousarray(swap)
    roi_swap = cv2.warpAffine(color, roi_to_crop, dsize,
                              flags=INTERPOLATION_FLAGS[settings.interpolation]
                              | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    region = frame[y0:y1, x0:x1]
    # OpenCV reads strided ROIs fast (numpy's 3-of-4 channel views are slow); RGBA2RGB only
    # drops alpha, it keeps the channel order, so it serves BGRA too.
    base = cv2.cvtColor(region, cv2.COLOR_RGBA2RGB) if region.shape[2] == 4 else region
    # base * (1 - m) + swap * m, rounded: where m == 0 the result is exactly base.
    blended = cv2.blendLinear(base, roi_swap, np.float32(1.0) - roi_mask, roi_mask)
    if region.shape[2] == 4:
        blended = cv2.merge([*cv2.split(blended), cv2.extractChannel(region, 3)])
    region[...] = blended
    return x0, y0, x1, y1
