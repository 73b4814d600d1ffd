"""Face tracking: detect rarely, follow each face with FaceMesh on the ROI of its last landmarks.

Per frame, each live track runs FaceMesh on a crop predicted from its previous (raw, not
smoothed) landmarks. The full-frame detector runs only when a track is lost (presence
drops), when no face is tracked, or every `detect_interval` frames to pick up new faces.
Ids are stable while a face is tracked, and a face lost for a moment and found again near
where it vanished gets its old id back. When only one face is swapped (settings.faces
largest or centre), only that face is followed between detection rounds: the others cost
a FaceMesh run each per frame otherwise. They are seen again at every detection round
(with their ids back), where the choice is made afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.acquire import first_landmarks
from core.detect import DUPLICATE_IOU, FaceDetector, iou
from core.face import Face
from core.frame import check_frame
from core.headmodel import HeadModel
from core.landmarks import (
    PRESENCE_THRESHOLD,
    FaceMesh,
    box_of,
    make_face,
    roi_from_landmarks,
)
from core.settings import SwapSettings
from core.smoothing import OneEuroFilter

MATCH_IOU = 0.3  # a detection overlapping a track this much is that track's face
LOST_MEMORY_FRAMES = 30  # how long a lost face's id can be given back
MIN_TRACKED_FACE = 16.0  # px: smaller faces are too coarse for FaceMesh to be of use
# Other crops (core.acquire.other_crops: 3, and 24 more for a turned head) tried per
# detection round on a face FaceMesh does not take from the detection's own crop (a turned
# head, or something that is no face): this many more FaceMesh runs on such a round (two
# took a frame with a turned face not yet found 15.1 -> 20.8 ms p50 on a 2-core VM; all
# 27 at once 43.7); all of them within 14 rounds (a round runs every frame while no face
# is tracked)
TRIES_PER_ROUND = 2
# A detection whose crops have all been tried in vain (matched round to round by SAME_PLACE
# overlap) rests this many detection rounds on its own crop alone before they are tried
# again: a face held at a profile FaceMesh cannot take (a look at a side monitor) would
# otherwise cost the extra runs on every frame while nothing else is tracked (rounds run
# every frame then: 1 s at 30 fps; every detect_interval frames while a face is tracked)
REST_ROUNDS = 30
SAME_PLACE = 0.5
SINGLE_FACE_MODES = ("largest", "centre")  # settings.faces that swap one face, chosen afresh


@dataclass
class _Track:
    id: int
    raw: np.ndarray  # last unsmoothed landmarks: the next ROI comes from these
    presence: float
    smoother: OneEuroFilter
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # box_of(raw)
    model: HeadModel = field(default_factory=HeadModel)  # its own shape, through head turns
    since: int = 0  # the frame this track started on (an id found again starts a new one)


class FaceTracker:
    """Faces of a video stream with stable ids, smoothed landmarks and head pose.

    `process` returns the tracked faces (in largest/centre mode only the chosen one, see the
    module docstring; selection proper is select_faces); `timings` holds
    the last call's milliseconds per stage; `detections` / `frames` count full detections.
    min_face: faces from this size (px) up are searched for in big frames too, one tile
    per detection round (see FaceDetector.tiles); bigger faces are found at once.
    """

    def __init__(self, settings: SwapSettings | None = None, device: str = "cpu",
                 threads: int = 0, detector: str = "auto", min_face: float = 40.0) -> None:
        self.settings = settings or SwapSettings()
        self.detector = FaceDetector(detector, min_size=MIN_TRACKED_FACE,
                                     max_faces=self.settings.max_faces, scan_size=min_face,
                                     device=device, threads=threads)
        self.mesh = FaceMesh(device=device, threads=threads)
        self.timings: dict[str, float] = {"detect": 0.0, "landmarks": 0.0, "smooth": 0.0}
        self.reset()

    def reset(self) -> None:
        """Forget all faces (ids restart at 0)."""
        self._tracks: list[_Track] = []
        self._lost: list[tuple[_Track, int]] = []  # (track, frame lost): id and model back
        self._next_id = 0
        self._since_detect = 0
        self._detect_now = False
        self.frames = 0
        self.detections = 0
        self._untaken: list[tuple[np.ndarray, int]] = []  # (box, rounds tried) of detections

    def update(self, settings: SwapSettings) -> None:
        """Live settings: smoothing strength and detect interval apply from the next frame;
        a new face selection detects on the next frame (faces not followed come back)."""
        if settings.faces != self.settings.faces or settings.max_faces > self.settings.max_faces:
            self._detect_now = True
        self.settings = settings
        self.detector.max_faces = settings.max_faces
        del self._tracks[settings.max_faces:]
        for track in self._tracks:
            track.smoother.set_strength(settings.smoothing)

    def process(self, frame: np.ndarray, fmt: str, timestamp: float | None = None) -> list[Face]:
        """Tracked faces of `frame` (layout `fmt`); `timestamp` in seconds (default: now)."""
        check_frame(frame, fmt)
        t = time.perf_counter() if timestamp is None else float(timestamp)
        self.frames += 1
        self._since_detect += 1
        timings = {"detect": 0.0, "landmarks": 0.0, "smooth": 0.0}

        start = time.perf_counter()
        alive, lost_any = self._follow(frame, fmt)
        timings["landmarks"] += (time.perf_counter() - start) * 1000.0

        interval = max(1, int(self.settings.detect_interval))
        if not alive or lost_any or self._detect_now or self._since_detect >= interval:
            alive = self._detect(frame, fmt, alive, timings)
            self._detect_now = False
        self._tracks = alive
        # ids are kept at least until the next detection round (faces left unfollowed)
        memory = max(LOST_MEMORY_FRAMES, interval + 1)
        self._lost = [e for e in self._lost if self.frames - e[1] <= memory]

        start = time.perf_counter()
        h, w = frame.shape[:2]
        faces = []
        for track in alive:
            smoothed = track.smoother(track.raw, t, scale=_face_scale(track.box))
            face = make_face(smoothed, track.presence, track.id)
            face.extra["frame_size"] = (w, h)
            face.extra["tracked_since"] = track.since
            if track.model.shape is not None:  # the face's own shape, learned while it
                face.extra["shape"] = track.model.shape  # looked at the camera (a persona's)
            faces.append(face)
        if self.settings.faces in SINGLE_FACE_MODES and len(faces) > 1:
            faces = select_faces(faces, self.settings, (w, h))
            self._park_all_but(faces[0].id)
        timings["smooth"] = (time.perf_counter() - start) * 1000.0
        self.timings = timings
        return faces

    def _park_all_but(self, face_id: int) -> None:
        """Stop following every track but `face_id`; they keep their ids for the next round."""
        for track in self._tracks:
            if track.id != face_id:
                self._lost.append((track, self.frames))
        self._tracks = [track for track in self._tracks if track.id == face_id]

    def _follow(self, frame: np.ndarray, fmt: str) -> tuple[list[_Track], bool]:
        """FaceMesh on each track's predicted ROI; tracks whose presence drops are lost."""
        alive: list[_Track] = []
        lost_any = False
        for track in self._tracks:
            landmarks, presence = track.model.follow(frame, fmt, self.mesh, track.raw)
            box = box_of(landmarks)
            if presence >= PRESENCE_THRESHOLD and _on_frame(box, frame.shape):
                track.raw, track.presence, track.box = landmarks, presence, box
                alive.append(track)
            else:
                self._lost.append((track, self.frames))
                lost_any = True
        return _drop_duplicates(alive), lost_any

    def _detect(self, frame: np.ndarray, fmt: str, alive: list[_Track],
                timings: dict[str, float]) -> list[_Track]:
        """Detection: start tracks for faces that no live track covers."""
        start = time.perf_counter()
        # The whole frame plus one tile per round (see FaceDetector.tiles): small faces in
        # big frames are found within a few rounds without one slow frame.
        h, w = frame.shape[:2]
        regions = [(0, 0, w, h)]
        tiles = self.detector.tiles(w, h)
        if tiles:
            regions.append(tiles[self.detections % len(tiles)])
        detections = self.detector.detect_regions(frame, fmt, regions)
        timings["detect"] = (time.perf_counter() - start) * 1000.0
        self.detections += 1
        self._since_detect = 0
        start = time.perf_counter()
        untaken = []
        for det in detections:
            if len(alive) >= self.settings.max_faces:
                break
            if any(_covers(track.box, det.box) for track in alive):
                continue
            rounds = _rounds_tried(self._untaken, det.box)
            landmarks, presence = first_landmarks(self.mesh, frame, fmt, det, TRIES_PER_ROUND,
                                                  rounds, REST_ROUNDS)
            if presence < PRESENCE_THRESHOLD:
                untaken.append((det.box, rounds + 1))
                continue
            # A second pass from its own landmarks fixes the detector's rough framing.
            refined, p2 = self.mesh.run(frame, fmt, roi_from_landmarks(landmarks), check=False)
            if p2 >= PRESENCE_THRESHOLD:
                landmarks, presence = refined, p2
            box = box_of(landmarks)
            if any(_covers(track.box, box) for track in alive):
                continue
            face_id, model = self._reuse(box)
            track = _Track(face_id, landmarks, presence, OneEuroFilter(self.settings.smoothing),
                           box, model, self.frames)
            model.observe(frame, fmt, landmarks)
            model.bootstrap(frame, fmt, landmarks, det.keypoints)  # first seen turned
            alive.append(track)
        self._untaken = untaken
        timings["landmarks"] += (time.perf_counter() - start) * 1000.0
        return alive

    def _reuse(self, box: np.ndarray) -> tuple[int, HeadModel]:
        """The id and head model of a recently lost face at this place, else new ones."""
        if self._lost:
            boxes = np.stack([track.box for track, _ in self._lost])
            overlaps = iou(box, boxes)
            best = int(np.argmax(overlaps))
            if overlaps[best] > MATCH_IOU:
                track, _ = self._lost.pop(best)
                return track.id, track.model
        face_id = self._next_id
        self._next_id += 1
        return face_id, HeadModel()


