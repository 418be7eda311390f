"""The evaluation command end to end on a tiny prepared set (fixture patients), with the bundled instruments."""

import json

import numpy as np
import pytest
from acdc_fixture import write_acdc, write_split

from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.prepare import CONFIGS, prepare_acdc
from cardiosynth.pipelines.generators import (
    GroupMeanCine,
    NearestTrainingCine,
    RealCines,
    build_generator,
    check_conditions,
)
from evaluation import evaluate


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    patients = {"patient001": "NOR", "patient002": "DCM", "patient003": "NOR", "patient004": "HCM"}
    root = write_acdc(tmp / "acdc", patients)
    split = write_split(tmp / "split.csv", patients)
    text = split.read_text().replace("patient003,NOR,train", "patient003,NOR,val").replace(
        "patient004,HCM,train", "patient004,HCM,val")
    split.write_text(text)
    prepare_acdc(root, CONFIGS["default"], tmp / "prepared", split, progress=False)
    return tmp / "prepared"


def test_report_command_runs_on_a_tiny_set(tiny_dataset, tmp_path):
    out = tmp_path / "report"
    report = evaluate.run(["real", "nearest-train", "group-mean"], "val", out, str(tiny_dataset), command="test")
    for name in ("report.json", "report.md", "adherence.png", "curves.png", "nearest_neighbour.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "report.json").read_text())
    assert [g["generator"] for g in saved["generators"]] == ["real-val", "nearest-train", "group-mean"]
    real, nearest = saved["generators"][0], saved["generators"][1]
    assert real["nearest_train_rmse"]["median"] == pytest.approx(report["real_nearest_train_rmse_median"])
    assert real["frechet_to_train"]["value"] == pytest.approx(saved["frechet_floor_real_heldout_to_train"]["value"])
    assert nearest["nearest_train_rmse"]["median"] == pytest.approx(0, abs=1e-6)  # copies are flagged
    assert nearest["nearest_train_rmse"]["share_closer_than_real_p05"] == 1.0
    assert "LVEDV" in real["adherence"] and "Fréchet" in (out / "report.md").read_text()
    # realism: the automated Turing test beside its real-vs-real control, and the anatomy checks
    checks = ("lv_found", "lv_ringed", "rv_where_expected", "all")
    control = saved["turing_control_real_train_vs_heldout"]
    assert {"cnn", "features", "max_auc", "n_first", "n_second", "n_groups", "folds"} <= set(control)
    assert 0 <= control["cnn"]["auc"] <= 1 and control["n_first"] == control["n_second"] == saved["n_heldout"]
    assert set(saved["anatomy_real_heldout"]) == set(checks)
    assert "skipped" in real["turing"]  # the held-out cines are not compared with themselves
    assert real["anatomy"]["all"]["share"] == pytest.approx(saved["anatomy_real_heldout"]["all"]["share"])
    for generator in saved["generators"][1:]:
        assert 0 <= generator["turing"]["max_auc"] <= 1 and len(generator["turing"]["features"]["ci95"]) == 2
        for name in checks:
            assert 0 <= generator["anatomy"][name]["share"] <= 1 and len(generator["anatomy"][name]["ci95"]) == 2
    text = (out / "report.md").read_text()
    assert text.index("Realism: automated Turing test") < text.index("Fréchet")
    assert "control: real train vs real val" in text and "LV ringed by MYO" in text


def test_generators_follow_the_contract(tiny_dataset):
    dataset = load_prepared(tiny_dataset)
    real = RealCines(dataset, "val")
    conditions = real.conditions()
    cines = real.generate(conditions)
    assert len(cines) == len(conditions) and cines[0].source.startswith("real:")
    copies = NearestTrainingCine(dataset.split("train")).generate(conditions)
    assert all(c.source.startswith("synthetic:nearest-train") for c in copies)
    means = GroupMeanCine(dataset.split("train")).generate(conditions)
    assert means[0].frames.shape == (16, 64, 64) and 0 <= means[0].frames.min() <= means[0].frames.max() <= 1
    with pytest.raises(ValueError, match="No conditions"):
        check_conditions(conditions.iloc[:0])
    with pytest.raises(ValueError, match="lack columns: LVEDV"):
        check_conditions(conditions.drop(columns=["LVEDV"]))
    broken = conditions.copy()
    broken.loc[0, "LVEF"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        check_conditions(broken)


@pytest.mark.parametrize("name", ["vae-recon", "recon"])
def test_reconstructions_keep_the_real_cines_layout(tiny_dataset, name):
    """``vae-recon`` (3D-VAE) and ``recon`` (anatomy + motion): each real held-out cine through the bundled
    representation, same order, shape, mask and position, and close to the original (a ceiling that
    returned other cines would be meaningless)."""
    dataset = load_prepared(tiny_dataset)
    real = RealCines(dataset, "val")
    conditions = real.conditions().iloc[::-1].reset_index(drop=True)  # order must follow the requests
    originals = real.generate(conditions)
    recon = build_generator(name, dataset, "val")
    assert recon.name == f"{name}-val"
    cines = recon.generate(conditions)
    assert len(cines) == len(originals)
    for original, rebuilt in zip(originals, cines):
        assert rebuilt.frames.shape == original.frames.shape and rebuilt.source == f"{name}:{original.source}"
        assert rebuilt.slice_position == original.slice_position and np.array_equal(rebuilt.valid, original.valid)
        error = np.abs(rebuilt.frames - original.frames)[:, original.valid].mean()
        spread = np.abs(original.frames[:, original.valid] - original.frames.mean()).mean()
        assert error < 0.4 * spread  # measured 0.26 of the spread on these fixture cines


def test_seed_reaches_every_request(tiny_dataset, tmp_path, monkeypatch):
    """``--seed`` sets the generation seed of every request (to see how far a figure moves with the draw alone)."""
    seen = []

    class Spy(RealCines):
        name = "spy"

        def generate(self, conditions):
            seen.append(conditions["seed"].tolist())
            return super().generate(conditions)

    monkeypatch.setattr(evaluate, "build_generator", lambda name, dataset, split, **options: Spy(dataset, split))
    for seed in (0, 7):
        report = evaluate.run(["spy"], "val", tmp_path / str(seed), str(tiny_dataset), seed=seed)
        assert report["seed"] == seed
    assert seen[0] == [0] * len(seen[0]) and seen[1] == [7] * len(seen[1]) and len(seen[1]) > 1
    evaluate.main(["--generator", "spy", "--split", "val", "--dataset", str(tiny_dataset), "--seed", "3",
                   "--out", str(tmp_path / "cli"), "--no-c2st"])
    assert seen[2] == [3] * len(seen[2])
    saved = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert saved["seed"] == 3 and saved["generators"][0]["turing"] == {"skipped": "--no-c2st"}
    assert saved["turing_control_real_train_vs_heldout"] is None and "all" in saved["generators"][0]["anatomy"]


def test_sampler_settings_reach_the_pipeline_and_name_the_row():
    from cardiosynth.pipelines.generators import SampledPipeline, Sampler

    class FakePipe:
        def generate(self, conditions, **settings):
            self.settings = settings
            return []

    pipe = FakePipe()
    sampled = SampledPipeline(pipe, "cpgg", Sampler(steps=16, temperature=0.5))
    sampled.generate(None)
    assert pipe.settings == {"steps": 16, "temperature": 0.5}
    assert sampled.name == "cpgg@steps=16,temperature=0.5"
    assert SampledPipeline(pipe, "cpgg").name == "cpgg" and Sampler().given() == {}
