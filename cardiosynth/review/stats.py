"""Statistics of a real-vs-synthetic reader study, per reader and pooled.

- Accuracy with an exact two-sided binomial test against 0.5 (chance) and a Clopper-Pearson 95 % interval.
  The pooled test treats every answer as independent; readers and cases are not, so the pooled accuracy also
  gets a two-way bootstrap interval that resamples readers and cases (the one to quote).
- "Synthetic" is the positive class: sensitivity = synthetic cases called synthetic, specificity = real cases
  called real (exact intervals).
- ROC AUC from a 10-point rating: "synthetic, confidence c" -> 5 + c, "real, confidence c" -> 6 - c (1 = sure
  it is real ... 10 = sure it is synthetic), with a bootstrap interval over cases (per reader) or over readers
  and cases (pooled). AUC 0.5 = readers cannot tell; the synthetic cines pass.
- Agreement: Fleiss' kappa over the readers who answered every case, with a case-bootstrap interval.
- Time per case: seconds from the first showing of a case to its answer (median and quartiles; a reader who
  leaves in the middle of a case adds the break to that case, which the median shrugs off).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

N_SCORES = 10


def rating_score(answer, confidence) -> np.ndarray:
    """1 (sure real) .. 10 (sure synthetic)."""
    answer, confidence = np.asarray(answer), np.asarray(confidence, dtype=int)
    return np.where(answer == "synthetic", 5 + confidence, 6 - confidence)


def _number(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def proportion(k: int, n: int) -> dict:
    """k of n with an exact (Clopper-Pearson) 95 % interval and the two-sided binomial test against 0.5."""
    if n == 0:
        return {"k": 0, "n": 0, "value": None, "ci95": [None, None], "p_value": None}
    test = stats.binomtest(int(k), int(n), 0.5, alternative="two-sided")
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    return {"k": int(k), "n": int(n), "value": k / n, "ci95": [float(ci.low), float(ci.high)],
            "p_value": float(test.pvalue)}


def auc(truth, score) -> float | None:
    """ROC AUC of ``score`` for "synthetic" (None when only one kind of case was answered)."""
    y = np.asarray(truth) == "synthetic"
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC for many weightings at once (rows of ``weights``); scores are integers 1..10, so the AUC is a sum
    over the two weighted score histograms (ties count one half), as roc_auc_score with sample_weight."""
    onehot = np.eye(N_SCORES)[np.asarray(score, int) - 1]
    pos = weights @ (onehot * positive[:, None])
    neg = weights @ (onehot * ~positive[:, None])
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((pos * below).sum(1) + 0.5 * (pos * neg).sum(1)) / (pos.sum(1) * neg.sum(1))


def bootstrap_weights(readers: np.ndarray, cases: np.ndarray, n_boot: int, seed: int,
                      resample_readers: bool = True) -> np.ndarray:
    """(n_boot, n_answers) multiplicities of each answer when readers and cases are drawn with replacement."""
    rng = np.random.default_rng(seed)
    reader_codes, reader_index = np.unique(readers, return_inverse=True)
    case_codes, case_index = np.unique(cases, return_inverse=True)
    case_counts = rng.multinomial(len(case_codes), np.full(len(case_codes), 1 / len(case_codes)), size=n_boot)
    weights = case_counts[:, case_index].astype(float)
    if resample_readers:
        reader_counts = rng.multinomial(len(reader_codes), np.full(len(reader_codes), 1 / len(reader_codes)),
                                        size=n_boot)
        weights *= reader_counts[:, reader_index]
    return weights


def _percentile_ci(values: np.ndarray) -> list:
    values = values[np.isfinite(values)]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if len(values) else [None, None]


def _times(seconds) -> dict:
    seconds = pd.to_numeric(pd.Series(seconds), errors="coerce").dropna().to_numpy(float)
    if not len(seconds):
        return {"median": None, "q25": None, "q75": None, "n": 0}
    q25, median, q75 = np.percentile(seconds, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "n": int(len(seconds))}


