"""NIfTI export geometry (issue 24, point 5): the array in NIfTI's (i, j) order, an affine consistent with it,
qform = sform, a real slice thickness, and a source affine kept when a cine carries one. DICOM export: one
multi-frame Secondary Capture file per slice, labelled synthetic, with no patient identifiers."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cardiosynth.cine import Cine
from cardiosynth.export import DEFAULT_SLICE_THICKNESS_MM, DICOM_MAX, save_cine

T, H, W = 4, 12, 20  # H != W: a transposed array changes shape, not only content
ROW_MM, COL_MM = 1.5, 2.5  # unequal, so swapped zooms are caught too


def asymmetric_cine(**metadata) -> Cine:
    """Frame 0: a bright square in the top-left rows and a dimmer bar bottom-right; later frames move them."""
    frames = np.zeros((T, H, W), np.float32)
    frames[0, 1:4, 2:5] = 1.0  # top-left
    frames[0, H - 3:H - 1, W - 7:W - 1] = 0.5  # bottom-right, wider than tall
    for t in range(1, T):
        frames[t, t, t + 1] = 0.25 * t  # one pixel per frame: frames are not interchangeable
    return Cine(frames, (ROW_MM, COL_MM), 0.4, source="synthetic:test@0", metadata=metadata)


def read_back(path) -> tuple[nib.Nifti1Image, np.ndarray]:
    image = nib.load(path)
    vol = np.asanyarray(image.dataobj)
    return image, np.stack([vol[:, :, 0, t].T for t in range(vol.shape[3])])  # the reading contract


def test_nifti_round_trip_keeps_orientation_spacing_and_thickness(tmp_path):
    cine = asymmetric_cine()
    path = save_cine(cine, tmp_path / "cine.nii.gz", {"LVEF": 60.0}, frame_seconds=0.05)
    image, frames = read_back(path)
    assert image.shape == (W, H, 1, T)  # i along columns, j along rows
    np.testing.assert_array_equal(frames, cine.frames)
    assert frames[0, 2, 3] == 1.0 and frames[0, H - 2, W - 2] == 0.5 and frames[0, 2, W - 2] == 0.0
    np.testing.assert_allclose(image.header.get_zooms(), (COL_MM, ROW_MM, DEFAULT_SLICE_THICKNESS_MM, 0.05), rtol=1e-6)
    header = image.header
    assert int(header["qform_code"]) == 2 and int(header["sform_code"]) == 2  # aligned: not scanner coordinates
    qform, sform = header.get_qform(), header.get_sform()
    np.testing.assert_allclose(qform, sform, atol=1e-5)
    np.testing.assert_allclose(image.affine, sform, atol=1e-5)
    np.testing.assert_allclose(np.abs(np.diag(sform)[:3]), (COL_MM, ROW_MM, DEFAULT_SLICE_THICKNESS_MM), rtol=1e-6)
    assert nib.aff2axcodes(sform) == nib.aff2axcodes(qform) == ("L", "P", "S")  # as ACDC's files
    centre = sform @ np.array([(W - 1) / 2, (H - 1) / 2, 0, 1])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-5)  # the slice's centre at the world origin
    info = json.loads(header.extensions[0].get_content())
    assert info["LVEF"] == 60.0 and info["slice_thickness_mm"] == DEFAULT_SLICE_THICKNESS_MM
    assert info["slice_thickness_from"].startswith("default")


def test_nifti_thickness_comes_from_the_cine_when_it_knows(tmp_path):
    image, frames = read_back(save_cine(asymmetric_cine(slice_thickness_mm=6.5), tmp_path / "thin.nii.gz"))
    assert image.header.get_zooms()[2] == pytest.approx(6.5)
    assert json.loads(image.header.extensions[0].get_content())["slice_thickness_from"] == "cine metadata"


def test_nifti_keeps_a_source_affine(tmp_path):
    source = np.array([[-COL_MM, 0, 0, -68.4], [0, -ROW_MM, 0, -116.2], [0, 0, 10.0, 30.0], [0, 0, 0, 1]])
    cine = asymmetric_cine(affine=source)
    image, frames = read_back(save_cine(cine, tmp_path / "edited.nii.gz"))
    np.testing.assert_array_equal(frames, cine.frames)
    assert int(image.header["qform_code"]) == 1 and int(image.header["sform_code"]) == 1  # the source's scanner space
    np.testing.assert_allclose(image.header.get_sform(), source, atol=1e-5)
    np.testing.assert_allclose(image.header.get_qform(), source, atol=1e-4)
    assert image.header.get_zooms()[:3] == pytest.approx((COL_MM, ROW_MM, 10.0))


def test_a_source_affine_for_another_grid_is_refused(tmp_path):
    wrong = np.diag([ROW_MM, COL_MM, 10.0, 1.0])  # (row, col): the old, transposed convention
    with pytest.raises(ValueError, match="describes another grid"):
        save_cine(asymmetric_cine(affine=wrong), tmp_path / "bad.nii.gz")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_real_acdc_slice_written_with_its_affine_matches_the_source(acdc_root, tmp_path):
    """Read one real slice by the contract, write it with its source's affine: same voxels, same geometry."""
    source = nib.load(acdc_root / "patient002" / "patient002_4d.nii.gz")
    vol = np.asanyarray(source.dataobj).astype(np.float32)
    z = 3
    frames = np.stack([vol[:, :, z, t].T for t in range(vol.shape[3])]) / max(float(vol.max()), 1.0)
    affine = source.affine.copy()
    affine[:3, 3] = source.affine[:3, :3] @ [0, 0, z] + source.affine[:3, 3]  # the origin of slice z
    col_mm, row_mm = (float(s) for s in source.header.get_zooms()[:2])
    cine = Cine(frames, (row_mm, col_mm), source="real:patient002/slice3", metadata={"affine": affine})
    image, back = read_back(save_cine(cine, tmp_path / "real.nii.gz"))
    np.testing.assert_array_equal(back, cine.frames)
    np.testing.assert_allclose(np.asanyarray(image.dataobj)[:, :, 0, :] * max(float(vol.max()), 1.0),
                               vol[:, :, z, :], atol=1e-3)  # the source's own (i, j) layout
    assert nib.aff2axcodes(image.affine) == nib.aff2axcodes(source.affine)
    np.testing.assert_allclose(image.affine, affine, atol=1e-4)


