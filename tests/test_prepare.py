import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from acdc_fixture import ES, T, Z, write_acdc, write_split
from cardiosynth import phenotypes as ph
from cardiosynth.data import acdc
from cardiosynth.data.contact_sheet import write_contact_sheet
from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.prepare import CONFIGS, PrepareConfig, prepare_acdc, resample_periodic_frames
from cardiosynth.data.splits import SPLIT_FILE, load_split, make_split

PATIENTS = {"patient001": "NOR", "patient002": "DCM", "patient003": "HCM"}
SMALL = PrepareConfig(name="test", frames=8, size=32, spacing_mm=2.0)


@pytest.fixture()
def prepared(tmp_path):
    root = write_acdc(tmp_path / "acdc", PATIENTS)
    (root / "patient003" / "Info.cfg").write_text("Group: HCM\n")  # unusable: no ED/ES
    split = write_split(tmp_path / "split.csv", PATIENTS)
    summary = prepare_acdc(root, SMALL, tmp_path / "out", split, progress=False)
    return summary, load_prepared(tmp_path / "out"), root


def test_preparation_shapes_and_summary(prepared):
    summary, ds, _ = prepared
    n = 2 * (Z - 1)  # two usable patients; the top slice has no myocardium
    assert ds.cines.shape == (n, 8, 32, 32) and ds.cines.dtype == np.uint8
    assert ds.valid.shape == ds.ed_masks.shape == ds.es_masks.shape == ds.es_images.shape == (n, 32, 32)
    assert summary["slices_kept"] == n
    assert summary["slices_dropped_no_myocardium_at_ed"] == 2
    assert summary["subjects_skipped"] == {"patient003": "Info.cfg has no valid ED/ES frame numbers"}
    assert set(ds.table["subject"]) == {"patient001", "patient002"}
    assert set(ds.table["split"]) == {"train"}
    assert summary["heart_fully_in_crop_fraction"] == 1.0
    for name in ph.NAMES:
        assert name in ds.table


def test_frames_masks_and_positions(prepared):
    _, ds, root = prepared
    row = ds.table.iloc[0]
    assert row["es_frame_float"] == pytest.approx((ES - 1) * 8 / T)
    assert row["slice_position"] == 0.0 and ds.table.iloc[1]["slice_position"] == pytest.approx(1 / (Z - 1))
    assert set(np.unique(ds.ed_masks)) <= {0, 1, 2, 3}  # nearest neighbour keeps labels
    frames = ds.frames(0)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    # LV cavity is bright, myocardium dark, and the LV shrinks from ED to ES
    assert frames[0][ds.ed_masks[0] == 3].mean() > frames[0][ds.ed_masks[0] == 2].mean() + 0.3
    assert (ds.es_masks[0] == 3).sum() < 0.6 * (ds.ed_masks[0] == 3).sum()
    # frame 0 is end-diastole: the largest bright area, the ES frame the smallest
    bright = (frames > 0.8).sum(axis=(1, 2))
    assert bright.argmax() == 0 and abs(int(bright.argmin()) - row["es_frame_float"]) <= 1
    # prepared ED mask area matches the source mask area in mm^2 (resampling keeps geometry)
    subject = acdc.read_subject(root / "patient001")
    source_mm2 = (subject.ed_mask[0] == 3).sum() * np.prod(subject.spacing_mm)
    assert (ds.ed_masks[0] == 3).sum() * SMALL.spacing_mm**2 == pytest.approx(source_mm2, rel=0.1)


def test_padding_is_masked(tmp_path):
    root = write_acdc(tmp_path / "acdc", {"patient001": "NOR"})
    split = write_split(tmp_path / "split.csv", {"patient001": "NOR"})
    big = dataclasses.replace(SMALL, size=64, spacing_mm=2.0)  # 128 mm > the 72 x 64 mm source image
    prepare_acdc(root, big, tmp_path / "out", split, progress=False)
    ds = load_prepared(tmp_path / "out")
    assert 0.2 < ds.valid.mean() < 0.8
    assert ds.cines[:, :, ~ds.valid[0]].max() == 0


def test_patients_missing_from_the_split_are_reported(tmp_path):
    root = write_acdc(tmp_path / "acdc", {"patient001": "NOR", "patient002": "NOR"})
    split = write_split(tmp_path / "split.csv", {"patient001": "NOR"})
    summary = prepare_acdc(root, SMALL, tmp_path / "out", split, progress=False)
    assert "not assigned to a split" in summary["subjects_skipped"]["patient002"]


def test_rewrite_replaces_the_previous_dataset(tmp_path, prepared):
    summary, _, root = prepared
    out = tmp_path / "out"
    prepare_acdc(root, dataclasses.replace(SMALL, frames=4), out, tmp_path / "split.csv", progress=False)
    assert load_prepared(out).cines.shape[1] == 4
    assert not (tmp_path / "out.tmp").exists()
    assert json.loads((out / "config.json").read_text())["frames"] == 4


