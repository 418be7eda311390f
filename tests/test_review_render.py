"""The one rendering path of a reader study: different cines give files that differ only in their pixels,
down to each frame's stored size and timing (read from the container, without decoding)."""

import re

import numpy as np
import pytest

from cardiosynth.cine import Cine
from cardiosynth.review import ReviewError
from cardiosynth.review.blinding import blinding_check, gif_structure, probe
from cardiosynth.review.render import FIXED_MTIME, RenderSettings, display_sequence, read_frames, render_case

SMALL = RenderSettings(size=64, frames_per_cycle=8, cycles=2, cycle_seconds=0.5)


def sharp_cine(seed: int = 0) -> Cine:
    """A noisy, sharp cine (compresses badly: what a real scan looks like to the encoder)."""
    rng = np.random.default_rng(seed)
    return Cine(rng.random((12, 48, 40)).astype(np.float32), (2.2, 2.2), source="real:test")


def smooth_cine(level: float = 0.3) -> Cine:
    """A flat, blurry cine of another shape and length (compresses to almost nothing)."""
    return Cine(np.full((16, 32, 32), level, np.float32), (1.5, 1.5), source="synthetic:test")


def test_different_cines_give_files_identical_but_for_their_pixels(tmp_path):
    paths = [render_case(cine, tmp_path, SMALL) for cine in (sharp_cine(), smooth_cine())]
    sharp, smooth = (probe(p) for p in paths)
    assert sharp["size_bytes"] == smooth["size_bytes"] == pytest.approx(paths[0].stat().st_size)
    differing = {key for key in sharp if sharp[key] != smooth[key]}
    assert differing == set(), differing  # same size, layout, frame sizes, delays, frame count ...
    assert (sharp["format"], sharp["resolution"], sharp["frames"]) == ("gif", "64x64", "16")
    assert sharp["frame_bytes_std"] == 0 and sharp["mtime"] == FIXED_MTIME
    for path in paths:
        assert re.fullmatch(r"[0-9a-f]{32}\.gif", path.name)
    assert sorted(tmp_path.iterdir()) == sorted(paths)  # no temporary files left


def test_the_container_holds_no_per_frame_trace_of_the_content(tmp_path):
    """Read each frame's stored data size and display time from the GIF blocks, no decoding: a noisy (sharp)
    and a flat (blurred) cine, the contrast a compressing codec would give away, store identical frames."""
    sharp, flat = (gif_structure(render_case(cine, tmp_path, SMALL).read_bytes()) for cine in (sharp_cine(),
                                                                                                smooth_cine()))
    assert sharp["frame_bytes"] == flat["frame_bytes"] and len(set(sharp["frame_bytes"])) == 1
    assert sharp["delays"] == flat["delays"] == [SMALL.frame_delay_cs] * 16
    assert sharp["blanked"] == flat["blanked"]  # byte for byte, once the pixel data is blanked


def test_decoded_frames_are_the_rendered_pixels(tmp_path):
    cine = Cine(np.linspace(0, 1, 6 * 32 * 32, dtype=np.float32).reshape(6, 32, 32), (2.0, 2.0))
    decoded = read_frames(render_case(cine, tmp_path, SMALL, phase=0.25))
    expected = display_sequence(cine, SMALL, phase=0.25)
    assert decoded.shape == expected.shape == (SMALL.n_frames, 64, 64)
    assert (decoded == expected).all()  # lossless: 256 grey levels, no coding artefacts


def test_periodic_resampling_wraps_to_end_diastole():
    levels = np.array([0.0, 0.2, 0.4, 0.6], np.float32)
    cine = Cine(np.broadcast_to(levels[:, None, None], (4, 8, 8)).copy(), (1.0, 1.0))
    settings = RenderSettings(size=64, frames_per_cycle=8, cycles=2)
    frames = display_sequence(cine, settings)[:, 0, 0] / 255
    expected = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.3]  # the last frame lies between ES..end and the next ED
    assert frames[:8] == pytest.approx(expected, abs=1 / 255) and (frames[:8] == frames[8:]).all()


def test_non_square_cines_are_padded_not_stretched():
    cine = Cine(np.ones((2, 16, 32), np.float32), (1.0, 1.0))
    frame = display_sequence(cine, RenderSettings(size=64, frames_per_cycle=4, cycles=1))[0]
    assert frame[:16].max() == 0 and frame[-16:].max() == 0 and frame[16:48].min() == 255


@pytest.mark.parametrize("values, message", [
    (dict(size=100), "multiple of 16"), (dict(frames_per_cycle=2), "Frames per cycle"),
    (dict(cycles=0), "cycles"), (dict(frames_per_cycle=120, cycle_seconds=1), "20 ms"),
    (dict(cycle_seconds=float("nan")), "finite"), (dict(cycles="three"), "numbers"),
])
def test_bad_render_settings_are_refused(values, message):
    with pytest.raises(ReviewError, match=message):
        RenderSettings(**values)


def test_blinding_check_passes_the_render_path_and_catches_a_naive_one(tmp_path):
    import imageio.v2 as imageio

    rendered = [(render_case(sharp_cine(k), tmp_path / "r", SMALL), "real") for k in range(2)]
    rendered += [(render_case(smooth_cine(0.2 + 0.3 * k), tmp_path / "r", SMALL), "synthetic") for k in range(2)]
    report = blinding_check(rendered)
    assert report["blinded"] and report["exploitable"] == [] and report["n_real"] == 2

    assert report["one_layout_for_all_files"]

    naive = []  # the obvious way: each cine saved as a compressed GIF as it is, named after its source
    for k, (path, truth) in enumerate(rendered):
        frames = read_frames(path)[:: 1 if truth == "real" else 2]
        out = tmp_path / "naive" / f"{truth}_{k}.gif"
        out.parent.mkdir(exist_ok=True)
        imageio.mimsave(out, list(frames), duration=60, loop=0)
        naive.append((out, truth))
    flagged = set(blinding_check(naive)["exploitable"])
    assert {"frames", "duration", "name_pattern", "container_layout"} <= flagged


def test_the_same_cine_never_gives_the_same_file_twice(tmp_path):
    """Blinding across studies: the loop starts at a fresh random point of the cycle for every case file."""
    cine = Cine(np.random.default_rng(0).random((6, 32, 32)).astype(np.float32), (2.0, 2.0))
    files = [render_case(cine, tmp_path, SMALL).read_bytes() for _ in range(5)]
    assert len(set(files)) == 5 and len({len(f) for f in files}) == 1
