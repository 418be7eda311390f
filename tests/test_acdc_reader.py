import gzip

import numpy as np
import pytest

from acdc_fixture import ED, ES, SPACING, T, X, Y, Z, expected_volumes_ml, write_acdc
from cardiosynth.data import acdc
from cardiosynth.data.labels import LV, MYO
from cardiosynth.paths import DataNotFoundError


@pytest.fixture()
def fixture_root(tmp_path):
    return write_acdc(tmp_path / "acdc", {"patient001": "NOR", "patient002": "DCM"})


def test_reads_official_layout(fixture_root):
    subject = acdc.read_subject(fixture_root / "patient001")
    assert subject.cine.shape == (Z, T, Y, X)  # (Z, T, rows, cols): frames[t] = vol[:, :, z, t].T
    assert subject.spacing_mm == pytest.approx((SPACING[1], SPACING[0]))
    assert subject.slice_thickness_mm == SPACING[2]
    assert (subject.ed_index, subject.es_index) == (ED - 1, ES - 1)
    assert subject.group == "NOR" and subject.height_cm == 170.0 and subject.weight_kg == 70.0
    assert subject.ed_mask.shape == (Z, Y, X)
    assert subject.phenotype_source == "masks"
    expected = expected_volumes_ml()
    for name, value in expected.items():
        assert subject.phenotypes[name] == pytest.approx(value)
    assert subject.phenotypes["LVEF"] == pytest.approx(
        100 * (expected["LVEDV"] - expected["LVESV"]) / expected["LVEDV"])


def test_orientation_matches_design_contract(fixture_root):
    import nibabel as nib

    volume = np.asarray(nib.load(fixture_root / "patient001" / "patient001_4d.nii.gz").dataobj)
    subject = acdc.read_subject(fixture_root / "patient001")
    np.testing.assert_array_equal(subject.cine[1, 3], volume[:, :, 1, 3].T)


def test_ground_truth_phenotypes_take_precedence(fixture_root):
    given = {"LVEDV": 1.0, "LVESV": 0.5, "LVSV": 0.5, "LVEF": 50.0, "LVM": 2.0,
             "RVEDV": 1.0, "RVESV": 0.5, "RVSV": 0.5, "RVEF": 50.0}
    subject = acdc.read_subject(fixture_root / "patient001", given)
    assert subject.phenotypes == given and subject.phenotype_source == "csv"
    assert subject.phenotypes_from_masks["LVEDV"] == pytest.approx(expected_volumes_ml()["LVEDV"])


def _break(root, patient, how):
    folder = root / patient
    if how == "missing_cine":
        (folder / f"{patient}_4d.nii.gz").unlink()
    elif how == "garbage_nifti":
        (folder / f"{patient}_4d.nii.gz").write_bytes(gzip.compress(b"this is not a nifti file" * 10))
    elif how == "no_es":
        (folder / "Info.cfg").write_text("ED: 1\nGroup: NOR\n")
    elif how == "es_out_of_range":
        (folder / "Info.cfg").write_text("ED: 1\nES: 99\nGroup: NOR\n")
    elif how == "shape_mismatch":
        import nibabel as nib

        nib.save(nib.Nifti1Image(np.zeros((5, 5, 2), np.uint8), np.eye(4)), str(folder / f"{patient}_frame01_gt.nii.gz"))
    elif how == "missing_mask":
        (folder / f"{patient}_frame05_gt.nii.gz").unlink()
    elif how == "no_info":
        (folder / "Info.cfg").unlink()


@pytest.mark.parametrize("how, reason", [
    ("missing_cine", "missing patient002_4d.nii.gz"),
    ("garbage_nifti", "unreadable NIfTI patient002_4d.nii.gz"),
    ("no_es", "Info.cfg has no valid ED/ES"),
    ("es_out_of_range", "ES frame 99 is outside"),
    ("shape_mismatch", "ED mask shape (5, 5, 2) does not match"),
    ("missing_mask", "missing patient002_frame05_gt.nii.gz"),
    ("no_info", "missing Info.cfg"),
])
def test_bad_subject_is_skipped_with_a_reason(fixture_root, how, reason):
    _break(fixture_root, "patient002", how)
    results = dict(acdc.iter_subjects(fixture_root))
    assert isinstance(results["patient001"], acdc.AcdcSubject)
    assert isinstance(results["patient002"], acdc.SubjectError)
    assert reason in str(results["patient002"])


def test_missing_data_folder_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIOSYNTH_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match=r"nowhere/acdc.*CARDIOSYNTH_DATA"):
        list(acdc.iter_subjects())


# ---- the real ACDC subset ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_subjects(acdc_root):
    return dict(acdc.iter_subjects(acdc_root))


def test_real_every_patient_read_or_skipped_with_reason(acdc_root, real_subjects):
    folders = {p.name for p in acdc.subject_folders(acdc_root)}
    assert set(real_subjects) == folders and len(folders) == 67
    for patient, subject in real_subjects.items():
        if isinstance(subject, acdc.SubjectError):
            assert str(subject), patient
        else:
            assert subject.cine.ndim == 4 and subject.cine.shape[1] >= 13
            assert subject.ed_mask.shape == subject.es_mask.shape == (subject.n_slices, *subject.cine.shape[2:])
            assert subject.group in acdc.GROUPS


def test_real_phenotypes_agree_with_csv(acdc_root, real_subjects):
    import pandas as pd

    table = pd.read_csv(acdc_root / "phenotypes.csv").set_index("patient")
    for patient, subject in real_subjects.items():
        row = table.loc[patient]
        assert subject.phenotype_source == "csv"
        assert subject.phenotypes["LVEDV"] == pytest.approx(row["LVEDV_ml"])
        assert subject.phenotypes["RVEF"] == pytest.approx(row["RVEF_pct"])
        # the README's check: cropped-mask LV volume / true LVEDV = cine_lv_ed_fraction (within 0.001)
        assert subject.phenotypes_from_masks["LVEDV"] / row["LVEDV_ml"] == pytest.approx(
            row["cine_lv_ed_fraction"], abs=1e-3), patient


def test_real_masks_align_with_the_blood_pool(real_subjects):
    for patient, subject in real_subjects.items():
        ed_frames = subject.cine[:, subject.ed_index].astype(float)
        lv = ed_frames[subject.ed_mask == LV].mean()
        myo = ed_frames[subject.ed_mask == MYO].mean()
        assert lv > myo, patient
