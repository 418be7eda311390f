"""Patient-level train / val / test split, stratified by diagnostic group, under a fixed seed.

The split is committed (``acdc_split.csv`` beside this module) so every model selects on the same
validation patients and reports on the same test patients. Within each group, patients with and without
a cine are spread evenly over the three parts (ACDC: 17 per group -> 12 / 3 / 2 or 12 / 2 / 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPLIT_FILE = Path(__file__).with_name("acdc_split.csv")
SPLITS = ("train", "val", "test")
DEFAULT_SEED = 20250917


def make_split(patients: pd.DataFrame, seed: int = DEFAULT_SEED, val: float = 0.15, test: float = 0.15) -> pd.DataFrame:
    """Assign each patient (columns ``patient``, ``group``, optional ``has_cine``) to train/val/test.

    Per group, patients are shuffled within their has_cine stratum and interleaved so both strata are
    spread proportionally; the first ``val`` share goes to val, the next ``test`` share to test. Which of
    val/test gets the rounding remainder alternates between groups so the totals stay near 15 / 15 %.
    """
    rng = np.random.default_rng(seed)
    has_cine = patients["has_cine"] if "has_cine" in patients else pd.Series(1, index=patients.index)
    rows = []
    for k, (group, members) in enumerate(sorted(patients.groupby("group"), key=lambda item: item[0])):
        ordered = []
        for _, stratum in sorted(members.groupby(has_cine.loc[members.index]), key=lambda item: -item[0]):
            names = list(stratum["patient"].sort_values())
            rng.shuffle(names)
            # position in (0, 1): evenly spread members of each stratum over the group's ordering
            ordered += [((i + 0.5) / len(names), name) for i, name in enumerate(names)]
        ordered = [name for _, name in sorted(ordered)]
        n_held = round((val + test) * len(ordered))
        n_val = int(np.ceil(n_held / 2)) if k % 2 == 0 else n_held // 2
        for i, name in enumerate(ordered):
            split = "val" if i < n_val else "test" if i < n_held else "train"
            rows.append({"patient": name, "group": group, "split": split})
    return pd.DataFrame(rows).sort_values("patient").reset_index(drop=True)


def load_split(path: str | Path = SPLIT_FILE) -> dict[str, str]:
    """``{patient: split}`` from a split file."""
    table = pd.read_csv(path)
    unknown = set(table["split"]) - set(SPLITS)
    if unknown:
        raise ValueError(f"Split file {path} has unknown split names: {sorted(unknown)}")
    return dict(zip(table["patient"], table["split"]))
