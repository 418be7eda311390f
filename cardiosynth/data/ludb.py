"""LUDB as training data for the ECG models: the record table with diagnosis families, a committed split, and
one cached array file of standardised signals with their neurokit2 phase.

The split (``ludb_split.csv`` beside this module, 70 / 15 / 15 % stratified by family and rhythm, fixed seed)
holds records out of the ECG MAE's training (val selects, test reports) and keeps held-out ECGs out of the
pseudo-pairs the ECG -> cine flow trains on.

Diagnosis families are the pools the pseudo-pairing draws from (``cardiosynth.data.pairing``); a record may sit
in several. Paced records are in none (pacing spikes and paced QRS say nothing about a native heart).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardiosynth.ecg import process_ecg, read_ecg
from cardiosynth.paths import cache_dir, require_dataset

SPLIT_FILE = Path(__file__).with_name("ludb_split.csv")
SPLIT_SEED = 20261129

#: LUDB header labels (case-insensitive substrings) that put a record in each family.
FAMILY_LABELS: dict[str, tuple[str, ...]] = {
    "infarction": ("stemi", "scar formation", "ischemia"),  # incl. "Undefined ischemia/scar/supp.NSTEMI"
    "hypertrophy": ("left ventricular hypertrophy", "left ventricular overload"),
    "conduction": ("left bundle branch block", "left anterior hemiblock", "i degree av block",
                   "intravintricular conduction delay"),
    "right_heart": ("right ventricular hypertrophy", "right atrial overload", "right atrial hypertrophy",
                    "right bundle branch block"),
}
#: Rhythms that also count as "conduction" (the rhythm column, not the diagnoses).
CONDUCTION_RHYTHMS = ("atrial fibrillation", "atrial flutter")
#: Labels a "normal" record may still carry: none of the families above and no left atrial enlargement.
NOT_NORMAL_EXTRA = ("left atrial hypertrophy", "left atrial overload")
FAMILIES = ("normal", *FAMILY_LABELS)


def families_of(diagnoses: str, rhythm: str, paced: bool) -> list[str]:
    """The families of one record from its header labels (see :data:`FAMILY_LABELS`)."""
    if paced:
        return []
    labels = [label.strip().lower() for label in str(diagnoses or "").split(";") if label.strip()]
    found = [family for family, keys in FAMILY_LABELS.items() if any(k in label for label in labels for k in keys)]
    if any(r in str(rhythm).lower() for r in CONDUCTION_RHYTHMS) and "conduction" not in found:
        found.append("conduction")
    if not found and not any(k in label for label in labels for k in NOT_NORMAL_EXTRA):
        found.append("normal")
    return found


def make_split(table: pd.DataFrame, seed: int = SPLIT_SEED, val: float = 0.15, test: float = 0.15) -> pd.DataFrame:
    """``record, split``: within each stratum (first family or "paced", and sinus vs other rhythm) records are
    shuffled and dealt so val and test each get about their share."""
    rng = np.random.default_rng(seed)
    strata = table.apply(lambda r: (r["families"][0] if r["families"] else "paced_or_other",
                                    "sinus" in str(r["rhythm"]).lower()), axis=1)
    rows, carry = [], 0.0
    for _, members in sorted(table.groupby(strata), key=lambda item: str(item[0])):
        records = sorted(members["record"].tolist())
        rng.shuffle(records)
        for i, record in enumerate(records):
            position = (i + 0.5) / len(records) + carry  # spread each stratum over the three parts
            position %= 1.0
            rows.append((record, "val" if position < val else "test" if position < val + test else "train"))
        carry = (carry + 0.37) % 1.0  # rotate where small strata start, so rounding does not favour one part
    return pd.DataFrame(rows, columns=["record", "split"]).sort_values("record").reset_index(drop=True)


def load_table(folder: str | Path | None = None) -> pd.DataFrame:
    """``records.csv`` with ``families`` (list), ``family_text`` and ``split`` (from the committed file)."""
    folder = Path(folder) if folder else require_dataset("ecg") / "ludb"
    table = pd.read_csv(folder / "records.csv")
    table["families"] = [families_of(d, r, bool(p)) for d, r, p in zip(table["diagnoses"], table["rhythm"],
                                                                        table["paced"])]
    table["family_text"] = [";".join(f) for f in table["families"]]
    split = pd.read_csv(SPLIT_FILE) if SPLIT_FILE.is_file() else make_split(table)
    table = table.merge(split, on="record", how="left")
    table["split"] = table["split"].fillna("train")  # a record added later trains; never silently held out
    table["path"] = [str(folder / f"{r}.hea") for r in table["record"]]
    return table


@dataclass
class LudbArrays:
    """Aligned with ``table`` row by row: raw standardised signals (12, 5000, not normalised: the model does
    that at its input), neurokit2 phase (radians) with its valid mask, and per-record timing."""

    table: pd.DataFrame
    signals: np.ndarray  # (N, 12, 5000) float32
    phase: np.ndarray  # (N, 5000) float32, NaN where unknown
    phase_valid: np.ndarray  # (N, 5000) bool
    valid_samples: np.ndarray  # (N,) int

    def __len__(self) -> int:
        return len(self.table)

    def split(self, name: str) -> "LudbArrays":
        idx = np.flatnonzero(self.table["split"].to_numpy() == name)
        return LudbArrays(self.table.iloc[idx].reset_index(drop=True), self.signals[idx], self.phase[idx],
                          self.phase_valid[idx], self.valid_samples[idx])


def timing_columns(analysis) -> dict[str, float]:
    """neurokit2's timing of one ECG as the table's columns (NaN where it could not be measured)."""
    def value(x):
        return float("nan") if x is None else float(x)
    return {"qt_rr": value(analysis.qt_rr), "qt_s": value(analysis.qt_s), "rr_s": value(analysis.rr_median_s),
            "heart_rate_bpm": value(analysis.heart_rate_bpm), "n_r_peaks": len(analysis.r_peaks)}


def load_arrays(folder: str | Path | None = None, progress: bool = True) -> LudbArrays:
    """Read and process every record once (neurokit2, ~0.1 s each) and cache the arrays under the cache dir."""
    table = load_table(folder)
    path = cache_dir() / "ecg" / f"ludb_{len(table)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as a:
            if list(a["records"]) == table["record"].tolist():
                extra = pd.DataFrame({k: a[k] for k in ("qt_rr", "qt_s", "rr_s", "heart_rate_bpm", "n_r_peaks")})
                return LudbArrays(pd.concat([table, extra], axis=1), a["signals"], a["phase"], a["phase_valid"],
                                  a["valid_samples"])
    from tqdm import tqdm

    signals, phases, valids, n_valid, timing = [], [], [], [], []
    for file in tqdm(table["path"], desc="LUDB", unit="record", disable=not progress):
        ecg = read_ecg(file)
        analysis = process_ecg(ecg)
        signals.append(ecg.signal.astype(np.float32))
        phases.append(analysis.phase.astype(np.float32))
        valids.append(analysis.phase_valid)
        n_valid.append(ecg.valid_samples)
        timing.append(timing_columns(analysis))
    extra = pd.DataFrame(timing)
    arrays = {"records": table["record"].to_numpy(), "signals": np.stack(signals), "phase": np.stack(phases),
              "phase_valid": np.stack(valids), "valid_samples": np.asarray(n_valid),
              **{k: extra[k].to_numpy() for k in extra}}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), **arrays)
    path.with_suffix(".tmp.npz").replace(path)
    return LudbArrays(pd.concat([table, extra], axis=1), arrays["signals"], arrays["phase"], arrays["phase_valid"],
                      arrays["valid_samples"])


def main() -> None:
    """``python -m cardiosynth.data.ludb --write-split``: (re)write the committed split file."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--write-split", action="store_true")
    args = parser.parse_args()
    table = load_table()
    if args.write_split:
        make_split(table).to_csv(SPLIT_FILE, index=False)
        table = load_table()
    summary = {family: {s: int(sum(family in f for f, sp in zip(table["families"], table["split"]) if sp == s))
                        for s in ("train", "val", "test")} for family in FAMILIES}
    summary["paced (no family)"] = {s: int(((table["paced"] == 1) & (table["split"] == s)).sum())
                                    for s in ("train", "val", "test")}
    print(pd.DataFrame(summary).T.to_string())


if __name__ == "__main__":
    main()