def _face_scale(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 1.0))


def _on_frame(box: np.ndarray, shape: tuple[int, ...]) -> bool:
    """At least half of the face's box (x0, y0, x1, y1) lies inside the frame."""
    h, w = shape[:2]
    inside = (np.clip(box[2], 0, w) - np.clip(box[0], 0, w)) * \
             (np.clip(box[3], 0, h) - np.clip(box[1], 0, h))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return bool(area > 1.0 and inside >= 0.5 * area)


def _rounds_tried(untaken: list[tuple[np.ndarray, int]], box: np.ndarray) -> int:
    """Detection rounds a detection at `box` has already been tried in vain (0: new)."""
    for seen, rounds in untaken:
        if iou(box, seen[None])[0] >= SAME_PLACE:
            return rounds
    return 0


def _covers(track_box: np.ndarray, box: np.ndarray) -> bool:
    """Does this detection (or new track) belong to an existing track?"""
    if iou(box, track_box[None])[0] > MATCH_IOU:
        return True
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(track_box[0] <= cx <= track_box[2] and track_box[1] <= cy <= track_box[3])


def _drop_duplicates(tracks: list[_Track]) -> list[_Track]:
    """Two tracks that converged on one face: keep the older id."""
    keep: list[_Track] = []
    for track in sorted(tracks, key=lambda tr: tr.id):
        if any(iou(track.box, k.box[None])[0] > DUPLICATE_IOU for k in keep):
            continue
        keep.append(track)
    return keep


