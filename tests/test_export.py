"""NIfTI export geometry (issue 24, point 5): the array in NIfTI's (i, j) order, an affine consistent with it,
qform = sform, a real slice thickness, and a source affine kept when a cine carries one. DICOM export: one
multi-frame Secondary Capture file per slice, labelled synthetic, with no patient identifiers, placed in space
where the NIfTI export puts it (read back by highdicom, a viewer-level reader); an edited real heart on the slice of
its source it came from (issue 39, item 6)."""

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


# --- Where a viewer puts the DICOM (issue 39, item 6): geometry read back by a viewer-level reader (highdicom) ---

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # NIfTI's world -> DICOM's patient coordinates (written out here,
# not imported, so that a wrong conversion in the exporter cannot pass by being used on both sides)

def oblique_affine(col_mm: float, row_mm: float, thickness: float) -> np.ndarray:
    """A scanner-like voxel -> RAS affine: (i, j, k) axes turned twice and shifted, so that no axis lies along
    another and a swap of rows and columns, a lost sign or a RAS/LPS mix-up moves pixels by centimetres."""
    a, b = np.radians(25.0), np.radians(-40.0)
    turn = (np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
            @ np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]]))
    affine = np.eye(4)
    affine[:3, :3] = turn @ np.diag([-col_mm, -row_mm, thickness])
    affine[:3, 3] = [12.5, -130.25, 41.0]
    return affine