def test_dicom_round_trip_frames_spacing_timing_and_labels(tmp_path):
    import pydicom
    from pydicom import uid
    from pydicom.pixels import apply_voi_lut

    rng = np.random.default_rng(0)
    cine = Cine(rng.random((T, H, W), dtype=np.float32), (ROW_MM, COL_MM), 0.4, source="synthetic:cpgg@0123abcd",
                metadata={"seed": 7, "sample": 0})
    ds = pydicom.dcmread(save_cine(cine, tmp_path / "cine.dcm", {"LVEF": 60.0}, frame_seconds=0.05))
    assert ds.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3"  # word SC
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.NumberOfFrames == T and (ds.Rows, ds.Columns) == (H, W) and ds.BitsStored == 12
    pixels = ds.pixel_array
    assert pixels.shape == (T, H, W) and pixels.dtype == np.uint16  # frames[t] as rows x columns, not transposed
    np.testing.assert_allclose(pixels / DICOM_MAX, cine.frames, atol=0.5 / DICOM_MAX + 1e-7)  # within quantisation
    stored = np.arange(DICOM_MAX + 1, dtype=np.uint16)  # the window a viewer applies: 0..1 as black..white, linearly
    np.testing.assert_allclose(apply_voi_lut(stored, ds), stored, atol=1e-6)
    assert [float(v) for v in ds.PixelSpacing] == [ROW_MM, COL_MM]
    assert float(ds.SliceThickness) == DEFAULT_SLICE_THICKNESS_MM
    assert float(ds.FrameTime) == pytest.approx(50.0) and ds.FrameIncrementPointer == 0x00181063
    assert ds.SyntheticData == "YES" and ds.ConversionType == "SYN" and ds.ImageType[0] == "DERIVED"
    assert "cpgg@0123abcd" in ds.DerivationDescription and "seed 7" in ds.DerivationDescription
    assert json.loads(ds.ImageComments)["LVEF"] == 60.0
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate"):
        assert keyword in ds and not str(ds.data_element(keyword).value)  # type 2: present, empty


def test_dicom_uids_are_new_on_every_write_and_a_real_cine_is_not_labelled_synthetic(tmp_path):
    import pydicom
    from pydicom.uid import UID

    cine = asymmetric_cine(rr_s=0.8)  # an ECG-driven cine's heartbeat: the frame time when none is given
    first, second = (pydicom.dcmread(save_cine(cine, tmp_path / name)) for name in ("a.dcm", "b.dcm"))
    keys = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    for ds in (first, second):
        assert all(UID(ds[k].value).is_valid for k in keys) and len({ds[k].value for k in keys}) == 3
        assert float(ds.FrameTime) == pytest.approx(1000 * 0.8 / T)
    assert all(first[k].value != second[k].value for k in keys)
    real = Cine(asymmetric_cine().frames, (ROW_MM, COL_MM), source="real:patient002/slice3")
    ds = pydicom.dcmread(save_cine(real, tmp_path / "real.dcm"))
    assert ds.SyntheticData == "NO" and ds.ConversionType == "WSD" and "real:patient002" in ds.DerivationDescription


def test_a_failed_dicom_write_leaves_no_file(tmp_path, monkeypatch):
    from pydicom.dataset import Dataset

    def fail_midway(self, path, **kwargs):
        Path(path).write_bytes(b"DICM half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Dataset, "save_as", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_cine(asymmetric_cine(), tmp_path / "cine.dcm")
    assert not list(tmp_path.iterdir())
