"""What the administrator takes away: a CSV of every answer (with the truth) and one figure.

Reader names and comments are typed by readers, so they are shown as plain text everywhere: in the CSV a cell
starting with = + - @ would run as a formula in a spreadsheet, so such cells get a leading apostrophe; in the
figure a name with dollar signs would be parsed as mathtext (and could fail the whole figure), so it is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from cardiosynth.export import atomic_path
from cardiosynth.review.stats import rating_score

CSV_COLUMNS = ["reader", "reader_id", "position", "case_id", "file", "truth", "answer", "confidence", "score",
               "correct", "seconds", "shown_at_utc", "answered_at_utc", "comment"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value):
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def _utc(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds, unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answers_for_export(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out["score"] = rating_score(out["answer"], out["confidence"]) if len(out) else []
    out["correct"] = out["answer"] == out["truth"]
    out["shown_at_utc"], out["answered_at_utc"] = _utc(out["shown_at"]), _utc(out["answered_at"])
    for column in ("reader", "comment"):
        out[column] = out[column].map(_safe_cell)
    return out[CSV_COLUMNS]


def write_answers_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """All answers, one row each, written atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        answers_for_export(table).to_csv(temporary, index=False)
        temporary.chmod(0o600)  # the answers beside the truth: this user only
    return path


def plot_results(table: pd.DataFrame, statistics: dict, path: str | Path) -> Path:
    """ROC curves (pooled and per reader) beside each reader's accuracy with its exact 95 % interval."""
    path = Path(path)
    fig = Figure(figsize=(11, 5))
    roc_ax, acc_ax = fig.subplots(1, 2)
    y = table["truth"].to_numpy() == "synthetic"
    score = rating_score(table["answer"], table["confidence"]) if len(table) else np.array([])
    for reader_id, rows in table.groupby("reader_id", sort=False):
        mask = (table["reader_id"] == reader_id).to_numpy()
        if 0 < y[mask].sum() < mask.sum():
            fpr, tpr, _ = roc_curve(y[mask], score[mask])
            roc_ax.plot(fpr, tpr, color="0.7", lw=0.8)
    pooled = statistics.get("pooled") or {}
    if len(table) and 0 < y.sum() < len(y):
        fpr, tpr, _ = roc_curve(y, score)
        value = pooled["auc"]["value"]
        roc_ax.plot(fpr, tpr, color="#1565c0", lw=2, label=f"all readers (AUC {value:.2f})")
    roc_ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance (cannot tell)")
    roc_ax.set(xlabel="real cases called synthetic (1 - specificity)", ylabel="synthetic cases called synthetic",
               title="ROC from confidence ratings (grey: each reader)", xlim=(0, 1), ylim=(0, 1))
    roc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)

    readers = statistics.get("readers") or []
    names = [r["reader"] for r in readers]
    values = [r["accuracy"]["value"] or 0 for r in readers]
    errors = np.array([[v - (r["accuracy"]["ci95"][0] or v), (r["accuracy"]["ci95"][1] or v) - v]
                       for v, r in zip(values, readers)]).reshape(-1, 2).T
    acc_ax.errorbar(values, np.arange(len(readers)), xerr=errors, fmt="o", color="#1565c0", capsize=3)
    if pooled:
        low, high = pooled["accuracy"].get("ci95_bootstrap", [None, None])
        if low is not None:
            acc_ax.axvspan(low, high, color="#1565c0", alpha=0.12, label="pooled 95 % (bootstrap)")
    acc_ax.axvline(0.5, color="k", ls="--", lw=0.8, label="chance")
    # names are typed by readers: plain text, never mathtext ("$\\frac{a}{$" must not break the figure)
    acc_ax.set_yticks(np.arange(len(readers)), names, fontsize=7, parse_math=False)
    acc_ax.set(xlim=(0, 1), ylim=(-0.6, len(readers) - 0.4), xlabel="accuracy (exact 95 % interval)",
               title="Accuracy per reader")
    acc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=110, format="png")
    return path
