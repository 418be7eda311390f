"""The study's rows, fold by fold, each result cached so an interrupted run resumes where it stopped.

Rows (the papers' design, CPGG Table 2):

* ``none``: no pretraining, the ViT fine-tuned from scratch;
* ``mix 0``: MAE pretrained on the real train-split cines alone (real-only, the reference of every test);
* ``mix k``: pretrained on the real cines plus k times as many synthetic ones;
* ``mix* k``: ``mix k``'s encoder, fine-tuned with the synthetic cines added as labelled data (their requested
  phenotypes; no diagnosis, which the generators are not conditioned on).

Pretraining sees only train-split cines (real or synthetic), so one encoder serves every fold. Fine-tuning seeds
are the same across rows, fold by fold, so the rows are paired.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.export import atomic_path
from evaluation.pretraining.folds import Fold, check_folds, generator_training_subjects, make_folds
from evaluation.pretraining.synthetic import SyntheticPool
from evaluation.pretraining.train import (GROUPS, NO_GROUP, TARGETS, Labelled, StudyConfig, finetune, predict_slices,
                                          pretrain)

REFERENCE_ROW = "mix 0"


@dataclass
class StudyPlan:
    generator: str
    mixes: tuple[int, ...]
    labelled_mix: int | None
    folds: list[Fold]
    config: StudyConfig
    seed: int

    @property
    def rows(self) -> list[str]:
        rows = ["none", *(f"mix {k}" for k in self.mixes)]
        return rows + ([f"mix* {self.labelled_mix}"] if self.labelled_mix else [])

    @property
    def synthetic_ratio(self) -> int:
        return max([*self.mixes, self.labelled_mix or 0]) if self.generator != "none" else 0


def plan_study(dataset: PreparedDataset, generator: str, mixes: list[int], n_folds: int, labelled_mix: int | None,
               config: StudyConfig, seed: int = 0) -> StudyPlan:
    """Folds checked against the generator's training patients; without a generator only ``none`` and ``mix 0``."""
    if any(k < 0 for k in mixes) or (labelled_mix is not None and labelled_mix < 1):
        raise ValueError("mix ratios are 0 or more and the labelled mix 1 or more")
    if generator == "none":
        mixes, labelled_mix = [0], None
    folds = make_folds(dataset.table[["subject", "group", "split"]], n_folds, seed)
    check_folds(folds, generator_training_subjects(generator))
    return StudyPlan(generator, tuple(sorted(set([0, *mixes]))), labelled_mix, folds, config, seed)