def patient_positions(geometry, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(N, 3) LPS mm of pixel centres (row, col) of the one plane, as highdicom maps them."""
    return geometry.map_indices_to_reference(np.stack([np.zeros_like(rows), rows, cols], axis=1))


@pytest.mark.parametrize("kind", ["synthetic", "source affine"])
def test_highdicom_places_the_dicom_where_the_nifti_export_puts_it(tmp_path, kind):
    """Read back by highdicom (its Image and VolumeGeometry, what a viewer builds from the Frame of Reference
    and the functional groups): orientation, position and spacing are those written, and every pixel lies where
    the NIfTI export's affine puts it (RAS -> LPS) within 1e-3 mm."""
    import highdicom as hd
    from pydicom.uid import UID

    from cardiosynth.export import dicom_plane

    cine = asymmetric_cine() if kind == "synthetic" else asymmetric_cine(affine=oblique_affine(COL_MM, ROW_MM, 8.0))
    nifti_image = nib.load(save_cine(cine, tmp_path / "cine.nii.gz"))
    nifti = nifti_image.affine
    image = hd.imread(save_cine(cine, tmp_path / "cine.dcm"))
    geometry = image.get_volume_geometry()
    assert geometry is not None and geometry.spatial_shape == (1, H, W)
    written = dicom_plane(cine)
    np.testing.assert_allclose(geometry.pixel_spacing, written.pixel_spacing, atol=1e-6)
    np.testing.assert_allclose(geometry.position, written.position, atol=1e-5)
    orientation = geometry.get_plane_orientation()[0].ImageOrientationPatient
    np.testing.assert_allclose([float(v) for v in orientation], written.orientation, atol=1e-6)
    assert UID(image.FrameOfReferenceUID).is_valid and image.PositionReferenceIndicator == ""
    rows, cols = (grid.ravel() for grid in np.mgrid[:H, :W])
    from_nifti = (RAS_TO_LPS @ nifti @ np.stack([cols, rows, np.zeros_like(rows), np.ones_like(rows)]))[:3].T
    np.testing.assert_allclose(patient_positions(geometry, rows, cols), from_nifti, atol=1e-3)
    np.testing.assert_allclose(image.get_frame(1) / DICOM_MAX, cine.frames[0], atol=0.5 / DICOM_MAX + 1e-7)
    assert image.SyntheticData == "YES" and image.ConversionType == "SYN"
    comment = json.loads(image.ImageComments)
    assert comment["placement"] == json.loads(nifti_image.header.extensions[0].get_content())["placement"]
    if kind == "synthetic":  # a default placement says so, and shares no frame of reference with anything
        assert comment["placement"].startswith("default") and np.allclose(written.orientation, [1, 0, 0, 0, 1, 0])
        assert image.FrameOfReferenceUID != pydicom_read(save_cine(cine, tmp_path / "again.dcm")).FrameOfReferenceUID
    else:
        assert not comment["placement"].startswith("default")


def pydicom_read(path):
    import pydicom

    return pydicom.dcmread(path)


def test_a_source_frame_of_reference_is_carried_only_with_the_source_geometry(tmp_path):
    from pydicom.uid import generate_uid

    uid = str(generate_uid())
    placed = asymmetric_cine(affine=oblique_affine(COL_MM, ROW_MM, 8.0), frame_of_reference_uid=uid)
    assert pydicom_read(save_cine(placed, tmp_path / "placed.dcm")).FrameOfReferenceUID == uid
    unplaced = asymmetric_cine(frame_of_reference_uid=uid)  # a default placement does not lie in the source's space
    assert pydicom_read(save_cine(unplaced, tmp_path / "unplaced.dcm")).FrameOfReferenceUID != uid


def test_a_sheared_affine_cannot_be_written_as_dicom(tmp_path):
    sheared = oblique_affine(COL_MM, ROW_MM, 8.0)
    sheared[:3, 1] += 0.3 * sheared[:3, 0] / COL_MM
    sheared[:3, 1] *= ROW_MM / np.linalg.norm(sheared[:3, 1])  # the right pixel sizes, but not at right angles
    with pytest.raises(ValueError, match="right angles"):
        save_cine(asymmetric_cine(affine=sheared), tmp_path / "sheared.dcm")


def test_the_crop_affine_maps_crop_pixels_to_where_they_were_sampled():
    from cardiosynth.data.prepare import CONFIGS, sampling_grid
    from cardiosynth.pipelines.real_cine import crop_affine

    grid = sampling_grid(np.array([40.3, 61.7]), (1.25, 1.6), CONFIGS["default"])  # (2, 64, 64) source (row, col)
    mapped = crop_affine(np.eye(4), grid, z=5)  # the identity: world = source voxel (i = col, j = row, k)
    rows, cols = np.mgrid[:64, :64]
    voxels = mapped @ np.stack([cols.ravel(), rows.ravel(), np.zeros(rows.size), np.ones(rows.size)])
    np.testing.assert_allclose(voxels[0], grid[1].ravel(), atol=1e-9)
    np.testing.assert_allclose(voxels[1], grid[0].ravel(), atol=1e-9)
    np.testing.assert_allclose(voxels[2], 5.0)


def test_a_nifti_placed_by_its_header_gives_a_frame_of_reference_made_from_its_bytes(tmp_path):
    from cardiosynth.data.prepare import CONFIGS, sampling_grid
    from cardiosynth.pipelines.real_cine import crop_placement, read_cine_file

    data = np.random.default_rng(0).integers(0, 255, (32, 28, 2, 8)).astype(np.uint8)
    affine = oblique_affine(1.5, 1.5, 8.0)
    placed, other, unplaced = tmp_path / "placed.nii.gz", tmp_path / "other.nii.gz", tmp_path / "unplaced.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), placed)
    nib.save(nib.Nifti1Image(data[::-1], affine), other)
    header_only = nib.Nifti1Image(data, None)
    header_only.header.set_zooms((1.5, 1.5, 8.0, 1.0))
    nib.save(header_only, unplaced)  # qform and sform codes 0: no scanner placement
    volume = read_cine_file(placed)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-5)
    assert volume.frame_of_reference_uid == read_cine_file(placed).frame_of_reference_uid  # every read: the same
    assert volume.frame_of_reference_uid != read_cine_file(other).frame_of_reference_uid
    grid = sampling_grid(np.array([14.0, 16.0]), volume.spacing_mm, CONFIGS["default"])
    placement = crop_placement(volume, grid, 1, CONFIGS["default"].spacing_mm)
    assert placement["frame_of_reference_uid"] == volume.frame_of_reference_uid and "bytes" in \
        placement["frame_of_reference_from"]
    np.testing.assert_allclose(np.linalg.norm(np.array(placement["affine"])[:3, :2], axis=0), 2.2)
    assert read_cine_file(unplaced).affine is None
    nib.save(nib.Nifti1Image(data[:, :, 0], affine), tmp_path / "one_slice.nii.gz")  # (X, Y, T): k is time
    one_slice = read_cine_file(tmp_path / "one_slice.nii.gz").affine
    np.testing.assert_allclose(one_slice[:3, :2], affine[:3, :2], atol=1e-5)  # its plane kept, but as a slice ...
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    np.testing.assert_allclose(one_slice[:3, 2], normal / np.linalg.norm(normal) * DEFAULT_SLICE_THICKNESS_MM,
                               atol=1e-5)  # ... of the default thickness along its normal
    assert crop_placement(read_cine_file(unplaced), grid, 1, CONFIGS["default"].spacing_mm) == {}


