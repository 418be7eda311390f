import numpy as np
import pytest

from cardiosynth.cine import Cine, CineError


def test_valid_cine_defaults():
    cine = Cine(np.zeros((4, 8, 8), np.float64), spacing_mm=(2, 2))
    assert cine.frames.dtype == np.float32 and cine.valid.all() and cine.shape == (4, 8, 8)


@pytest.mark.parametrize("frames, message", [
    (np.zeros((8, 8), np.float32), "must be \\(T, H, W\\)"),
    (np.zeros((2, 8, 8), np.uint8), "floats"),
    (np.full((2, 8, 8), np.nan, np.float32), "NaN"),
    (np.full((2, 8, 8), 2.0, np.float32), "\\[0, 1\\]"),
])
def test_bad_frames_are_refused(frames, message):
    with pytest.raises(CineError, match=message):
        Cine(frames, spacing_mm=(2, 2))


def test_bad_metadata_is_refused():
    frames = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(CineError, match="slice_position"):
        Cine(frames, (2, 2), slice_position=1.5)
    with pytest.raises(CineError, match="spacing"):
        Cine(frames, (0, 2))
    with pytest.raises(CineError, match="valid mask"):
        Cine(frames, (2, 2), valid=np.ones((4, 4), bool))
