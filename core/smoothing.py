"""One Euro filter for landmark arrays (Casiraghi, Roussel, Vogel, CHI 2012).

A low-pass filter whose cutoff rises with speed: a still face gets heavy smoothing (no
jitter), a moving face a high cutoff (no lag). Vectorised over all points of a face: each
point's cutoff follows its own 2D speed, so a blink does not smear the whole face.
Speeds are measured in face sizes per second, so one strength suits near and far faces.
(The PyPI `OneEuroFilter` package filters one scalar per call: far too slow for 468x3.)
"""

from __future__ import annotations

import numpy as np

D_CUTOFF = 1.0  # Hz, for the speed estimate (the paper's recommended value)


def params_for_strength(strength: float) -> tuple[float, float]:
    """(min_cutoff Hz, beta per face-size/s) for a strength 0 (off) .. 1 (strong).

    min_cutoff falls log-linearly from 8 Hz (barely filtered at 30 fps) to 0.25 Hz;
    beta makes a face moving one face size per second run at >= ~12 Hz cutoff whatever
    the strength, which keeps lag under a frame or two on fast motion.
    """
    s = float(np.clip(strength, 0.0, 1.0))
    min_cutoff = 8.0 * (0.25 / 8.0) ** s
    beta = 12.0
    return min_cutoff, beta


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over an (N, D) array of points (D >= 2; cutoff from the first 2)."""

    def __init__(self, strength: float = 0.5) -> None:
        self.set_strength(strength)
        self.reset()

    def set_strength(self, strength: float) -> None:
        """Live change; keeps the filter state."""
        self.strength = float(strength)
        self.min_cutoff, self.beta = params_for_strength(strength)

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx = np.zeros(0, np.float32)
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filtered copy of `x` at time `t` seconds; `scale` is the face size in px."""
        x = np.asarray(x, np.float32)
        if self.strength <= 0.0 or self._x is None or self._x.shape != x.shape:
            # Off or first sample: take it as is (and start from it).
            self._x, self._t = x.copy(), t
            self._dx = np.zeros(x.shape[0], np.float32)
            return x.copy()
        # A clock that did not advance (same timestamp twice) counts as one 60 fps frame.
        dt = t - self._t if t > self._t else 1.0 / 60.0
        speed = np.linalg.norm(x[:, :2] - self._x[:, :2], axis=1) / (dt * max(scale, 1e-6))
        self._dx = self._dx + _alpha(D_CUTOFF, dt) * (speed - self._dx)
        cutoff = self.min_cutoff + self.beta * self._dx
        a = _alpha(cutoff, dt).astype(np.float32)[:, None]
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()