@pytest.mark.usefixtures("one_thread")
def test_an_edited_real_hearts_dicom_lies_on_its_source_slice(acdc_root, tmp_path):
    """An ACDC cine given an oblique scanner placement, one slice prepared and edited with the bundled weights:
    every pixel of the edit's DICOM, taken to patient coordinates by highdicom and back into the source file's
    voxels by its affine, lands on the slice it came from, inside the crop window, on source pixels whose
    intensities match the edit's ED frame (up to the crop's resampling and intensity normalisation). The real
    slice's export shares its Frame of Reference; the edit stays labelled synthetic."""
    import highdicom as hd
    from scipy import ndimage

    from cardiosynth.models.segmenter import Segmenter
    from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
    from cardiosynth.pipelines.real_cine import prepare_real_slice, read_cine_file

    acdc = nib.load(acdc_root / "patient002" / "patient002_4d.nii.gz")
    voxels = np.asanyarray(acdc.dataobj)
    col_mm, row_mm, thickness = (float(s) for s in acdc.header.get_zooms()[:3])
    source_affine = oblique_affine(col_mm, row_mm, thickness)
    nib.save(nib.Nifti1Image(voxels, source_affine), tmp_path / "source.nii.gz")
    volume, z = read_cine_file(tmp_path / "source.nii.gz"), 3
    real = prepare_real_slice(volume, z, segmenter=Segmenter.from_pretrained())
    known = {"LVEDV": 150.0, "LVM": 120.0, "RVEDV": 160.0, "LVEF": 60.0}
    edited = PhenotypeToCine.from_pretrained(device="cpu").edit(real, {"LVEF": 35}, phenotypes=known, seed=0,
                                                                steps=4, motion="own").cines[0]
    image = hd.imread(save_cine(edited, tmp_path / "edited.dcm"))
    assert image.SyntheticData == "YES" and image.FrameOfReferenceUID == volume.frame_of_reference_uid
    real_dicom = pydicom_read(save_cine(real, tmp_path / "real.dcm"))
    assert real_dicom.FrameOfReferenceUID == image.FrameOfReferenceUID and real_dicom.SyntheticData == "NO"

    rows, cols = (grid.ravel() for grid in np.mgrid[:edited.shape[1], :edited.shape[2]])
    lps = patient_positions(image.get_volume_geometry(), rows, cols)
    i, j, k = (np.linalg.inv(source_affine) @ RAS_TO_LPS @ np.c_[lps, np.ones(len(lps))].T)[:3]
    np.testing.assert_allclose(k, z, atol=1e-3)  # the slice it was cut from
    window = (edited.shape[1] - 1) * edited.spacing_mm[0]  # the crop's width in mm, in source pixels below
    assert np.ptp(i) == pytest.approx(window / col_mm, abs=1e-3)
    assert np.ptp(j) == pytest.approx(window / row_mm, abs=1e-3)
    inside = (i >= -0.5) & (i <= voxels.shape[0] - 0.5) & (j >= -0.5) & (j <= voxels.shape[1] - 0.5)
    valid = edited.valid.ravel()
    assert inside[valid].all()  # every real pixel of the crop came from the source slice
    source_ed = ndimage.map_coordinates(voxels[:, :, z, 0].astype(float), [i[valid], j[valid]], order=1)
    ed = edited.frames[0].ravel()[valid]
    unclipped = (ed > 0.02) & (ed < 0.98)  # the crop's normalisation is linear between its percentiles
    slope, offset = np.polyfit(source_ed[unclipped], ed[unclipped], 1)
    residual = np.abs(slope * source_ed[unclipped] + offset - ed[unclipped])
    assert slope > 0 and np.corrcoef(source_ed, ed)[0, 1] > 0.95 and np.percentile(residual, 95) < 0.05
    brightest = np.argmax(np.where(unclipped, ed, 0))  # one pixel, spelled out: the brightest of the edit's ED frame
    assert source_ed[brightest] > np.percentile(voxels[:, :, z, 0], 90)
