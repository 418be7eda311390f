"""Pseudo-pairs of cines and ECGs, because no public data pairs a 12-lead ECG with the same person's cine MRI.

The rule (docs/design.md, "Honest pairing"), applied per ACDC subject (all slices of one heart share its ECGs):

1. Diagnosis family: the subject's ACDC group chooses the LUDB pool (:data:`GROUP_TO_FAMILY`; pools are defined
   by header labels in :mod:`cardiosynth.data.ludb`): NOR -> normal, MINF -> infarction / ischaemia / scar,
   HCM -> left ventricular hypertrophy, DCM -> conduction disease (LBBB, hemiblock, AV block, AF / flutter: the
   ECG patterns of dilated, low-EF hearts as far as LUDB labels allow), RV -> right-heart labels.
2. Systolic timing: within the pool, the ``per_subject`` ECGs whose QT/RR is closest to the cine's end-systolic
   fraction of the cycle (ES frame / frames; frame 0 = ED ~ R peak); ties broken by the seed.
3. Splits never mix: training subjects get training ECGs, validation subjects validation ECGs, and so on.

Such pairs can teach timing and coarse, group-linked appearance, never patient identity. A table of real
pairs (``subject, ecg_path``) goes through the same training command instead (``--pairs``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_TO_FAMILY = {"NOR": "normal", "MINF": "infarction", "HCM": "hypertrophy", "DCM": "conduction",
                   "RV": "right_heart"}
PAIR_COLUMNS = ["subject", "split", "group", "es_fraction", "ecg_record", "ecg_path", "ecg_family", "qt_rr",
                "timing_gap", "rule"]


def subjects_from_cines(cines: pd.DataFrame, frames: int) -> pd.DataFrame:
    """One row per subject of a prepared cine table: split, group and the end-systolic fraction of the cycle."""
    table = cines.groupby("subject", sort=True).agg(split=("split", "first"), group=("group", "first"),
                                                    es_frame=("es_frame_float", "median")).reset_index()
    table["es_fraction"] = table["es_frame"] / frames
    return table.drop(columns="es_frame")


def pseudo_pairs(subjects: pd.DataFrame, ecgs: pd.DataFrame, per_subject: int = 4, seed: int = 0) -> pd.DataFrame:
    """Pair each subject (``subject, split, group, es_fraction``) with ``per_subject`` ECGs of ``ecgs`` (the LUDB
    table with ``record, path, families, split, qt_rr``) by the rule in the module docstring."""
    rng = np.random.default_rng(seed)
    usable = ecgs[np.isfinite(ecgs["qt_rr"].to_numpy(float))]
    rows = []
    for subject in subjects.itertuples(index=False):
        family = GROUP_TO_FAMILY.get(subject.group)
        if family is None:
            raise ValueError(f"Subject {subject.subject} has group {subject.group!r}, which has no ECG family; "
                             f"known groups: {', '.join(GROUP_TO_FAMILY)}")
        pool = usable[(usable["split"] == subject.split) & usable["families"].map(lambda f: family in f)]
        if pool.empty:
            raise ValueError(f"No {subject.split} ECGs in the {family!r} family to pair with {subject.subject}")
        gap = np.abs(pool["qt_rr"].to_numpy(float) - subject.es_fraction)
        order = np.lexsort((rng.random(len(pool)), gap))[:per_subject]
        for i in order:
            ecg = pool.iloc[i]
            rows.append((subject.subject, subject.split, subject.group, float(subject.es_fraction), str(ecg["record"]),
                         str(ecg["path"]), family, float(ecg["qt_rr"]), float(ecg["qt_rr"] - subject.es_fraction),
                         "pseudo: family + QT/RR"))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def pairing_statistics(pairs: pd.DataFrame, ecgs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per split and group: subjects, pool size, distinct ECGs used, mean ES fraction and QT/RR, mean |gap|, and
    the correlation of cine ES fraction with paired QT/RR (what timing the pairs can teach). Given (real) pairs
    without these columns get the counts only."""
    rows = []
    keys = [k for k in ("split", "group") if k in pairs]
    for key, part in pairs.groupby(keys, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update({"subjects": part["subject"].nunique(), "ecgs_used": part["ecg_path"].nunique(), "pairs": len(part)})
        if {"ecg_family", "es_fraction", "qt_rr", "timing_gap"} <= set(part.columns):
            family = part["ecg_family"].iloc[0]
            timing = part["es_fraction"].nunique() > 1 and part["qt_rr"].nunique() > 1
            row.update({"family": family,
                        "pool": int(((ecgs["split"] == row.get("split")) & ecgs["families"].map(lambda f: family in f)).sum())
                        if ecgs is not None else np.nan,
                        "es_fraction": round(part["es_fraction"].mean(), 3), "qt_rr": round(part["qt_rr"].mean(), 3),
                        "mean_abs_gap": round(part["timing_gap"].abs().mean(), 3),
                        "r_es_qtrr": round(float(np.corrcoef(part["es_fraction"], part["qt_rr"])[0, 1]), 3)
                        if timing else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def read_pairs(path) -> pd.DataFrame:
    """A table of real (or other) pairs: at least ``subject, ecg_path``; one row per pair."""
    table = pd.read_csv(path)
    missing = {"subject", "ecg_path"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: the pairs table needs the columns subject and ecg_path; missing {sorted(missing)}")
    table["rule"] = table.get("rule", "given")
    return table