def select_faces(faces: list[Face], settings: SwapSettings,
                 frame_size: tuple[int, int] | None = None) -> list[Face]:
    """The faces to swap under settings.faces.

    largest: the biggest face; all: every face, left to right; centre: the face closest to
    the frame centre (frame_size (w, h), else the tracker's face.extra["frame_size"]);
    id: the face whose id is settings.face_id (none if it is not in view); enrolled: every
    face, left to right (the pipeline swaps those core.identity knows as enrolled people).
    """
    if not faces:
        return []
    mode = settings.faces
    if mode in ("all", "enrolled"):
        return sorted(faces, key=lambda f: float(f.box[0] + f.box[2]))
    if mode == "largest":
        return [max(faces, key=lambda f: f.size)]
    if mode == "id":
        return [f for f in faces if f.id == settings.face_id]
    if mode == "centre":
        size = frame_size or faces[0].extra.get("frame_size")
        if size is None:
            raise ValueError("select_faces(centre) needs frame_size (w, h)")
        cx, cy = size[0] / 2.0, size[1] / 2.0

        def distance(f: Face) -> float:
            return float(np.hypot((f.box[0] + f.box[2]) / 2 - cx, (f.box[1] + f.box[3]) / 2 - cy))

        return [min(faces, key=distance)]
    raise ValueError(f"unknown face selection {mode!r}")
