"""Hands near faces: MediaPipe's palm detector and hand landmarks, and the hand's silhouette.

A hand in front of the face must stay in front of the swap ("wave your hand in front of your
face" is how a viewer tests a live swap). Hands are only looked for where they can cover a
tracked face: the palm detector (palm_detection_lite, 192 px) runs on the region around each
face every `detect_interval` frames while fewer than `max_hands` hands are followed (and
soon after one is lost); where it finds fewer palms than `max_hands`, the hand model is
also asked about a few crops where a covering hand shows none (PROBES), a crop that half
shows a hand once more framed by its own landmarks (REFRAME); a hand found is
followed frame to frame by the hand landmark model (hand_landmark_lite, 224 px) on a crop
predicted from its last landmarks, as MediaPipe's hand tracking does - except while its crop
looks as it did when the model last ran (a chin resting on a hand): then its landmarks are
kept, for at most REUSE frames in a row, so a held hand runs the model on one frame in three.
No face, no hand search: a frame without faces costs nothing here (but for a follow job
started as it came in, while the hands of the frame before were known).

The silhouette drawn from the 21 landmarks is a capsule per finger bone and round the palm
polygon's edge, FINGER_WIDTH knuckle spacings wide (a finger is about one; the rest covers the
landmarks' error at the hand's edges, which lie on the hand's own skin colour over the face's:
a finger over the lips was drawn over by its edges, and fitting the edges to the image - a
guided filter, GrabCut - kept no more of the hand than a wider capsule at the same cost to
the visible face), slightly feathered: the pixels the merge keeps live (core.merge, `keep`),
so the real hand is drawn over the swapped face.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from core.background import OneAtATime
from core.detect import iou, letterbox, ssd_anchors, weighted_nms
from core.face import FACE_OVAL, Face
from core.frame import to_rgb
from core.landmarks import Roi
from core.modelfiles import HAND_LANDMARKS, PALM_DETECTOR, builtin_model
from core.runtime import get_session, run

PALM_SIZE, LANDMARK_SIZE = 192, 224
PALM_SCORE = 0.5  # MediaPipe's; 0.35 found no more hands (hand pixels drawn over 17.4 %)
PRESENCE = 0.5  # hand landmark model's hand flag: below this the hand is lost
# A search crop whose hand flag is under PRESENCE but at least REFRAME cut the hand off or
# framed it loosely (a probe 1.3 face sizes wide on a hand at the cheek): it is looked at
# once more, framed by the landmarks it gave, as the next frame would follow it. On
# ../shared/data/occlusion the second of two clasped hands read 0.48, then 0.94 (any
# occluder drawn over 8.6 -> 7.1 %); on the 262 clean photos of real_turns and identity one
# more hand was found, on a blurred face at a frame's edge (0.1 and 0.2 find the same)
REFRAME = 0.3
LOST_RETRY = 3  # frames: a hand lost is searched for again this soon (else every interval)
SEARCH_SCALE = 3.0  # the region searched for hands: the face box grown to this x its size
# Where the palm detector finds nothing, the hand model itself is asked about crops where a
# hand covering a face shows no palm (fingers over the lips, a chin on a fist): FaceMesh
# points (mouth centre, chin, the cheeks) and the crop's side in face sizes
PROBES = ((13, 14), (152,), (234,), (454,))
PROBE_SCALE = 1.3
# A hand is attached to an arm: a new hand with fewer points than this outside the face's
# oval is the face itself read as a hand (seen on profiles of ../shared/data/real_turns)
MIN_OUTSIDE_FACE = 4
PALM_ROI_SCALE, PALM_ROI_SHIFT = 2.6, -0.5  # palm box -> whole-hand crop (MediaPipe's)
HAND_ROI_SCALE, HAND_ROI_SHIFT = 2.0, -0.1  # landmarks -> the next frame's crop
# landmark indices: wrist, then thumb, index, middle, ring, little finger (4 each)
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = 0, 5, 9, 13, 17
KNUCKLES = (INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP)
PALM = (0, 1, 2, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
ROI_POINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)  # the points that frame the next crop
# Capsule width, in knuckle spacings (Hand.knuckles). On ../shared/data/occlusion (hand
# pixels drawn over / visible face still swapped): 1.5 (palm not grown) 9.1 / 98.1 %,
# 2.0 5.3 / 96.9, 2.5 3.3 / 95.4, 3.0 1.9 / 93.9: a finger and about 3/4 of one either side.
FINGER_WIDTH = 2.5
FEATHER = 0.25  # edge softness, in knuckle spacings
# A followed hand that has not moved keeps its landmarks: its crop, shrunk to GLANCE px grey,
# is compared with the same crop when the landmark model last ran; under STILL_LEVELS of mean
# difference the model is skipped, at most REUSE frames in a row (so a slow drift is caught).
# The crop is the hand's own size, so what passes for still scales with the hand: about 1 %
# of the crop's side (on a real hand's 358 px crop: 2 px reads 2.9 levels, 3 px 3.9)
GLANCE = 32
STILL_LEVELS = 3.0
REUSE = 2


@dataclass
class Hand:
    """One hand in frame px: 21 landmarks (x, y, z), its presence, and its follow id."""

    landmarks: np.ndarray  # (21, 3) float32
    presence: float
    id: int = 0
    roi: Roi = field(default_factory=lambda: Roi(0.0, 0.0, 1.0, 0.0))
    glance: np.ndarray | None = None  # the next crop as it looked when the model last ran
    reused: int = 0  # frames in a row these landmarks were kept without the model

    @property
    def box(self) -> np.ndarray:
        xy = self.landmarks[:, :2]
        return np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32)

    @property
    def knuckles(self) -> float:
        """The mean spacing of neighbouring knuckles (index to little finger) in 3D, px: about
        a finger's width, also when the hand is seen edge-on (its 2D spacing then shrinks to
        nothing while the fingers stay as wide)."""
        mcp = self.landmarks[list(KNUCKLES)].astype(np.float64)
        return float(np.linalg.norm(np.diff(mcp, axis=0), axis=1).mean())


def _upright_angle(start: np.ndarray, end: np.ndarray) -> float:
    """Roi.angle that turns the start -> end direction to point up in the crop."""
    d = end - start
    return float(np.arctan2(d[1], d[0]) + np.pi / 2.0)


def _roi(points: np.ndarray, angle: float, scale: float, shift: float) -> Roi:
    """A square crop around `points` seen upright at `angle`, grown by `scale` and moved
    `shift` x its side along the hand's up direction."""
    c, s = np.cos(angle), np.sin(angle)
    upright = points @ np.array([[c, -s], [s, c]])  # rotate by -angle
    lo, hi = upright.min(0), upright.max(0)
    side = float(max(hi - lo))
    mid = (lo + hi) / 2.0 + np.array([0.0, shift * side])
    centre = np.array([[c, -s], [s, c]]) @ mid
    return Roi(float(centre[0]), float(centre[1]), side * scale, angle)