def summarise_answers(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0, resample_readers: bool = True) -> dict:
    """Accuracy, sensitivity, specificity, AUC (+ bootstrap interval) and time of one set of answers."""
    truth, answer = table["truth"].to_numpy(), table["answer"].to_numpy()
    correct = truth == answer
    synthetic, real = truth == "synthetic", truth == "real"
    score = rating_score(answer, table["confidence"])
    out = {
        "n_answers": int(len(table)),
        "accuracy": proportion(correct.sum(), len(table)),
        "sensitivity": proportion((answer[synthetic] == "synthetic").sum(), synthetic.sum()),
        "specificity": proportion((answer[real] == "real").sum(), real.sum()),
        "confusion": {"synthetic_called_synthetic": int((answer[synthetic] == "synthetic").sum()),
                      "synthetic_called_real": int((answer[synthetic] == "real").sum()),
                      "real_called_real": int((answer[real] == "real").sum()),
                      "real_called_synthetic": int((answer[real] == "synthetic").sum())},
        "auc": {"value": auc(truth, score), "ci95": [None, None]},
        "seconds_per_case": _times(table["seconds"]),
    }
    for key in ("sensitivity", "specificity"):  # the binomial test against 0.5 is about accuracy only
        out[key].pop("p_value")
    if len(table) and n_boot > 0:
        weights = bootstrap_weights(table["reader_id"].to_numpy(), table["case_id"].to_numpy(), n_boot, seed,
                                    resample_readers)
        if out["auc"]["value"] is not None:
            out["auc"]["ci95"] = _percentile_ci(weighted_auc(synthetic, score, weights))
        if resample_readers:
            out["accuracy"]["ci95_bootstrap"] = _percentile_ci((weights @ correct) / weights.sum(1))
    return out


def agreement(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Fleiss' kappa over the readers who answered every case of the study (answered by anyone)."""
    grid = table.pivot(index="case_id", columns="reader_id", values="answer")
    complete = grid.loc[:, grid.notna().all(axis=0)]
    out = {"fleiss_kappa": None, "ci95": [None, None], "n_readers": int(complete.shape[1]),
           "n_cases": int(complete.shape[0]), "readers": "those who answered every case"}
    if complete.shape[1] < 2:
        return {**out, "note": "Agreement needs at least two readers who answered every case."}
    counts, _ = aggregate_raters((complete.to_numpy() == "synthetic").astype(int), n_cat=2)
    if (counts.sum(0) == 0).any():  # everybody gave one and the same answer to every case: kappa undefined
        return {**out, "note": "Every answer was the same, so agreement beyond chance is undefined."}
    out["fleiss_kappa"] = float(fleiss_kappa(counts, method="fleiss"))
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            sample = counts[rng.integers(0, len(counts), len(counts))]
            draws.append(fleiss_kappa(sample, method="fleiss") if (sample.sum(0) > 0).all() else np.nan)
        out["ci95"] = _percentile_ci(np.asarray(draws, float))
    return out


def study_statistics(table: pd.DataFrame, n_cases: int, n_boot: int = 1000, seed: int = 0) -> dict:
    """Everything the results page shows, from the answers table (one row per answer: reader_id, reader,
    case_id, truth, answer, confidence, seconds) and the number of cases in the study."""
    readers = []
    for reader_id, rows in table.groupby("reader_id", sort=False):
        summary = summarise_answers(rows, n_boot, seed, resample_readers=False)
        readers.append({"reader": str(rows["reader"].iloc[0]), "reader_id": reader_id,
                        "finished": bool(len(rows) >= n_cases), **summary})
    pooled = summarise_answers(table, n_boot, seed) if len(table) else None
    return {
        "n_cases": int(n_cases),
        "n_readers": len(readers),
        "n_readers_finished": sum(r["finished"] for r in readers),
        "n_answers": int(len(table)),
        "pooled": pooled,
        "readers": readers,
        "agreement": agreement(table, n_boot, seed) if len(table) else None,
        "notes": ["The pooled binomial p-value treats all answers as independent; quote the bootstrap interval "
                  "(readers and cases resampled) for the pooled accuracy.",
                  "AUC 0.5 means readers could not tell real from synthetic."],
    }


def json_safe(value):
    """NaN/inf -> None, numpy scalars -> Python, recursively (for JSON and the app)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
