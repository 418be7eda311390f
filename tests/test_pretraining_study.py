"""The pretraining study: folds that cannot leak, the MAE and its fine-tuning, a tiny run end to end, resuming."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.data.prepare import PrepareConfig
from cardiosynth.data.splits import load_split
from cardiosynth.models.cine_vit import CineDiagnosisModel, CineMAE, CineViTConfig
from evaluation.pretraining import report, study
from evaluation.pretraining.folds import Fold, FoldError, check_folds, generator_training_subjects, make_folds
from evaluation.pretraining.synthetic import SyntheticPool
from evaluation.pretraining.train import GROUPS, TARGETS, StudyConfig, pretrain

TINY = CineViTConfig(frames=4, size=16, patch=8, width=16, depth=1, heads=2, decoder_width=16, decoder_depth=1)
TINY_STUDY = StudyConfig(model=TINY, pretrain_steps=3, pretrain_batch=4, finetune_steps=3, finetune_batch=4)


def patients_table(per_group_held: int = 4, per_group_train: int = 3) -> pd.DataFrame:
    rows = []
    for group in GROUPS:
        for i in range(per_group_held + per_group_train):
            rows.append({"subject": f"{group}{i:02d}", "group": group,
                         "split": ("val" if i % 2 else "test") if i < per_group_held else "train"})
    return pd.DataFrame(rows)


def test_every_held_out_patient_tests_in_exactly_one_fold_and_never_fine_tunes_there():
    table = patients_table()
    folds = make_folds(table, n_folds=5, seed=3)
    held = set(table.loc[table.split != "train", "subject"])
    tested = [name for fold in folds for name in fold.test]
    assert sorted(tested) == sorted(held) and len(tested) == len(set(tested))
    for fold in folds:
        assert not set(fold.test) & set(fold.finetune)
        assert set(fold.finetune) == set(table.subject) - set(fold.test)
        assert len({name.rstrip("0123456789") for name in fold.test}) == 4  # 20 patients, 4 per fold: 4 groups
    assert make_folds(table, 5, seed=3) == folds and make_folds(table, 5, seed=4) != folds
    check_folds(folds)


def test_a_plan_that_leaks_a_test_patient_is_refused():
    table = patients_table()
    folds = make_folds(table, 5)
    with pytest.raises(FoldError, match="test patient of folds"):
        check_folds([folds[0], Fold(1, folds[0].test[:1] + folds[1].test, folds[1].finetune)])
    with pytest.raises(FoldError, match="fine-tunes on its own test patients"):
        check_folds([Fold(0, folds[0].test, folds[0].finetune + folds[0].test[:1])])
    with pytest.raises(FoldError, match="the generator trained on: " + folds[2].test[0]):
        check_folds(folds, frozenset({folds[2].test[0]}))
    with pytest.raises(FoldError, match="cannot make 5 test folds"):
        make_folds(table[table.split == "train"].head(3).assign(split="val"), 5)


def test_the_bundled_generators_trained_on_no_patient_the_study_tests_on():
    split = load_split()
    held = {name for name, part in split.items() if part in ("val", "test")}
    trained = generator_training_subjects("cpgg")
    assert trained and not trained & held and generator_training_subjects("ecg") == trained
    assert generator_training_subjects("none") == frozenset()


def test_plan_study_checks_the_folds_against_the_generator(monkeypatch):
    dataset = tiny_dataset()
    monkeypatch.setattr(study, "generator_training_subjects", lambda generator: frozenset(dataset.table.subject))
    with pytest.raises(FoldError, match="generator trained on"):
        study.plan_study(dataset, "cpgg", [0, 1], 5, 1, TINY_STUDY)


def test_mae_and_diagnosis_model_take_cines_and_refuse_other_shapes():
    torch.manual_seed(0)
    mae, model = CineMAE(TINY), CineDiagnosisModel(TINY)
    cines = torch.rand(3, 4, 16, 16)
    loss = mae(cines, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    logits, values = model(cines, torch.rand(3))
    assert logits.shape == (3, 5) and values.shape == (3, 5)
    with pytest.raises(ValueError, match=r"expected cines \(B, 4, 16, 16\)"):
        model(torch.rand(3, 5, 16, 16), torch.rand(3))


def test_pretraining_learns_and_is_seeded():
    cines = np.random.default_rng(0).random((8, 4, 16, 16), dtype=np.float32)
    config = StudyConfig(model=TINY, pretrain_steps=10, pretrain_batch=8, pretrain_lr=3e-3)
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(CineMAE(TINY)(torch.from_numpy(cines), torch.Generator().manual_seed(1)))
    (encoder, loss), (again, _) = pretrain(cines, config, seed=0), pretrain(cines, config, seed=0)
    assert 0 < loss < 10
    assert all(torch.equal(encoder[k], again[k]) for k in encoder)
    assert not all(torch.equal(encoder[k], v) for k, v in pretrain(cines, config, seed=1)[0].items())
    torch.manual_seed(0)
    model = CineMAE(TINY)
    optimiser = torch.optim.AdamW(model.parameters(), 3e-3)
    data = torch.from_numpy(cines)
    for _ in range(60):
        loss = model(data, torch.Generator().manual_seed(1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(model(data, torch.Generator().manual_seed(1)))
    assert after < 0.8 * before


def tiny_dataset(per_group_held: int = 4, per_group_train: int = 3, slices: int = 2) -> PreparedDataset:
    """Slice cines whose brightness and a bright square's size depend on the diagnosis and LVEDV."""
    rng = np.random.default_rng(0)
    rows, cines = [], []
    for _, patient in patients_table(per_group_held, per_group_train).iterrows():
        k = GROUPS.index(patient.group)
        values = {t: float(v) for t, v in zip(TARGETS, rng.normal([150, 55, 110, 150, 50], [40, 10, 30, 40, 10]))}
        for s in range(slices):
            cine = rng.integers(0, 60, (4, 16, 16)).astype(np.uint8)
            cine[:, 4:4 + 2 + k, 4:4 + 2 + k] = 200
            cines.append(cine)
            rows.append({"subject": patient.subject, "group": patient.group, "split": patient.split, "slice": s,
                         "slice_position": s / max(1, slices - 1), **values})
    n = len(rows)
    zeros = np.zeros((n, 16, 16), np.uint8)
    return PreparedDataset(np.stack(cines), zeros.astype(bool), zeros, zeros, zeros, pd.DataFrame(rows),
                           PrepareConfig(name="tiny", frames=4, size=16))