def roi_from_palm(box: np.ndarray, keypoints: np.ndarray) -> Roi:
    """The whole-hand crop from a palm detection (box x0y0x1y1, 7 keypoints: wrist first,
    the middle finger's knuckle third)."""
    angle = _upright_angle(keypoints[0], keypoints[2])
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]],
                        [box[2], box[3]]], np.float64)
    centre = corners.mean(0)
    side = float(max(box[2] - box[0], box[3] - box[1]))
    up = np.array([np.sin(angle), -np.cos(angle)])  # the hand's up, in frame coordinates
    centre = centre + up * (-PALM_ROI_SHIFT) * side
    return Roi(float(centre[0]), float(centre[1]), side * PALM_ROI_SCALE, angle)


def roi_from_hand(landmarks: np.ndarray) -> Roi:
    """The next frame's crop from a hand's landmarks (MediaPipe's landmarks-to-ROI)."""
    xy = landmarks[:, :2].astype(np.float64)
    angle = _upright_angle(xy[WRIST], xy[MIDDLE_MCP])
    return _roi(xy[list(ROI_POINTS)], angle, HAND_ROI_SCALE, HAND_ROI_SHIFT)


def search_region(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Where a hand can cover `face`: its box grown to SEARCH_SCALE x its size, clipped."""
    cx, cy = (face.box[:2] + face.box[2:]) / 2.0
    half = SEARCH_SCALE * face.size / 2.0
    height, width = shape[:2]
    return (max(int(cx - half), 0), max(int(cy - half), 0), min(int(cx + half), width),
            min(int(cy + half), height))


class HandFinder:
    """The two hand models on any onnxruntime device."""

    def __init__(self, device: str = "cpu", threads: int = 0) -> None:
        self.palm = get_session(builtin_model(PALM_DETECTOR), device, threads)
        self.hand = get_session(builtin_model(HAND_LANDMARKS), device, threads)
        # MediaPipe's four layers (strides 8, 16, 16, 16; 2 anchors each): the three
        # stride-16 layers share one grid, 6 anchors a cell
        self.anchors = ssd_anchors(PALM_SIZE, [8, 16], [2, 6])

    def palms(self, frame: np.ndarray, fmt: str, region: tuple[int, int, int, int]
              ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Palms in a region of the frame: (box x0y0x1y1, 7 keypoints, score), frame px."""
        x0, y0, x1, y1 = region
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        image, m = letterbox(frame[y0:y1, x0:x1], PALM_SIZE)
        x = to_rgb(image, fmt).astype(np.float32) * (1.0 / 255.0)
        reg, cls = run(self.palm, {self.palm.get_inputs()[0].name:
                                   np.ascontiguousarray(x.transpose(2, 0, 1)[None])})
        logits = np.clip(cls[0, :, 0], -100.0, 100.0)
        keep = np.flatnonzero(logits > np.log(PALM_SCORE / (1.0 - PALM_SCORE)))
        if keep.size == 0:
            return []
        reg = reg[0, keep] / PALM_SIZE
        anchors = self.anchors[keep]
        centre, half = reg[:, 0:2] + anchors, reg[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kps = reg[:, 4:18].reshape(-1, 7, 2) + anchors[:, None, :]
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
        boxes = (boxes * PALM_SIZE - [tx, ty, tx, ty]) / [sx, sy, sx, sy] + [x0, y0, x0, y0]
        kps = (kps * PALM_SIZE - [tx, ty]) / [sx, sy] + [x0, y0]
        return [(b, k, s) for b, k, s in weighted_nms(boxes.astype(np.float32),
                                                      kps.astype(np.float32), scores, 0.3)]

    @staticmethod
    def glance(frame: np.ndarray, roi: Roi) -> np.ndarray:
        """The crop at GLANCE px, grey and slightly blurred (camera noise averages out)."""
        crop = cv2.warpAffine(frame, roi.matrix(GLANCE), (GLANCE, GLANCE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        grey = crop[..., :3].mean(axis=2, dtype=np.float32) if crop.ndim == 3 else \
            crop.astype(np.float32)  # colour channels only: an alpha would damp the difference
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def landmarks(self, frame: np.ndarray, fmt: str, roi: Roi) -> tuple[np.ndarray, float]:
        """(21, 3) hand landmarks in frame px and the hand flag 0..1 for a crop."""
        m = roi.matrix(LANDMARK_SIZE)
        crop = cv2.warpAffine(frame, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        x = to_rgb(crop, fmt).astype(np.float32) * (1.0 / 255.0)
        points, flag, _, _ = run(self.hand, {self.hand.get_inputs()[0].name:
                                             np.ascontiguousarray(x.transpose(2, 0, 1)[None])})
        pts = points.reshape(21, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(m.astype(np.float64))
        out = np.empty((21, 3), np.float32)
        out[:, :2] = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        out[:, 2] = pts[:, 2] * (roi.size / LANDMARK_SIZE)
        return out, float(flag.item())


FOLLOW_THREAD = "face-swap-hands-follow"


@dataclass(frozen=True)
class _Following:
    """A frame whose hands are being followed on the follow thread (HandTracker.start)."""

    frame: np.ndarray
    found: list[Hand]  # the search's hands it took along (cleared when it is collected)
    future: Future  # -> (followed hands, ms)


class HandTracker:
    """Hands near tracked faces, followed from frame to frame (see the module docstring).

    On a stream the search for new hands (a palm search and the probes: 17-40 ms on a CPU
    thread) runs on a thread of its own, on a copy of the frame; the hands it finds are
    followed from the frame its result is ready on. Following hands (a landmark run per
    hand, 6-10 ms on a CPU thread) is started on a thread of its own as a frame comes in
    (`start`), while the frame's faces are tracked, and `process` collects it: on two cores
    the frame waits for the hands only as long as they take longer than its faces."""

    def __init__(self, device: str = "cpu", threads: int = 0, detect_interval: int = 10,
                 max_hands: int = 2) -> None:
        self.finder = HandFinder(device, threads)
        self.detect_interval = detect_interval
        self.max_hands = max_hands
        self.hands: list[Hand] = []
        self._since = detect_interval  # frames since the last palm search
        self._next_id = 0
        self._search = OneAtATime("face-swap-hands")
        self._found: list[Hand] = []  # the last search's hands, not followed yet
        self._lock = threading.Lock()  # the search thread hands `_found` over under it
        self._generation = 0  # a reset drops the result of a search still running
        self._follower: ThreadPoolExecutor | None = None  # made at the first `start`
        self._closed = False  # after `close`, hands are followed on the frame's thread
        self._following: _Following | None = None  # the frame `start`ed, while it is out
        self.follow_ms = 0.0  # the last frame's landmark runs, on whichever thread ran them

    def reset(self) -> None:
        with self._lock:
            self.hands, self._found = [], []
            self._generation += 1
        self._since = self.detect_interval
        self._drop_following()

    def wait(self, timeout: float | None = None) -> None:
        """Until the search in flight (if any) is done, or `timeout` s."""
        self._search.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Wait (up to `timeout` s) for the search and the follow job in flight, and stop
        the follow thread; a frame still in flight (a host may close from another thread)
        follows its hands on its own thread from here on."""
        with self._lock:
            self._closed = True
            follower, self._follower = self._follower, None
        following = self._following
        if follower is not None:
            follower.shutdown(wait=False, cancel_futures=True)
            if following is not None:
                futures_wait([following.future], timeout)
        self.wait(timeout)

    def start(self, frame: np.ndarray, fmt: str) -> None:
        """Start following the hands known so far on `frame` on the follow thread; the
        frame's `process` collects them. Nothing when no hand is known (or after close)."""
        self._drop_following()
        with self._lock:
            found = self._found
            known = self.hands + found
            if not known or self._closed:
                return
            if self._follower is None:
                self._follower = ThreadPoolExecutor(1, thread_name_prefix=FOLLOW_THREAD)
            follower = self._follower
        try:
            future = follower.submit(self._follow, frame, fmt, known)
        except RuntimeError:  # closed meanwhile: the frame follows them itself
            return
        self._following = _Following(frame, found, future)

    def process(self, frame: np.ndarray, fmt: str, faces: list[Face]) -> list[Hand]:
        """The hands near `faces` in this frame (followed on the follow thread when this
        frame was `start`ed, else here)."""
        if not faces:
            self._drop_following()
            with self._lock:
                self.hands, self._found = [], []
            return []
        followed = self._followed(frame, fmt)
        self._since += 1
        lost = len(followed) < len(self.hands)
        if len(followed) < self.max_hands and not self._search.busy() and \
                (self._since >= self.detect_interval or (lost and self._since >= LOST_RETRY)):
            self._since = 0
            copy, known, generation = frame.copy(), list(followed), self._generation
            self._search.run(lambda: self._searched(copy, fmt, faces, known, generation),
                             wait=False)
        self.hands = followed[:self.max_hands]
        return self.hands

    def _followed(self, frame: np.ndarray, fmt: str) -> list[Hand]:
        """The known hands on this frame: the follow thread's result when this frame was
        `start`ed (and its job was not cancelled by a close), else followed here."""
        following, self._following = self._following, None
        if following is not None and following.frame is frame and \
                not following.future.cancelled():
            try:
                followed, self.follow_ms = following.future.result()
            except CancelledError:  # cancelled by a close just now
                pass
            else:
                with self._lock:  # its found hands are followed now (a newer search's wait)
                    if self._found is following.found:
                        self._found = []
                return followed
        elif following is not None:
            following.future.cancel()
        with self._lock:
            found, self._found = self._found, []
        followed, self.follow_ms = self._follow(frame, fmt, self.hands + found)
        return followed

    def _drop_following(self) -> None:
        """Forget a frame `start`ed and not collected (its tracking raised, or a reset): its
        job is cancelled if it has not begun; its found hands stay for the next frame."""
        following, self._following = self._following, None
        if following is not None:
            following.future.cancel()

    def _follow(self, frame: np.ndarray, fmt: str, known: list[Hand]
                ) -> tuple[list[Hand], float]:
        """The known hands on this frame: their landmarks (kept where the hand held still),
        overlapping ones dropped; and the ms it took."""
        start = time.perf_counter()
        followed: list[Hand] = []
        for hand in known:
            if still(hand, frame):
                kept = replace(hand, reused=hand.reused + 1)
            else:
                landmarks, presence = self.finder.landmarks(frame, fmt, hand.roi)
                if presence < PRESENCE:
                    continue
                roi = roi_from_hand(landmarks)
                kept = Hand(landmarks, presence, hand.id, roi, HandFinder.glance(frame, roi))
            if not (followed and iou(kept.box, np.stack([h.box for h in followed])).max() > 0.2):
                followed.append(kept)
        return followed, (time.perf_counter() - start) * 1000.0

    def _searched(self, frame: np.ndarray, fmt: str, faces: list[Face], known: list[Hand],
                  generation: int) -> None:
        """The search thread's job: new hands for the next frame to follow."""
        found = self._find(frame, fmt, faces, known)
        with self._lock:
            if generation == self._generation:
                self._found = found

    def find_in_still(self, frame: np.ndarray, fmt: str, faces: list[Face]) -> list[Hand]:
        """Hands near the faces of a still image: a palm search, then two landmark passes."""
        hands = []
        for hand in self._find(frame, fmt, faces, []):
            landmarks, presence = self.finder.landmarks(frame, fmt, hand.roi)
            if presence >= PRESENCE:
                hand = Hand(landmarks, presence, hand.id, roi_from_hand(landmarks))
            hands.append(hand)
        return hands

    def _find(self, frame: np.ndarray, fmt: str, faces: list[Face],
              followed: list[Hand]) -> list[Hand]:
        """New hands around each face that no followed hand covers: from palms, and while
        fewer than `max_hands` palms are found, from the PROBES crops."""
        found: list[Hand] = []
        for face in faces:
            palms = self.finder.palms(frame, fmt, search_region(face, frame.shape))
            rois = [roi_from_palm(box, keypoints) for box, keypoints, _ in palms]
            if len(rois) < self.max_hands:
                rois += [Roi(*map(float, face.landmarks[list(points), :2].mean(0)),
                             PROBE_SCALE * face.size, 0.0) for points in PROBES]
            for roi in rois:
                landmarks, presence = self.finder.landmarks(frame, fmt, roi)
                if REFRAME <= presence < PRESENCE:
                    landmarks, presence = self.finder.landmarks(frame, fmt,
                                                                roi_from_hand(landmarks))
                if presence < PRESENCE or not reaches_out(landmarks, face):
                    continue
                known = [h.box for h in followed + found]
                box = Hand(landmarks, presence).box
                if known and iou(box, np.stack(known)).max() > 0.2:
                    continue
                found.append(Hand(landmarks, presence, self._next_id, roi_from_hand(landmarks)))
                self._next_id += 1
        return found


def still(hand: Hand, frame: np.ndarray) -> bool:
    """Whether a followed hand's crop looks as it did when its landmarks were found (and they
    were not kept REUSE times already): then they still hold, and the model is not run."""
    if hand.glance is None or hand.reused >= REUSE:
        return False
    return float(np.abs(HandFinder.glance(frame, hand.roi) - hand.glance).mean()) < STILL_LEVELS


def reaches_out(landmarks: np.ndarray, face: Face) -> bool:
    """Whether a hand's landmarks reach out of the face's oval (MIN_OUTSIDE_FACE points) and
    its palm (the wrist and knuckles' centre) lies outside it. A palm inside the face oval
    was a profile read as a hand (../shared/data/real_turns image02116, 51 degrees: its nose
    and lips were kept live over the persona); none of the 25 hands found on
    ../shared/data/occlusion, over eyes, mouth and cheeks, has its palm there."""
    oval = face.landmarks[FACE_OVAL, :2].astype(np.float32).reshape(-1, 1, 2)
    outside = sum(cv2.pointPolygonTest(oval, (float(x), float(y)), False) < 0
                  for x, y in landmarks[:, :2])
    palm = landmarks[list(PALM), :2].mean(axis=0)
    return outside >= MIN_OUTSIDE_FACE and \
        cv2.pointPolygonTest(oval, (float(palm[0]), float(palm[1])), False) < 0


def hand_mask(shape: tuple[int, ...], hands: list[Hand]) -> np.ndarray | None:
    """A frame-sized uint8 map (255 = hand) of the hands' silhouettes, feathered; None when
    there is no hand. Drawn and blurred only around the hands."""
    if not hands:
        return None
    height, width = shape[:2]
    mask = np.zeros((height, width), np.uint8)
    soft = max(1, int(FEATHER * max(h.knuckles for h in hands))) * 2 + 1
    for hand in hands:
        pts = hand.landmarks[:, :2]
        width_px = max(2, int(round(FINGER_WIDTH * hand.knuckles)))
        palm = np.round(pts[list(PALM)]).astype(np.int32)
        cv2.fillPoly(mask, [palm], 255, cv2.LINE_AA)
        cv2.polylines(mask, [palm], True, 255, width_px, cv2.LINE_AA)
        for finger in FINGERS:
            chain = np.round(pts[[WRIST if finger[0] == 1 else finger[0], *finger]]
                             ).astype(np.int32)
            cv2.polylines(mask, [chain], False, 255, width_px, cv2.LINE_AA)
    boxes = np.stack([h.box for h in hands])
    pad = soft + max(int(FINGER_WIDTH * h.knuckles) for h in hands)
    x0, y0 = (np.maximum(boxes[:, :2].min(0) - pad, 0)).astype(int)
    x1, y1 = np.minimum(boxes[:, 2:].max(0) + pad + 1, [width, height]).astype(int)
    if x1 > x0 and y1 > y0:
        region = mask[y0:y1, x0:x1]
        region[...] = cv2.GaussianBlur(region, (soft, soft), 0)
    return mask
