"""Scores, paired tests, the table and the plot of a pretraining study.

Per fold (mean ± SD over folds, as the papers report): accuracy, macro one-vs-rest ROC AUC over the classes
that have both a positive and a negative patient in the fold, and the MAE of each phenotype. Pooled over all
held-out patients (out-of-fold predictions): the same with a patient-bootstrap 95 % CI, and R².

Each row is compared with real-only pretraining (``mix 0``) on the same patients and folds: a paired t-test over
the folds (the papers' unit), and a Wilcoxon signed-rank test over patients (more of them: the probability given
to the true diagnosis; the mean absolute error in train-SD units over the phenotypes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from sklearn.metrics import r2_score

from cardiosynth.measure.metrics import bootstrap_ci
from evaluation.pretraining.study import REFERENCE_ROW
from evaluation.pretraining.train import GROUPS, TARGETS


def patient_frame(results: dict[str, dict], truth: pd.DataFrame) -> pd.DataFrame:
    """One row per test patient of one study row: fold, true group index, probabilities, predicted and true values."""
    rows = []
    for subject, r in sorted(results.items()):
        row = {"subject": subject, "fold": r["fold"], "label": GROUPS.index(truth.loc[subject, "group"])}
        row.update({f"p_{g}": p for g, p in zip(GROUPS, r["probs"])})
        row.update({f"pred_{t}": v for t, v in zip(TARGETS, r["phenotypes"])})
        row.update({f"true_{t}": float(truth.loc[subject, t]) for t in TARGETS})
        rows.append(row)
    return pd.DataFrame(rows)


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half); the bootstrap calls it thousands of times."""
    ranks = stats.rankdata(score)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes with at least one positive and one negative patient."""
    aucs = [binary_auc(labels == c, probs[:, c]) for c in range(probs.shape[1])
            if 0 < (labels == c).sum() < len(labels)]
    return float(np.mean(aucs)) if aucs else float("nan")


def scores(frame: pd.DataFrame) -> dict[str, float]:
    probs = frame[[f"p_{g}" for g in GROUPS]].to_numpy()
    labels = frame["label"].to_numpy()
    out = {"ACC": float((probs.argmax(1) == labels).mean()), "AUC": macro_auc(labels, probs)}
    for t in TARGETS:
        out[f"{t} MAE"] = float(np.abs(frame[f"pred_{t}"] - frame[f"true_{t}"]).mean())
    return out


def standardised_errors(frame: pd.DataFrame, scaler_sd: np.ndarray) -> np.ndarray:
    """Per patient: mean over phenotypes of |error| / train SD."""
    errors = [np.abs(frame[f"pred_{t}"] - frame[f"true_{t}"]).to_numpy() / sd for t, sd in zip(TARGETS, scaler_sd)]
    return np.mean(errors, axis=0)


def true_class_probability(frame: pd.DataFrame) -> np.ndarray:
    probs = frame[[f"p_{g}" for g in GROUPS]].to_numpy()
    return probs[np.arange(len(frame)), frame["label"].to_numpy()]


def fold_scores(frame: pd.DataFrame, scaler_sd: np.ndarray) -> pd.DataFrame:
    """Every metric of each fold's test patients (index: fold, in order): what the folds' mean ± SD and the
    paired t-tests are computed from."""
    return pd.DataFrame.from_dict({fold: {**scores(f), "zMAE": float(standardised_errors(f, scaler_sd).mean())}
                                   for fold, f in frame.groupby("fold")}, orient="index")


def row_summary(frame: pd.DataFrame, scaler_sd: np.ndarray, seed: int = 0) -> dict:
    per_fold = fold_scores(frame, scaler_sd)
    pooled = {**scores(frame), "zMAE": float(standardised_errors(frame, scaler_sd).mean())}
    probs, labels = frame[[f"p_{g}" for g in GROUPS]].to_numpy(), frame["label"].to_numpy()
    pooled_ci = {"AUC": bootstrap_ci(lambda i: macro_auc(labels[i], probs[i]), len(frame), seed=seed),
                 "ACC": bootstrap_ci(lambda i: float((probs[i].argmax(1) == labels[i]).mean()), len(frame), seed=seed)}
    r2 = {t: float(r2_score(frame[f"true_{t}"], frame[f"pred_{t}"])) for t in TARGETS}
    return {"n_patients": len(frame), "n_folds": int(frame["fold"].nunique()),
            "folds_mean": per_fold.mean().round(4).to_dict(), "folds_sd": per_fold.std(ddof=1).round(4).to_dict(),
            "pooled": {k: round(v, 4) for k, v in pooled.items()},
            "pooled_ci95": {k: [round(a, 4), round(b, 4)] for k, (a, b) in pooled_ci.items()},
            "pooled_r2": {t: round(v, 4) for t, v in r2.items()}}


def paired_tests(frame: pd.DataFrame, reference: pd.DataFrame, scaler_sd: np.ndarray) -> dict:
    """This row against real-only on the same patients: fold-level paired t-tests, patient-level Wilcoxon."""
    frame, reference = frame.set_index("subject"), reference.set_index("subject").loc[frame["subject"]]
    mine_folds, ref_folds = fold_scores(frame, scaler_sd), fold_scores(reference, scaler_sd)
    out = {}
    for metric in ("AUC", "ACC", "zMAE"):
        mine, ref = mine_folds[metric].to_numpy(float), ref_folds[metric].to_numpy(float)
        ok = np.isfinite(mine) & np.isfinite(ref)
        difference = float(np.mean(mine[ok] - ref[ok]))
        p = float(stats.ttest_rel(mine[ok], ref[ok]).pvalue) if ok.sum() > 1 and np.any(mine[ok] != ref[ok]) else 1.0
        out[f"{metric} folds"] = {"mean_difference": round(difference, 4), "p_paired_t": round(p, 4)}
    for name, values in (("true-class probability", true_class_probability),
                         ("zMAE", lambda f: standardised_errors(f, scaler_sd))):
        mine, ref = values(frame.reset_index()), values(reference.reset_index())
        p = float(stats.wilcoxon(mine, ref).pvalue) if np.any(mine != ref) else 1.0
        out[f"{name} patients"] = {"mean_difference": round(float(np.mean(mine - ref)), 4), "p_wilcoxon": round(p, 4)}
    return out


def summarise(results: dict[str, dict[str, dict]], truth: pd.DataFrame, scaler_sd: np.ndarray, seed: int = 0) -> dict:
    frames = {row: patient_frame(r, truth) for row, r in results.items()}
    summary = {row: row_summary(frame, scaler_sd, seed) for row, frame in frames.items()}
    if REFERENCE_ROW in frames:
        for row, frame in frames.items():
            if row != REFERENCE_ROW:
                summary[row]["against_real_only"] = paired_tests(frame, frames[REFERENCE_ROW], scaler_sd)
    return summary


def _pm(summary: dict, metric: str, digits: int) -> str:
    return f"{summary['folds_mean'][metric]:.{digits}f} ± {summary['folds_sd'][metric]:.{digits}f}"


def markdown_tables(summary: dict) -> str:
    head = ("| row | ACC | AUC | AUC pooled [95 % CI] | Δ AUC vs real-only (p, folds) "
            "| p(true) Δ (p, patients) |\n|---|---|---|---|---|---|\n")
    lines = []
    for row, s in summary.items():
        test = s.get("against_real_only", {})
        auc = test.get("AUC folds"), test.get("true-class probability patients")
        lines.append(f"| {row} | {_pm(s, 'ACC', 2)} | {_pm(s, 'AUC', 3)} | {s['pooled']['AUC']:.3f} "
                     f"[{s['pooled_ci95']['AUC'][0]:.2f}, {s['pooled_ci95']['AUC'][1]:.2f}] | "
                     + (f"{auc[0]['mean_difference']:+.3f} (p {auc[0]['p_paired_t']:.2f})" if auc[0] else "–") + " | "
                     + (f"{auc[1]['mean_difference']:+.3f} (p {auc[1]['p_wilcoxon']:.2f})" if auc[1] else "–") + " |")
    diagnosis = head + "\n".join(lines)
    head = ("| row | " + " | ".join(f"{t} MAE" for t in TARGETS) + " | mean R² (pooled) | Δ zMAE vs real-only "
            "(p folds / p patients) |\n|" + "---|" * (len(TARGETS) + 3) + "\n")
    lines = []
    for row, s in summary.items():
        test = s.get("against_real_only", {})
        z = test.get("zMAE folds"), test.get("zMAE patients")
        r2 = np.mean(list(s["pooled_r2"].values()))
        lines.append(f"| {row} | " + " | ".join(_pm(s, f"{t} MAE", 1) for t in TARGETS) + f" | {r2:.2f} | "
                     + (f"{z[0]['mean_difference']:+.3f} (p {z[0]['p_paired_t']:.2f} / {z[1]['p_wilcoxon']:.2f})"
                        if z[0] else "–") + " |")
    return diagnosis + "\n\n" + head + "\n".join(lines) + "\n"


def plot(summary: dict, path) -> None:
    """AUC and standardised phenotype MAE against the mix ratio (mean ± SD over folds); none and mix* as markers."""
    mixes = sorted(int(r.split()[1]) for r in summary if r.startswith("mix "))
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "AUC", "diagnosis ROC AUC (macro)"),
                              (axes[1], "zMAE", "phenotype MAE / train SD (mean of 5)")):
        means = [summary[f"mix {k}"]["folds_mean"][metric] for k in mixes]
        sds = [summary[f"mix {k}"]["folds_sd"][metric] for k in mixes]
        ax.errorbar([100 * k for k in mixes], means, yerr=sds, marker="o", capsize=3, label="MAE-pretrained, mix")
        if "none" in summary:
            ax.axhline(summary["none"]["folds_mean"][metric], color="grey", ls="--", label="no pretraining")
        for row in (r for r in summary if r.startswith("mix*")):
            k = int(row.split()[1])
            ax.errorbar([100 * k], [summary[row]["folds_mean"][metric]], yerr=[summary[row]["folds_sd"][metric]],
                        marker="s", color="C3", capsize=3, ls="none", label=f"{row} (labelled)")
        ax.set_xlabel("synthetic cines, % of the real pretraining set")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
