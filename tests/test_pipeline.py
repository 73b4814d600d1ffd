"""Pipeline: the persona path end to end, outside-face bit identity, label, on-lost, update."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from doubles import write_doubles

from core import privacy
from core.errors import ModelFileError
from core.label import draw_label, label_rect
from core.merge import merge
from core.pipeline import STAGES, Pipeline
from core.settings import SwapSettings


@pytest.fixture(scope="module")
def face_frame(astronaut) -> np.ndarray:
    """The astronaut in OBS's layout (RGBA) with a non-trivial alpha channel."""
    frame = np.ascontiguousarray(cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA))
    frame[..., 3] = np.arange(frame.shape[1], dtype=np.uint8)[None, :] | 1
    return frame


@pytest.fixture(scope="module")
def empty_frame(face_frame) -> np.ndarray:
    """Same size, smooth colourful texture and no face: what the camera sees when you leave."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)
    height, width = face_frame.shape[:2]
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def face_region(face, shape, margin: float = 0.6) -> np.ndarray:
    """Boolean image: the face box grown by `margin` x face size on each side."""
    region = np.zeros(shape[:2], bool)
    pad = margin * face.size
    x0, y0 = (np.maximum(face.box[:2] - pad, 0)).astype(int)
    x1, y1 = np.ceil(face.box[2:] + pad).astype(int)
    region[y0:y1, x0:x1] = True
    return region


def test_persona_pipeline_changes_only_face_and_label(face_frame):
    pipeline = Pipeline(SwapSettings())
    assert pipeline.model_name == "persona:default" and pipeline.provider
    before = face_frame.copy()
    out = pipeline.process(face_frame, "rgba", timestamp=0.0)
    np.testing.assert_array_equal(face_frame, before)  # input never modified
    assert out.shape == face_frame.shape and out.dtype == np.uint8
    assert len(pipeline.faces) == 1
    face = pipeline.faces[0]
    x0, y0, x1, y1 = label_rect(face_frame.shape[1], face_frame.shape[0], "rgba")
    allowed = face_region(face, face_frame.shape)
    allowed[y0:y1, x0:x1] = True
    diff = changed(out, face_frame)
    assert not np.any(diff & ~allowed)  # bit-identical outside the face and the label
    assert diff[allowed].sum() > 0.2 * (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])
    outside_label = np.ones(face_frame.shape[:2], bool)
    outside_label[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[..., 3][outside_label], face_frame[..., 3][outside_label])
    assert set(STAGES) <= set(pipeline.timings) and pipeline.timings["total"] > 0


def test_pipeline_is_exactly_swap_merge_label(face_frame):
    settings = SwapSettings(label_corner="top-left")
    pipeline = Pipeline(settings)
    out = pipeline.process(face_frame, "rgba", timestamp=0.0)
    expected = face_frame.copy()
    assert len(pipeline.faces) == 1  # else the comparison below would hold with no swap
    for face in pipeline.faces:
        merge(expected, "rgba", face, pipeline.swapper.swap(face_frame, "rgba", face, settings),
              settings)
    draw_label(expected, "rgba", "top-left")
    np.testing.assert_array_equal(out, expected)


def test_label_switch_and_live_update(face_frame):
    pipeline = Pipeline(SwapSettings())
    labelled = pipeline.process(face_frame, "rgba", timestamp=0.0)
    x0, y0, x1, y1 = label_rect(face_frame.shape[1], face_frame.shape[0], "rgba")
    assert changed(labelled[y0:y1, x0:x1], face_frame[y0:y1, x0:x1]).any()
    assert pipeline.update(pipeline.settings.with_changes(label=False)) is True
    plain = pipeline.process(face_frame, "rgba", timestamp=0.04)
    np.testing.assert_array_equal(plain[y0:y1, x0:x1], face_frame[y0:y1, x0:x1])
    # A new model or reference cannot be applied live: the caller rebuilds.
    assert pipeline.update(pipeline.settings.with_changes(reference="x.png")) is False
    assert pipeline.settings.reference == ""


def _lost(face_frame, empty_frame, times=(0.1, 1.0, 1.5), **changes):
    """Swap a face at t=0, then lose it; returns that face and the outputs at `times`."""
    # the identity guard (tests/test_guard.py) would pixelate the astronaut's swap: these
    # tests are about losing a face, so it is off
    pipeline = Pipeline(SwapSettings(label=False, hold_ms=500, fade_ms=0, identity_guard=False,
                                     **changes))
    pipeline.process(face_frame, "rgba", timestamp=0.0)
    assert len(pipeline.faces) == 1
    face = pipeline.faces[0]
    outs = []
    for t in times:
        outs.append(pipeline.process(empty_frame, "rgba", timestamp=t))
        assert not pipeline.faces
    return face, *outs


def is_mosaic(region: np.ndarray, blocks: int) -> bool:
    """A coarse mosaic (at most about blocks x blocks colours), not a picture."""
    colors = np.unique(region[..., :3].reshape(-1, 3), axis=0)
    return len(colors) <= (blocks + 3) ** 2


def assert_covered(out: np.ndarray, frame: np.ndarray) -> None:
    """The whole frame is the privacy cover: changed nearly everywhere, a coarse mosaic."""
    assert changed(out, frame).mean() > 0.9
    assert is_mosaic(out, privacy.COVER_BLOCKS)


def test_on_lost_original_shows_the_frame(face_frame, empty_frame):
    _, soon, late, later = _lost(face_frame, empty_frame, on_lost="original")
    for out in (soon, late, later):
        np.testing.assert_array_equal(out, empty_frame)


def test_on_lost_hold_keeps_last_swap_then_pixelates(face_frame, empty_frame):
    held, soon, late, later = _lost(face_frame, empty_frame, on_lost="hold")
    diff = changed(soon, empty_frame)
    assert diff.sum() > 1000 and not np.any(diff & ~face_region(held, empty_frame.shape))
    assert not is_mosaic(soon[face_region(held, empty_frame.shape, 0.0)], 20)
    # past hold_ms: the face area pixelated, as "pixelate" does; past the memory: all of it
    region = face_region(held, empty_frame.shape, margin=privacy.FACE_MARGIN)
    diff = changed(late, empty_frame)
    assert diff.sum() > 1000 and not np.any(diff & ~region)
    assert_covered(later, empty_frame)


def test_on_lost_pixelate_hides_last_face_area_then_everything(face_frame, empty_frame):
    face, soon, late, later = _lost(face_frame, empty_frame, on_lost="pixelate")
    region = face_region(face, empty_frame.shape, margin=privacy.FACE_MARGIN)
    for out in (soon, late):
        diff = changed(out, empty_frame)
        assert diff.sum() > 1000 and not np.any(diff & ~region)
        ys, xs = np.nonzero(region)
        assert is_mosaic(out[ys.min():ys.max() + 1, xs.min():xs.max() + 1],
                         privacy.FACE_BLOCKS)
    assert_covered(later, empty_frame)  # lost for longer than FACE_MEMORY_MS


@pytest.mark.parametrize("on_lost", ["pixelate", "hold"])
def test_privacy_covers_the_frame_until_a_face_is_found(face_frame, empty_frame, on_lost):
    pipeline = Pipeline(SwapSettings(label=False, on_lost=on_lost, identity_guard=False))
    assert_covered(pipeline.process(empty_frame, "rgba", timestamp=0.0), empty_frame)
    out = pipeline.process(face_frame, "rgba", timestamp=0.04)
    assert len(pipeline.faces) == 1 and pipeline.shown == {pipeline.faces[0].id: "swap"}
    face = pipeline.faces[0]
    assert not np.any(changed(out, face_frame) & ~face_region(face, face_frame.shape))


@pytest.mark.parametrize("on_lost", ["pixelate", "hold"])
def test_a_new_resolution_drops_the_last_face_area(face_frame, empty_frame, on_lost):
    pipeline = Pipeline(SwapSettings(label=False, on_lost=on_lost, hold_ms=5000,
                                     identity_guard=False))
    pipeline.process(face_frame, "rgba", timestamp=0.0)
    assert len(pipeline.faces) == 1
    wider = np.ascontiguousarray(np.concatenate([empty_frame, empty_frame], axis=1))
    out = pipeline.process(wider, "rgba", timestamp=0.1)  # e.g. the camera switched mode
    assert_covered(out, wider)  # the old face area means nothing here: no position known


def test_a_lost_face_fades_out_over_fade_ms(face_frame, empty_frame):
    pipeline = Pipeline(SwapSettings(label=False, fade_ms=200))
    pipeline.process(face_frame, "rgba", timestamp=0.0)
    zone = face_region(pipeline.faces[0], face_frame.shape, 0.0)
    amounts = []
    for t in (0.05, 0.1, 0.15, 0.25):
        out = pipeline.process(empty_frame, "rgba", timestamp=t)
        amounts.append(np.abs(out.astype(int) - empty_frame.astype(int))[zone].sum())
    assert amounts[0] > amounts[1] > amounts[2] > 0 and amounts[3] == 0
    # swap weight 3/4 after 50 ms, 1/4 after 150: measured 3.009
    assert 2.5 < amounts[0] / amounts[2] < 3.5


def test_unknown_model_is_a_model_error():
    with pytest.raises(ModelFileError, match="unknown model"):
        Pipeline(SwapSettings(model="no-such-model"))


def test_bad_frame_is_a_value_error(face_frame):
    pipeline = Pipeline(SwapSettings())
    with pytest.raises(ValueError, match="format"):
        pipeline.process(face_frame, "rgb")


def test_models_dir_setting_finds_user_models(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESWAP_MODELS", raising=False)
    write_doubles(tmp_path)
    with pytest.raises(ModelFileError, match="unknown model"):
        Pipeline(SwapSettings(model="double_224"))
    pipeline = Pipeline(SwapSettings(model="double_224", models_dir=str(tmp_path)))
    assert pipeline.model_name == "double_224"
    assert pipeline.provider == "CPUExecutionProvider" and pipeline.device_note == ""


def _detail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F).ravel()


@pytest.mark.parametrize("on_lost, hidden", [("pixelate", True), ("original", False)])
def test_a_privacy_mode_fades_the_swap_back_in_over_the_mosaic(face_frame, empty_frame,
                                                                 on_lost, hidden):
    """A face found again after it was lost: its swap fades back in over fade_ms. In a
    privacy mode it fades in over the face's mosaic, so the real face never shows under it
    (it did: a face the identity guard released showed raw for a frame, then under the
    fading swap); with on_lost=original over the face itself."""
    pipeline = Pipeline(SwapSettings(label=False, fade_ms=200, on_lost=on_lost,
                                     identity_guard=False))
    pipeline.process(face_frame, "rgba", timestamp=0.0)
    zone = face_region(pipeline.faces[0], face_frame.shape, 0.0)
    for t in (0.1, 0.2, 0.3):  # lost: faded out
        pipeline.process(empty_frame, "rgba", timestamp=t)
    out = pipeline.process(face_frame, "rgba", timestamp=0.35)  # found: swap weight 1/4
    raw = np.corrcoef(_detail(face_frame[zone].reshape(1, -1, 4)),
                      _detail(out[zone].reshape(1, -1, 4)))[0, 1]  # the zone's pixels
    # the fine detail of the output against the real face's: measured 0.40 with the mosaic
    # under the swap (the persona's own features sit where the face's do), 0.98 without
    assert (raw < 0.6) if hidden else (raw > 0.9)