def target_scaler(dataset: PreparedDataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of the targets over the train-split patients (one value per patient)."""
    patients = dataset.split("train").table.drop_duplicates("subject")
    values = patients[list(TARGETS)].to_numpy(np.float64)
    return values.mean(0), values.std(0)


def real_labelled(dataset: PreparedDataset, subjects, scaler) -> Labelled:
    part = dataset.subset(dataset.table["subject"].isin(set(subjects)))
    table = part.table
    mean, sd = scaler
    return Labelled(part.cines.astype(np.float32) / 255.0, table["slice_position"].to_numpy(np.float32),
                    table["group"].map({g: i for i, g in enumerate(GROUPS)}).to_numpy(np.int64),
                    ((table[list(TARGETS)].to_numpy(np.float64) - mean) / sd).astype(np.float32))


def synthetic_labelled(pool: SyntheticPool, count: int, scaler) -> Labelled:
    mean, sd = scaler
    conditions = pool.conditions.iloc[:count]
    return Labelled(pool.cines[:count], conditions["slice_position"].to_numpy(np.float32),
                    np.full(count, NO_GROUP, np.int64),
                    ((conditions[list(TARGETS)].to_numpy(np.float64) - mean) / sd).astype(np.float32))


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_study(plan: StudyPlan, dataset: PreparedDataset, pool: SyntheticPool | None, cache: Path,
              progress: bool = True, log: Callable[[str], None] = print,
              pretraining_loss: dict[str, float] | None = None) -> dict[str, dict[str, dict]]:
    """Per row, per test patient: ``{"fold", "probs" (over GROUPS), "phenotypes" (TARGETS, in their units)}``.
    ``pretraining_loss`` (a dict, when given) receives each pretraining's final MAE loss."""
    pretraining_loss = {} if pretraining_loss is None else pretraining_loss
    if plan.synthetic_ratio and pool is None:
        raise ValueError(f"rows {plan.rows} need synthetic cines from {plan.generator}")
    n_real = int((dataset.table["split"] == "train").sum())
    if pool is not None and len(pool) < plan.synthetic_ratio * n_real:
        raise ValueError(f"the synthetic pool has {len(pool)} cines; mix {plan.synthetic_ratio} needs "
                         f"{plan.synthetic_ratio * n_real}")
    scaler = target_scaler(dataset)
    real_train = dataset.split("train").cines.astype(np.float32) / 255.0
    base = [plan.config.to_dict(), plan.seed, plan.generator, pool.sha if pool is not None else None, n_real]
    encoders: dict[int, dict] = {}
    results: dict[str, dict[str, dict]] = {}

    def encoder_path(k: int) -> Path:
        return cache / "encoders" / f"{_key(*base, 'pretrain', k)}.safetensors"

    def encoder_for(k: int) -> dict:
        if k not in encoders:
            path = encoder_path(k)
            if path.is_file():
                encoders[k] = load_file(path)
            else:
                cines = real_train if k == 0 else np.concatenate([real_train, pool.cines[:k * n_real]])
                with tqdm(total=plan.config.pretrain_steps, desc=f"pretrain mix {k} ({len(cines)} cines)",
                          unit="step", disable=not progress) as bar:
                    encoders[k], loss = pretrain(cines, plan.config, plan.seed, bar.update)
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as temporary:
                    save_file(encoders[k], str(temporary), metadata={"final_loss": repr(loss)})
        return encoders[k]

    for row in plan.rows:
        results[row] = {}
        for fold in plan.folds:
            path = cache / "results" / f"{_key(*base, row, fold.test, fold.finetune)}.json"
            if path.is_file():
                results[row].update(json.loads(path.read_text()))
                continue
            data = real_labelled(dataset, fold.finetune, scaler)
            if row.startswith("mix*"):
                data = Labelled.concat([data, synthetic_labelled(pool, plan.labelled_mix * n_real, scaler)])
            encoder = None if row == "none" else encoder_for(int(row.split()[-1]))
            with tqdm(total=plan.config.finetune_steps, desc=f"{row}, fold {fold.index + 1}/{len(plan.folds)}",
                      unit="step", disable=not progress) as bar:
                model = finetune(encoder, data, plan.config, plan.seed + 1000 + fold.index, bar.update)
            fold_results = predict_patients(model, dataset, fold, scaler)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as temporary:
                temporary.write_text(json.dumps(fold_results))
            results[row].update(fold_results)
        log(f"{row}: {len(results[row])} test patients predicted")
    for k in sorted({int(row.split()[-1]) for row in plan.rows if row != "none"}):
        with safe_open(encoder_path(k), "pt") as saved:
            pretraining_loss[f"mix {k}"] = float(saved.metadata()["final_loss"])
    return results


def predict_patients(model, dataset: PreparedDataset, fold: Fold, scaler) -> dict[str, dict]:
    """A patient's prediction is the mean of its slices' (probabilities; phenotypes back in their units)."""
    test = real_labelled(dataset, fold.test, scaler)
    probs, values = predict_slices(model, test.cines, test.slice_position)
    mean, sd = scaler
    values = values * sd + mean
    subjects = dataset.table.loc[dataset.table["subject"].isin(set(fold.test)), "subject"].to_numpy()
    out = {}
    for subject in fold.test:
        rows = subjects == subject
        out[subject] = {"fold": fold.index, "probs": probs[rows].mean(0).round(6).tolist(),
                        "phenotypes": values[rows].mean(0).round(4).tolist()}
    return out


def truth(dataset: PreparedDataset) -> pd.DataFrame:
    """One row per patient: group and the target phenotypes (ground truth from the complete masks)."""
    return dataset.table.drop_duplicates("subject").set_index("subject")[["group", *TARGETS]]

