"""Property-based tests (hypothesis): settings parsing, and frames of any shape and layout
through Pipeline.process and SwapService - bad input is a one-line ValueError, good input
comes out with its own shape and layout, and nothing else ever escapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.frame import FORMATS
from core.label import label_rect
from core.pipeline import Pipeline
from core.service import SwapService
from core.settings import RANGES, SwapSettings, field_types

NAMES = list(field_types())
CHANNELS = {"rgb": 3, "bgr": 3, "rgba": 4, "bgra": 4}
SLOW = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@given(name=st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), value=st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_any_set_pair_parses_or_says_why_in_one_line(name, value):
    try:
        parsed = SwapSettings().with_pairs([f"{name}={value}"])
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    field = name.strip().replace("-", "_")
    assert field in NAMES
    assert isinstance(getattr(parsed, field), field_types()[field])


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_numbers_inside_their_range_are_taken_outside_refused(data):
    name, low, high = data.draw(st.sampled_from(RANGES))
    kind = type(low)
    inside = data.draw(st.integers(low, high) if kind is int else
                       st.floats(low, high, allow_nan=False))
    assert getattr(SwapSettings().with_changes(**{name: inside}), name) == inside
    outside = data.draw(st.one_of(
        st.integers(high + 1, high + 10**6) if kind is int else
        st.floats(high + 1e-6, 1e9, allow_nan=False, exclude_min=True),
        st.integers(low - 10**6, low - 1) if kind is int else
        st.floats(-1e9, low - 1e-6, allow_nan=False, exclude_max=True)))
    with pytest.raises(ValueError, match=f"setting {name}="):
        SwapSettings().with_changes(**{name: outside})


def _frames():
    """Frames of any size (2..200 px a side) and layout, some holding the test face."""
    return st.tuples(st.integers(2, 200), st.integers(2, 200), st.sampled_from(FORMATS),
                     st.booleans(), st.integers(0, 2**32 - 1))


def _make(astronaut, height, width, fmt, face, seed):
    rng = np.random.default_rng(seed)
    if face:
        import cv2

        rgb = cv2.resize(astronaut, (width, height), interpolation=cv2.INTER_AREA)
    else:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = np.empty((height, width, CHANNELS[fmt]), np.uint8)
    frame[..., :3] = rgb[..., ::-1] if fmt.startswith("bgr") else rgb
    if CHANNELS[fmt] == 4:
        frame[..., 3] = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return frame


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline(SwapSettings(on_lost="pixelate"))


@given(spec=_frames())
@SLOW
def test_any_frame_through_the_pipeline_keeps_its_shape_and_input(pipeline, astronaut, spec):
    height, width, fmt, face, seed = spec
    frame = _make(astronaut, height, width, fmt, face, seed)
    before = frame.copy()
    out = pipeline.process(frame, fmt)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(frame, before)  # never written into
    if CHANNELS[fmt] == 4:  # alpha is the source's, except under the label
        x0, y0, x1, y1 = label_rect(width, height, fmt, pipeline.settings.label_corner,
                                    size=pipeline.settings.label_size)
        outside = np.ones((height, width), bool)
        outside[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(out[..., 3][outside], frame[..., 3][outside])


@given(spec=_frames(), wrong=st.sampled_from(["dtype", "channels", "format"]))
@SLOW
def test_a_bad_frame_is_a_one_line_value_error(pipeline, astronaut, spec, wrong):
    height, width, fmt, face, seed = spec
    frame = _make(astronaut, height, width, fmt, face, seed)
    if wrong == "dtype":
        frame = frame.astype(np.float32)
    elif wrong == "channels":
        frame = frame[..., :2]
    else:
        fmt = "yuv"
    with pytest.raises(ValueError) as exc:
        pipeline.process(frame, fmt)
    assert "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def service():
    service = SwapService(SwapSettings(label=False), fmt="rgba")
    service.wait_loaded(timeout=60)
    yield service
    assert service.stop()


@given(spec=st.lists(_frames(), min_size=1, max_size=4))
@SLOW
def test_a_stream_of_any_sizes_through_the_service_never_breaks_it(service, astronaut, spec):
    """Frames of changing size, one after another: every result has its input's shape, the
    counters add up and the worker keeps running."""
    last = 0
    for height, width, _fmt, face, seed in spec:
        frame = _make(astronaut, height, width, "rgba", face, seed)
        seq = service.submit(frame)
        result = service.wait_result(after_seq=seq - 1, timeout=30)
        assert result is not None and result.frame.shape == frame.shape
        last = seq
    status = service.status()
    assert status["frames_in"] == status["frames_out"] + status["dropped"]
    assert status["errors"] == 0 and service.last_seq() == last
