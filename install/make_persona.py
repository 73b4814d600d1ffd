"""Build the default persona: a composite face that depicts no single real person.

Sources (public domain, committed under models/samples with provenance): scikit-image's
astronaut.png (NASA portrait) and matplotlib's grace_hopper.jpg (US Navy portrait). Each
portrait and its mirror image are aligned to a whole-face template, warped piecewise-affine
onto the mean landmark shape of all four, and averaged. The average of two people, each
also mirrored, has the shape and texture of neither.

    .venv/bin/python install/make_persona.py [--size 512] [-o models/personas/default.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.align import similarity, whole_face_template  # noqa: E402
from core.face import FACE_OVAL  # noqa: E402
from core.imageio import read_rgb  # noqa: E402
from core.mesh import MeshWarp, mesh_points, select_points, triangulate  # noqa: E402
from core.stills import landmarks_for_image  # noqa: E402

SOURCES = ("models/samples/astronaut.png", "models/samples/grace_hopper.jpg")


def aligned_face(image_rgb: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image cropped to the whole-face template and its landmarks in crop px."""
    face = landmarks_for_image(image_rgb)
    if face is None:
        raise SystemExit("make_persona: no face found in a source image")
    matrix = similarity(face.points5, whole_face_template(size))
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
    points = face.landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return crop, points.astype(np.float32)


def composite(images: list[np.ndarray], size: int) -> np.ndarray:
    """Average of `images` (and their mirrors), each warped onto the mean landmark shape."""
    faces = []
    for image in images:
        faces.append(aligned_face(image, size))
        faces.append(aligned_face(np.ascontiguousarray(image[:, ::-1]), size))
    mean_shape = np.mean([points for _, points in faces], axis=0)
    subset = select_points(mean_shape, count=300)
    target = mesh_points(mean_shape, subset)
    triangles = triangulate(target)
    total = np.zeros((size, size, 3), np.float64)
    for crop, points in faces:
        warp = MeshWarp(crop, mesh_points(points, subset), triangles, map_scale=1.0)
        total += warp.warp(target, size)
    return soften_background(total / len(faces), mean_shape)


def soften_background(image: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Blur everything outside the face: the averaged hair and backdrops are double images."""
    oval = shape[FACE_OVAL]
    centre = oval.mean(axis=0)
    outline = np.round((centre + 1.12 * (oval - centre)) * 16).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [outline], 1.0, cv2.LINE_AA, 4)
    sigma = image.shape[0] / 40.0
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]
    backdrop = cv2.GaussianBlur(image, (0, 0), image.shape[0] / 25.0)
    blended = image * mask + backdrop * (1.0 - mask)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="output side in px")
    parser.add_argument("-o", "--output", type=Path,
                        default=ROOT / "models" / "personas" / "default.png")
    args = parser.parse_args()
    images = [read_rgb(ROOT / name) for name in SOURCES]
    result = composite(images, args.size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.output), np.ascontiguousarray(result[..., ::-1])):
        raise SystemExit(f"make_persona: cannot write {args.output}")
    print(f"make_persona: wrote {args.output} ({args.size}x{args.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