def fake_pool(n: int) -> SyntheticPool:
    rng = np.random.default_rng(1)
    conditions = pd.DataFrame({t: rng.normal(100, 10, n) for t in ("LVEDV", "LVESV", "LVSV", "LVEF", "LVM", "RVEDV",
                                                                    "RVESV", "RVSV", "RVEF")})
    conditions["slice_position"] = rng.uniform(0, 1, n)
    return SyntheticPool(rng.random((n, 4, 16, 16), dtype=np.float32), conditions, "cpgg", "f" * 64)


def test_a_tiny_study_writes_the_table_and_resumes_from_its_cache(tmp_path, monkeypatch):
    dataset = tiny_dataset()
    plan = study.plan_study(dataset, "cpgg", [1, 0], 5, 1, TINY_STUDY, seed=0)
    assert plan.rows == ["none", "mix 0", "mix 1", "mix* 1"]
    n_train = int((dataset.table.split == "train").sum())
    with pytest.raises(ValueError, match="needs"):
        study.run_study(plan, dataset, fake_pool(n_train - 1), tmp_path, progress=False, log=lambda _: None)
    pool, losses = fake_pool(n_train), {}
    results = study.run_study(plan, dataset, pool, tmp_path, progress=False, log=lambda _: None,
                              pretraining_loss=losses)
    assert set(losses) == {"mix 0", "mix 1"}
    held = set(dataset.table.loc[dataset.table.split != "train", "subject"])
    assert set(results) == set(plan.rows) and all(set(r) == held for r in results.values())
    first = next(iter(results["mix 1"].values()))
    assert len(first["probs"]) == 5 and abs(sum(first["probs"]) - 1) < 1e-4 and len(first["phenotypes"]) == 5

    summary = report.summarise(results, study.truth(dataset), study.target_scaler(dataset)[1])
    assert "against_real_only" not in summary["mix 0"]
    tests = summary["mix 1"]["against_real_only"]
    assert 0 <= tests["AUC folds"]["p_paired_t"] <= 1 and 0 <= tests["zMAE patients"]["p_wilcoxon"] <= 1
    table = report.markdown_tables(summary)
    for row in plan.rows:
        assert f"| {row} |" in table
    report.plot(summary, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000

    def no_training(*args, **kwargs):
        raise AssertionError("a cached result was computed again")
    monkeypatch.setattr(study, "pretrain", no_training)
    monkeypatch.setattr(study, "finetune", no_training)
    cached_losses = {}
    assert study.run_study(plan, dataset, pool, tmp_path, progress=False, log=lambda _: None,
                           pretraining_loss=cached_losses) == results
    assert cached_losses == losses
    changed = study.plan_study(dataset, "cpgg", [0, 1], 5, 1, StudyConfig(model=TINY, pretrain_steps=4), seed=0)
    with pytest.raises(AssertionError, match="computed again"):  # other settings: not served from the cache
        study.run_study(changed, dataset, pool, tmp_path, progress=False, log=lambda _: None)


def test_macro_auc_skips_classes_a_fold_cannot_score():
    labels = np.array([0, 0, 1, 2])
    probs = np.eye(5)[[0, 0, 1, 2]] * 0.9 + 0.02
    assert report.macro_auc(labels, probs) == 1.0
    assert np.isnan(report.macro_auc(np.array([1, 1]), probs[:2]))


def test_the_command_runs_the_real_only_rows_on_the_prepared_data(prepared_default, tmp_path, monkeypatch):
    from evaluation.pretraining import __main__ as command

    monkeypatch.setattr(command, "load_or_prepare", lambda name: prepared_default)
    record = command.main(["--generator", "none", "--pretrain-steps", "2", "--finetune-steps", "2", "--threads", "1",
                           "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert record["rows"] == ["none", "mix 0"] and record["generator_sha256"] is None
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["summary"]["mix 0"]["n_patients"] == 20 and len(saved["design"]["folds"]) == 5
    tested = [s for f in saved["design"]["folds"] for s in f["test"]]
    assert len(tested) == len(set(tested)) == 20
    assert "| mix 0 |" in (tmp_path / "out" / "report.md").read_text()
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == 40


def test_the_rank_auc_agrees_with_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positive = rng.random(40) < 0.3
    score = np.round(rng.random(40) + positive * 0.3, 1)  # with ties
    assert report.binary_auc(positive, score) == pytest.approx(roc_auc_score(positive, score))


@pytest.mark.parametrize("generator, n", [("cpgg", 2), ("ecg", 1)])
def test_the_pool_is_made_by_the_bundled_generator_then_read_back_from_its_cache(generator, n, acdc_root, ecg_root,
                                                                                  tmp_path, one_thread):
    from evaluation.pretraining.synthetic import synthetic_pool

    pool = synthetic_pool(generator, n, seed=0, folder=tmp_path, progress=False)
    assert pool.cines.shape == (n, 16, 64, 64) and pool.cines.dtype == np.float32
    assert 0 <= pool.cines.min() and pool.cines.max() <= 1 and pool.cines.std() > 0.05
    assert list(pool.conditions.columns[-1:]) == ["slice_position"] and len(pool.conditions) == n
    assert len(pool.sha) == 64
    again = synthetic_pool(generator, n, seed=0, folder=tmp_path, progress=False)
    assert np.array_equal(again.cines, pool.cines)