def test_resample_periodic_frames_keeps_frame_zero_and_is_periodic():
    frames = np.arange(4, dtype=float)[:, None, None] * np.ones((1, 2, 2))
    out = resample_periodic_frames(frames, 8)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3, 1.5])


def test_contact_sheet(prepared, tmp_path):
    path = write_contact_sheet(prepared[1], tmp_path / "sheet.png", n=4)
    assert path.stat().st_size > 5000


def test_split_is_stratified_and_deterministic():
    table = pd.DataFrame({"patient": [f"p{i:03d}" for i in range(85)],
                          "group": np.repeat(["DCM", "HCM", "MINF", "NOR", "RV"], 17),
                          "has_cine": np.tile([1, 1, 1, 0], 22)[:85]})
    a, b = make_split(table), make_split(table)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_split(table, seed=1))
    counts = pd.crosstab(a["group"], a["split"])
    assert (counts["train"] == 12).all() and (counts["val"] + counts["test"] == 5).all()
    assert set(a["split"].value_counts()) == {60, 13, 12}


def test_committed_split_covers_all_85_patients_and_is_reproducible(acdc_root):
    table = pd.read_csv(acdc_root / "phenotypes.csv")
    committed = load_split(SPLIT_FILE)
    assert set(committed) == set(table["patient"])
    regenerated = make_split(table)
    assert dict(zip(regenerated["patient"], regenerated["split"])) == committed


def test_real_preparation(acdc_root, tmp_path):
    summary = prepare_acdc(acdc_root, CONFIGS["default"], tmp_path / "real", progress=False)
    ds = load_prepared(tmp_path / "real")
    assert summary["subjects_used"] + len(summary["subjects_skipped"]) == 67
    assert ds.cines.shape[1:] == (16, 64, 64) and len(ds) == summary["slices_kept"] >= 400
    assert summary["heart_fully_in_crop_fraction"] > 0.95
    # no patient in two splits; the blood pool is brighter than the myocardium in the prepared ED frames
    assert ds.table.groupby("subject")["split"].nunique().max() == 1
    ed = ds.cines[:, 0].astype(float)
    assert ed[ds.ed_masks == 3].mean() > ed[ds.ed_masks == 2].mean() + 40
    assert ds.table["slice_position"].between(0, 1).all()
    assert ds.cine(0).frames.shape == (16, 64, 64)


def test_prepared_real_cines_carry_their_source_slice_thickness(prepared):
    from acdc_fixture import SPACING

    _, ds, _ = prepared
    assert (ds.table["source_slice_thickness_mm"] == SPACING[2]).all()
    assert ds.cine(0).metadata == {"slice_thickness_mm": SPACING[2]}  # the NIfTI export writes it
    older = ds.subset(ds.table.index >= 0)
    older.table = older.table.drop(columns="source_slice_thickness_mm")  # a dataset prepared before the column
    assert older.cine(0).metadata == {}


def test_load_or_prepare_prepares_on_first_use_once_even_when_requests_race(tmp_path, monkeypatch):
    import threading

    from cardiosynth.data.dataset import prepared_folder
    from cardiosynth.data.prepare import load_or_prepare

    patients = {"patient002": "DCM", "patient004": "DCM"}  # in the bundled split: train and val
    monkeypatch.setenv("CARDIOSYNTH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    write_acdc(tmp_path / "data" / "acdc", patients)
    assert not (prepared_folder("default") / "dataset.npz").exists()
    told, loaded = [], []

    def request():
        loaded.append(load_or_prepare("default", notify=told.append))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(told) == 1 and "first use" in told[0]  # prepared once, and the user was told
    assert len(loaded) == 2 and all(len(ds) == len(loaded[0]) > 0 for ds in loaded)
    assert set(loaded[0].table["subject"]) == set(patients) and set(loaded[0].table["split"]) == {"train", "val"}
    folder = prepared_folder("default")
    assert (folder / "dataset.npz").is_file()
    assert [p.name for p in folder.parent.iterdir() if "partial" in p.name or p.name.endswith(".tmp")] == []
    # already prepared: loaded as it is, nobody told
    assert len(load_or_prepare("default", notify=told.append)) == len(loaded[0]) and len(told) == 1


def test_load_or_prepare_without_the_data_folder_says_where_it_looked(tmp_path, monkeypatch):
    from cardiosynth.data.prepare import load_or_prepare
    from cardiosynth.paths import DataNotFoundError

    monkeypatch.setenv("CARDIOSYNTH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as caught:
        load_or_prepare("default")
    text = str(caught.value)
    assert str(tmp_path / "nowhere" / "acdc") in text and "CARDIOSYNTH_DATA" in text
