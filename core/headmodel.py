"""A tracked face's own textured 3D model, aligned to each frame through head turns.

Measured on rendered head turns with known truth (core.commands.headturn_render, `bench
--headturn`): FaceMesh is accurate near frontal (0.5 % of the face size) but as the head
turns its points drift towards a frontal face (3-5 % off at 45-60 degrees of yaw, even on a
perfectly framed crop) and a head pose read from them falls 10-18 degrees short. Fitting a
3D template to its 2D points does not help (the points themselves lag: still 13 degrees
short at 60); optical flow between frames follows the turn but comes up ~20 % short of each
step and drifts; and FaceMesh run on the frame warped back to frontal reads about the same
residual turn however far off the estimate is.

What holds is to compare pictures. While the face looks at the camera (FaceMesh's own pose
within FRONTAL degrees) the model learns the face's 3D shape (FaceMesh's frontal points in
the face's own axes, averaged) and its texture (a grey keyframe of the face). Once the head
turns past TRUST_FROM degrees, each frame the model is drawn at the current pose estimate -
a textured triangle mesh, far triangles first, back faces culled (core.mesh) - and
aligned to the frame: an ECC image alignment for position, size and roll, then a parabola
through the picture mismatch one step either side in yaw and in pitch (turned about the
visible face's centre; placed again after a round that turned it by a degree or more). The
mismatch is one minus the normalised correlation over the drawn face, so lighting changes
matter little. The
shape at that pose gives every landmark, hidden ones included; between TRUST_FROM and
TRUST_UNTIL degrees they are blended with FaceMesh's (expressions come from FaceMesh, so
near frontal they are its own). Cost when turned: about ten 96 px renders and one or two
ECC, a few milliseconds per face and frame (see README "Head turns").

A face found turned before any frontal frame starts from a model made of that frame
(bootstrap): the pose from the face detector's nose and ear keypoints (turned_pose, as the
still-image path reads it), FaceMesh's shape made symmetric, the texture of that frame with
the side turned away filled from its mirror image. Once FaceMesh reads the face as frontal
RELEARN_AFTER frames in a row, a model learned from that frame replaces it.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.face import face_shape, mirror_indices
from core.frame import to_rgb
from core.landmarks import PRESENCE_THRESHOLD, FaceMesh, roi_from_landmarks
from core.mesh import MeshWarp, mirror_sources, select_points, signed_areas, triangulate
from core.pose import Pose, apart, fit_pose, head_pose, project, turn, yaw_from_keypoints

FRONTAL = 10.0  # degrees: shape and texture are learned from frames this close to frontal
RELEARN_AFTER = 2  # frames in a row FaceMesh reads as frontal: a bootstrapped model is replaced
LEARN_RATE = 0.2  # weight of one frontal frame in the learned shape (a running mean)
TRUST_FROM, TRUST_UNTIL = 12.0, 25.0  # degrees: FaceMesh's own landmarks weigh 1 -> 0 here
MODEL_POINTS = 468  # landmarks the textured model is drawn with (fewer: less accurate, no faster)
SIDE = 96  # px: the square the model and the frame's face are compared in
MARGIN = 1.3  # that square's side over the face's extent
TEXTURE_SIDE = 160  # px: the keyframe's square
STEP = 3.0  # degrees: the yaw and pitch steps of the parabola search
ITERATIONS = 2  # alignment rounds per frame
PLACE_AGAIN_FROM = 1.0  # degrees a search round turned the pose by: the next starts placed again
MOMENTUM = 0.5  # share of the last frame's turn expected again in this one
RUN_OFF = 25.0  # degrees between the aligned pose and FaceMesh's: it may have run off
SEARCH = 6  # poses tried between FaceMesh's and the aligned one when they are that far
SEARCH_EVERY = 10  # frames at least between two such searches
WELL_MATCHED = 0.05  # mismatch up to which an alignment far from FaceMesh is trusted
MATCHED = 0.25  # mismatch (1 - correlation) up to which the drawn model is the face
EDGE_PX = 3  # px of the drawn face's edge left out of the comparison
_EDGE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_PX + 1, 2 * EDGE_PX + 1))
ROBUST_ROUNDS = 4  # reweighting rounds of the turned shape's placement (turned_pose)
ROBUST_CUT = 3.0  # robust sigmas (1.4826 x median residual) at which a point's weight is 0
ECC = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 12, 1e-3)


Inside = tuple[np.ndarray, np.ndarray]  # (mask, the frame's normalised pixels there)


def turned_pose(landmarks: np.ndarray, keypoints: np.ndarray,
                ramp: tuple[float, float] | None = None) -> tuple[np.ndarray, Pose] | None:
    """A face's symmetric 3D shape (468, 3) and its pose, with the yaw read from the face
    detector's keypoints (core.pose.yaw_from_keypoints) where that reads the turn further
    than FaceMesh's landmarks do, fitted to them in scale and position; None where the
    detector reads no further (FaceMesh's own pose stands). `ramp`: (from, until) degrees of
    the detector's reading over which it weighs 0 -> 1 against the pose fitted to FaceMesh's
    points (core.stills.KEYPOINTS_RAMP); under `from` the shape comes at that fitted pose
    (returning None there instead, FaceMesh's own axes, read the renders' 30-45 degrees 2
    worse and real photos the same). None gives the reading its full weight (the live
    path's bootstrap)."""
    points = np.asarray(landmarks, np.float64)
    shape = face_shape(points)
    if shape is None:
        return None
    shape = (shape + shape[mirror_indices()] * [-1.0, 1.0, 1.0]) / 2.0
    pose = fit_pose(points[:, :2], shape)
    meshed = head_pose(project(shape, pose))[0]
    yaw = yaw_from_keypoints(keypoints, shape)
    # FaceMesh reads turns short: the detector's reading counts only where it is further
    if yaw is None or abs(yaw) <= abs(meshed) or yaw * meshed < 0.0:
        return None
    # under the ramp the shape keeps the pose fitted to FaceMesh's points, which on the
    # renders reads moderate turns 2-3 degrees further than FaceMesh's own axes (core.pose)
    weight = 1.0 if ramp is None else \
        float(np.clip((abs(yaw) - ramp[0]) / (ramp[1] - ramp[0]), 0.0, 1.0))
    rotation, scale, offset = turn(pose, weight * (yaw - meshed), 0.0)
    seen = project(shape, (rotation, scale, offset))[:, :2]
    k, seen_centre, points_centre = _place_robustly(seen, points[:, :2])
    return shape, (rotation, scale * k, points_centre + k * (offset - seen_centre))


def _place_robustly(seen: np.ndarray, points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The turned shape's scale and position refitted to FaceMesh's points: k times its
    spread about its centre, that centre moved onto theirs - weighted least squares, the
    weights (Tukey's biweight, cut at ROBUST_CUT robust sigmas of the residuals) refitted
    ROBUST_ROUNDS times, so that the points FaceMesh has drifted furthest (the far cheek and
    face oval of a turned head) count least. Returns (k, seen centre, points centre).
    On the renders (core.commands.headturn_render, yaw -60..60 step 3) this took the still
    path's landmark error at 45-60 degrees from 3.66 to 3.56 % (astronaut) and 3.13 to 3.01
    % (Grace Hopper) against plain least squares; on ../shared/data/real_turns the
    five-point error moved +0.03 % at 15-30 and -0.02 to -0.11 % in the other bins, the pose
    not at all. A cut of 2 sigmas did more on the renders (3.53 / 2.96 %) but made one more
    45-60 photo recognisable in the privacy mode (tests/test_guard.py: 7.1 % against 5)."""
    weight = np.ones(len(seen))
    for _ in range(ROBUST_ROUNDS + 1):
        total = weight.sum()
        seen_centre = (weight[:, None] * seen).sum(axis=0) / total
        points_centre = (weight[:, None] * points).sum(axis=0) / total
        spread = seen - seen_centre
        k = float((weight[:, None] * spread * (points - points_centre)).sum()
                  / max((weight[:, None] * spread**2).sum(), 1e-9))
        residual = np.linalg.norm(points_centre + k * spread - points, axis=1)
        cut = ROBUST_CUT * 1.4826 * float(np.median(residual)) + 1e-9
        weight = np.clip(1.0 - (residual / cut) ** 2, 0.0, 1.0) ** 2
        if weight.sum() < 0.25 * len(seen):  # degenerate: keep the last fit
            break
    return k, seen_centre, points_centre


def _angle(landmarks: np.ndarray) -> float:
    yaw, pitch, _ = head_pose(landmarks)
    return max(abs(yaw), abs(pitch))


def _grey(image: np.ndarray, fmt: str) -> np.ndarray:
    return cv2.cvtColor(to_rgb(image, fmt), cv2.COLOR_RGB2GRAY)


def _box(points2d: np.ndarray) -> tuple[np.ndarray, float]:
    """(top-left corner, side) of the comparison square around points."""
    lo, hi = points2d.min(axis=0), points2d.max(axis=0)
    side = float(max(hi - lo)) * MARGIN
    return (lo + hi) / 2.0 - side / 2.0, max(side, 8.0)


def _crop(grey: np.ndarray, corner: np.ndarray, side: float, size: int) -> np.ndarray:
    k = size / side
    matrix = np.array([[k, 0.0, -corner[0] * k], [0.0, k, -corner[1] * k]])
    return cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_AREA
                          if k < 1.0 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class HeadModel:
    """One tracked face's learned shape, texture and pose; `follow` once per frame."""

    def __init__(self) -> None:
        self.shape: np.ndarray | None = None  # (468, 3) in the face's own axes, width 1
        self.frames_learned = 0
        self.pose: Pose | None = None  # the last frame's
        self.aligned = False  # the last frame's pose came from the picture alignment
        self._subset: np.ndarray | None = None
        self._triangles: np.ndarray | None = None
        self._model: MeshWarp | None = None  # the grey keyframe on the subset's mesh
        self._motion = np.eye(3)  # the last aligned frame's turn (rotation)
        self._since_search = SEARCH_EVERY
        self.bootstrapped = False  # learned from a turned frame (bootstrap), not a frontal one
        self._frontal_reads = 0  # frames in a row FaceMesh read as frontal

    def follow(self, frame: np.ndarray, fmt: str, mesh: FaceMesh,
               previous: np.ndarray) -> tuple[np.ndarray, float]:
        """This frame's landmarks (468, 3) and presence, from the last frame's landmarks."""
        landmarks, presence = mesh.run(frame, fmt, roi_from_landmarks(previous), check=False)
        landmarks = np.asarray(landmarks, np.float64)
        # a model bootstrapped from a turned frame is a guess (its hidden half mirrored):
        # once FaceMesh reads the face as frontal RELEARN_AFTER frames in a row, that
        # replaces it, wherever the guess's own pose was - it may have lagged a fast turn
        # through frontal, and then ran off on the other side, its mirrored half matching
        # nothing. (A learned model keeps its pose: at a profile FaceMesh can read a face
        # as frontal - a single such misread is also why it takes two frames in a row.)
        mesh_angle = _angle(landmarks)
        self._frontal_reads = self._frontal_reads + 1 if mesh_angle <= FRONTAL and \
            presence >= PRESENCE_THRESHOLD else 0
        relearn = self.bootstrapped and self._frontal_reads >= RELEARN_AFTER
        turned = self.pose is not None and self._model is not None and not relearn and \
            max(_angle(project(self.shape, self.pose)), mesh_angle) > TRUST_FROM
        self.aligned = False
        if not turned:
            self._motion = np.eye(3)
            self.observe(frame, fmt, landmarks)
            return landmarks.astype(np.float32), presence
        grey = _grey(frame, fmt)
        pose = self._align(grey, self._predict())
        # FaceMesh reads turns short, but this far from it the alignment may have run off (a
        # far-turned model matches little of the face): align from FaceMesh's pose as well
        # and keep the better match - at most every SEARCH_EVERY frames, when it matches
        # poorly (a search costs several frames' worth of alignment)
        self._since_search += 1
        meshed = fit_pose(landmarks[:, :2], self.shape)
        if self._since_search >= SEARCH_EVERY and apart(pose, meshed) > RUN_OFF:
            fit = self._fit_of(grey, pose)
            if fit > WELL_MATCHED:
                self._since_search = 0
                other = self._align(grey, self._search(grey, meshed, pose))
                if self._fit_of(grey, other) < fit:
                    pose = other
        self._motion = pose[0] @ self.pose[0].T  # this frame's turn: the next one's guess
        self.pose = pose
        self.aligned = True
        model = project(self.shape, self.pose)
        if presence < PRESENCE_THRESHOLD and self._fit_of(grey, pose) <= MATCHED:
            presence = PRESENCE_THRESHOLD  # FaceMesh gives up on a face far turned: the
            # model's picture still matching keeps it
        angle = _angle(model)
        weight = float(np.clip((TRUST_UNTIL - angle) / (TRUST_UNTIL - TRUST_FROM), 0.0, 1.0))
        return (weight * landmarks + (1.0 - weight) * model).astype(np.float32), presence

    def observe(self, frame: np.ndarray, fmt: str, landmarks: np.ndarray) -> None:
        """Take FaceMesh landmarks found on the frame: pose, and shape and texture when
        frontal."""
        landmarks = np.asarray(landmarks, np.float64)
        if _angle(landmarks) <= FRONTAL:
            self._learn(frame, fmt, landmarks)
        if self.shape is not None:
            self.pose = fit_pose(landmarks[:, :2], self.shape)

    def bootstrap(self, frame: np.ndarray, fmt: str, landmarks: np.ndarray,
                  keypoints: np.ndarray) -> None:
        """A face found turned before any frontal frame: its pose from the detector's
        keypoints (turned_pose), its texture from this frame - the side turned away filled
        from the mirror image - so the turn is followed from here; a model learned once
        FaceMesh reads the face as frontal (RELEARN_AFTER frames in a row) replaces it.
        Nothing when the model has learned, or the face is near frontal."""
        if self._model is not None:
            return
        found = turned_pose(landmarks, keypoints)
        if found is None:
            return
        shape, pose = found
        seen = project(shape, pose)
        if _angle(seen) <= TRUST_FROM:
            return
        triangles = triangulate(shape[:, :2].astype(np.float32))
        corner, side = _box(seen[:, :2])
        k = TEXTURE_SIDE / side
        texture = _crop(_grey(frame, fmt), corner, side, TEXTURE_SIDE)
        frontal = (shape[:, :2] * TEXTURE_SIDE).astype(np.float32)  # the mesh's orientation
        sources = mirror_sources((seen[:, :2] - corner) * k, seen[:, 2] * k, triangles,
                                 mirror_indices(), np.sign(signed_areas(frontal[triangles])))
        self.shape, self.pose = shape, pose
        self._subset, self._triangles = np.arange(len(shape)), triangles
        self._model = MeshWarp(texture[..., None], frontal, triangles, map_scale=1.0,
                               sources=sources)
        self.bootstrapped = True

    # --- internals -----------------------------------------------------------------------
    def _learn(self, frame: np.ndarray, fmt: str, landmarks: np.ndarray) -> None:
        """Fold a near-frontal result into the shape and take its texture as the keyframe."""
        canonical = face_shape(landmarks)
        if canonical is None:
            return
        if self.bootstrapped:  # the first frontal frame: learned afresh from it
            self.shape, self.bootstrapped = None, False
        if self.shape is None:
            self.shape = canonical
            self._subset = select_points(canonical, MODEL_POINTS)
            self._triangles = triangulate(canonical[self._subset, :2].astype(np.float32))
        else:
            self.shape = (1.0 - LEARN_RATE) * self.shape + LEARN_RATE * canonical
        corner, side = _box(landmarks[:, :2])
        texture = _crop(_grey(frame, fmt), corner, side, TEXTURE_SIDE)
        points = (landmarks[self._subset, :2] - corner) * (TEXTURE_SIDE / side)
        self._model = MeshWarp(texture[..., None], points.astype(np.float32), self._triangles,
                               map_scale=1.0)
        self.frames_learned += 1

    def _draw(self, pose: Pose, corner: np.ndarray, side: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """The model at `pose` in the comparison square: (grey picture, triangle map)."""
        seen = project(self.shape[self._subset], pose)
        drawn, shown = self._model.render(self._local(seen, corner, side), SIDE,
                                          depth=seen[:, 2])
        return drawn.reshape(SIDE, SIDE), shown  # one channel (remap drops the axis)

    def _local(self, seen: np.ndarray, corner: np.ndarray, side: float) -> np.ndarray:
        return ((seen[:, :2] - corner) * (SIDE / side)).astype(np.float32)

    @staticmethod
    def _compare(drawn: np.ndarray, inside: Inside | None) -> float:
        """1 - normalised correlation of the drawn face and the frame's square, inside the
        face (`inside`: _inside of the drawing's triangle map)."""
        if inside is None:
            return 1.0
        mask, target = inside
        a = drawn.reshape(SIDE, SIDE)[mask].astype(np.float32)
        a = (a - a.mean()) / (a.std() + 1e-3)
        return 1.0 - float(np.mean(a * target))

    @staticmethod
    def _inside(shown: np.ndarray, target: np.ndarray) -> Inside | None:
        """Where drawings with this triangle map are compared with the frame's square: the
        drawn face less its silhouette's edge (where model and face differ most), and the
        square's normalised pixels there; None when too little of the face is drawn. Made
        once for the five drawings of a yaw / pitch round, which share the map."""
        mask = cv2.erode((shown >= 0).view(np.uint8), _EDGE).view(bool)
        b = target[mask].astype(np.float32)
        if b.size < 50:
            return None
        return mask, (b - b.mean()) / (b.std() + 1e-3)

    def _mismatch(self, grey: np.ndarray, pose: Pose, corner: np.ndarray,
                  side: float) -> tuple[float, np.ndarray, np.ndarray]:
        """(mismatch, the drawn model, its triangle map) of the model at `pose` against the
        frame's square at (corner, side)."""
        drawn, shown = self._draw(pose, corner, side)
        return self._compare(drawn, self._inside(shown, _crop(grey, corner, side, SIDE))), \
            drawn, shown

    def _predict(self) -> Pose:
        """The pose expected now: the last one turned on as much as it turned last frame."""
        rotation, scale, offset = self.pose
        turned, _ = cv2.Rodrigues(self._motion)
        return cv2.Rodrigues(turned * MOMENTUM)[0] @ rotation, scale, offset

    def _fit_of(self, grey: np.ndarray, pose: Pose) -> float:
        """The mismatch of the model at `pose` in its own comparison square."""
        corner, side = _box(project(self.shape, pose)[:, :2])
        return self._mismatch(grey, pose, corner, side)[0]

    def _search(self, grey: np.ndarray, start: Pose, end: Pose) -> Pose:
        """The best-matching of SEARCH poses evenly between two rotations (placed each)."""
        relative, _ = cv2.Rodrigues(end[0] @ start[0].T)
        best, best_fit = start, float("inf")
        for share in np.linspace(0.0, 1.0, SEARCH):
            rotation = cv2.Rodrigues(relative * share)[0] @ start[0]
            pose = (rotation, start[1], start[2])
            pose = self._place(grey, pose, *_box(project(self.shape, pose)[:, :2]))
            fit = self._fit_of(grey, pose)
            if fit < best_fit:
                best, best_fit = pose, fit
        return best

    def _align(self, grey: np.ndarray, pose: Pose) -> Pose:
        """Place (ECC), then ITERATIONS rounds of the yaw and pitch search; after a round that
        turned the pose by PLACE_AGAIN_FROM degrees or more, the next starts from placing it
        again: the prediction was off (a fast turn, a turn reversed), and a pose turned on is
        judged best where it is placed - the mismatch of an unplaced pose favours the
        placement it has. With _turn's steps about the visible centre, on renders of 11
        portraits at 4 degrees a frame, 30-75 degrees: 0.33-0.48 frames behind the head,
        2.2-3.1 degrees off, against 1.1-1.6 and 4.8-8.2 before; a placement more on 0.45 /
        0.5 / 0.85 of the turned frames held still / at 2 / at 4 degrees a frame (README
        "Fast turns").
        """
        corner, side = _box(project(self.shape, pose)[:, :2])
        pose = self._place(grey, pose, corner, side)
        turned_by = 0.0
        for _ in range(ITERATIONS):
            if turned_by >= PLACE_AGAIN_FROM:
                pose = self._place(grey, pose, corner, side)
            pose, turned_by = self._turn(grey, pose, corner, side)
        return pose

    def _place(self, grey: np.ndarray, pose: Pose, corner: np.ndarray, side: float) -> Pose:
        """Position, size and roll: ECC between the drawn model and the frame's square."""
        drawn, shown = self._draw(pose, corner, side)
        target = _crop(grey, corner, side, SIDE)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(drawn.astype(np.float32), target.astype(np.float32),
                                           warp, cv2.MOTION_AFFINE, ECC,
                                           (shown >= 0).view(np.uint8), 3)
        except cv2.error:
            return pose  # did not converge: keep the pose
        seen = project(self.shape, pose)[:, :2]
        local = (seen - corner) * (SIDE / side)
        moved = local @ warp[:, :2].T.astype(np.float64) + warp[:, 2]
        return fit_pose(moved * (side / SIDE) + corner, self.shape)

    def _turn(self, grey: np.ndarray, pose: Pose, corner: np.ndarray, side: float
              ) -> tuple[Pose, float]:
        """Yaw and pitch: the vertex of a parabola through the mismatch at -STEP, 0, +STEP
        on each axis; (the pose, the most degrees it turned by; unturned where too little of
        the model is drawn in the square to compare). The model is drawn once; the steps
        reuse its triangle map. Each step turns the model about the centre of its
        visible face, which stays where it is: turned about the shape's own origin, a
        far-turned face's visible half slid sideways with every step, so the mismatch
        favoured the turn the model had - after a turn reversed far out the pose stayed up
        to 13 degrees beyond the head for 5-10 frames (renders at 4 degrees a frame)."""
        drawn, shown = self._draw(pose, corner, side)
        inside = self._inside(shown, _crop(grey, corner, side, SIDE))
        if inside is None:
            return pose, 0.0
        centre = self._compare(drawn, inside)
        points = self.shape[self._subset]
        visible = np.unique(self._model.triangles[np.unique(shown[shown >= 0])])
        anchor = project(points, pose)[visible, :2].mean(axis=0)

        def turned(yaw: float, pitch: float) -> Pose:
            rotation, scale, offset = turn(pose, yaw, pitch)
            seen = project(points, (rotation, scale, offset))
            return rotation, scale, offset + anchor - seen[visible, :2].mean(axis=0)
        shifts = []
        for axis in (0, 1):
            sides = []
            for sign in (-1.0, 1.0):
                step = (sign * STEP, 0.0) if axis == 0 else (0.0, sign * STEP)
                seen = project(points, turned(*step))
                moved = self._model.rerender(shown, self._local(seen, corner, side))
                sides.append(self._compare(moved, inside))
            curve = sides[0] + sides[1] - 2.0 * centre
            if curve <= 1e-9:  # no minimum in between: go to the better side
                shift = -1.0 if sides[0] < sides[1] else 1.0
            else:
                shift = 0.5 * (sides[0] - sides[1]) / curve
            shifts.append(float(np.clip(shift, -1.0, 1.0)) * STEP)
        return turned(*shifts), max(abs(v) for v in shifts)
