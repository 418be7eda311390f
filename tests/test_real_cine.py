"""Real cines from files for editing: an ACDC NIfTI becomes a prepared slice with the heart in view; bad
files are one clear RealCineError each."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cardiosynth.cine import Cine
from cardiosynth.export import save_cine
from cardiosynth.models.segmenter import Segmenter, segment_cine
from cardiosynth.pipelines.real_cine import RealCineError, prepare_real_slice, read_cine_file

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_acdc_nifti_gives_a_prepared_slice_with_the_heart_centred(acdc_root):
    path = next(acdc_root.glob("patient*/patient*_4d.nii.gz"))
    volume = read_cine_file(path)
    assert volume.read_slice(0).ndim == 3 and volume.n_slices >= 3 and min(volume.spacing_mm) > 0.5
    segmenter = Segmenter.from_pretrained()
    cine = prepare_real_slice(volume, volume.n_slices // 2, segmenter=segmenter)
    assert cine.shape == (16, 64, 64) and cine.spacing_mm == (2.2, 2.2) and 0 < cine.slice_position < 1
    assert 0 <= cine.frames.min() and cine.frames.max() <= 1 and cine.frames.std() > 0.05
    labels = segment_cine(segmenter, cine.frames[:1])[0]
    rows, cols = np.nonzero(labels == 3)  # the LV, near the middle of the crop
    assert len(rows) >= 10 and abs(rows.mean() - 31.5) < 16 and abs(cols.mean() - 31.5) < 16
    with pytest.raises(RealCineError, match="slice 99 does not exist"):
        prepare_real_slice(volume, 99, segmenter=segmenter)


def test_a_cardiosynth_npz_cine_is_used_as_it_is(tmp_path):
    frames = np.random.default_rng(0).random((16, 64, 64)).astype(np.float32)
    path = save_cine(Cine(frames, (2.2, 2.2), 0.3), tmp_path / "cine.npz")
    cine = prepare_real_slice(read_cine_file(path))
    assert np.array_equal(cine.frames, frames) and cine.slice_position == pytest.approx(0.3)


def _nifti(tmp_path, data, name="bad.nii.gz", zooms=None):
    image = nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4))
    if zooms:
        image.header.set_zooms(zooms)
    nib.save(image, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("data, message", [
    (np.random.default_rng(0).random((32, 32, 2, 4)), "time points"),
    (np.random.default_rng(0).random((32, 32)), "dimensions"),
])
def test_unusable_niftis_say_why(tmp_path, data, message):
    with pytest.raises(RealCineError, match=message):
        read_cine_file(_nifti(tmp_path, data))


def test_a_blank_slice_says_so(tmp_path):
    with pytest.raises(RealCineError, match="blank"):
        prepare_real_slice(read_cine_file(_nifti(tmp_path, np.ones((32, 32, 3, 20)))))


@pytest.mark.parametrize("shape, dtype, message", [
    ((512, 512, 8, 200), np.int16, "at most 512 x 512 pixels, 64 slices and 100 time points"),  # the probe's file
    ((512, 512, 12, 90), np.float32, "GB of image data"),
    ((2048, 2048, 1, 20), np.uint8, "at most 512 x 512 pixels"),
])
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, shape, dtype, message):
    """Issue 37.5: a 408 kB all-zero .nii.gz declaring 512 x 512 x 8 x 200 cost +2.0 GB in 6 s. The header is
    checked before any data is read: refused at once, with a few MB of memory at most."""
    import gzip
    import time
    import tracemalloc

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms((1.5, 1.5, 8.0, 30.0)[:len(shape)])
    header["vox_offset"] = 352
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:  # zeros streamed: the file stays a few hundred kB
        out.write(header.binaryblock + b"\0" * 4)
        chunk = bytes(1 << 24)
        remaining = int(np.prod(shape)) * np.dtype(dtype).itemsize
        while remaining > 0:
            out.write(chunk[:min(remaining, len(chunk))])
            remaining -= len(chunk)
    assert path.stat().st_size < 5_000_000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(RealCineError, match=message):
        read_cine_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000 and time.perf_counter() - started < 2.0


def test_only_the_slice_asked_for_is_read(tmp_path):
    """A stack within the limits: one slice's data in memory, not the whole file's."""
    import tracemalloc

    data = np.random.default_rng(0).random((256, 256, 12, 30)).astype(np.float32)  # 94 MB in all, 7.9 MB a slice
    volume = read_cine_file(_nifti(tmp_path, data, name="stack.nii.gz", zooms=(1.5, 1.5, 8.0, 30.0)))
    tracemalloc.start()
    frames = volume.read_slice(5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(frames, data[:, :, 5, :].transpose(2, 1, 0)) and peak < 40_000_000


def test_other_files_and_corrupt_ones_are_clear_errors(tmp_path):
    (tmp_path / "scan.dcm").write_bytes(b"\0" * 200)
    with pytest.raises(RealCineError, match="expected a NIfTI cine"):
        read_cine_file(tmp_path / "scan.dcm")
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip at all")
    with pytest.raises(RealCineError, match="could not be read as NIfTI"):
        read_cine_file(tmp_path / "broken.nii.gz")


def test_a_slice_without_a_heart_is_refused(tmp_path):
    noise = np.random.default_rng(0).random((80, 80, 1, 16))
    volume = read_cine_file(_nifti(tmp_path, noise, zooms=(1.5, 1.5, 8.0, 30.0)))
    with pytest.raises(RealCineError, match="No heart was found"):
        prepare_real_slice(volume)


def test_an_npz_that_would_inflate_beyond_a_cine_is_refused_unopened(tmp_path):
    """The .npz door of the same upload: a few kB of zeros declaring 100 x 512 x 512 float32 (105 MB)."""
    import tracemalloc

    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, frames=np.zeros((100, 512, 512), np.float32), spacing_mm=np.array([2.2, 2.2]))
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    with pytest.raises(RealCineError, match="would inflate to 105 MB"):
        read_cine_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000
