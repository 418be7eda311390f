"""Which real patients fine-tune and which test, fold by fold, so no test patient was ever seen.

The bundled generators trained on the committed train split, so a patient they could have memorised must
never be a test patient: the test patients are the held-out ones (val + test, 20 patients with a cine here),
cut into ``n`` folds stratified by diagnosis. Each fold fine-tunes on the train split plus the other folds'
held-out patients and tests on its own. :func:`check_folds` refuses a plan in which a patient sits in two
test folds, a test patient also fine-tunes, or a generator's training set holds a test patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cardiosynth.data.splits import load_split

HELD_OUT_SPLITS = ("val", "test")


class FoldError(ValueError):
    """The fold plan would let a test patient leak into training; the message names the patients."""


@dataclass(frozen=True)
class Fold:
    index: int
    test: tuple[str, ...]
    finetune: tuple[str, ...]


def make_folds(patients: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """``patients``: one row per patient, columns ``subject``, ``group``, ``split``. Held-out patients are dealt
    to the folds group by group (shuffled within the group by ``seed``), so each fold holds a share of every
    diagnosis; train-split patients fine-tune in every fold."""
    table = patients.drop_duplicates("subject").sort_values("subject")
    held = table[table["split"].isin(HELD_OUT_SPLITS)]
    if len(held) < n_folds:
        raise FoldError(f"{len(held)} held-out patients cannot make {n_folds} test folds")
    rng = np.random.default_rng(seed)
    dealt: list[list[str]] = [[] for _ in range(n_folds)]
    position = 0
    for _, members in held.groupby("group", sort=True):
        names = members["subject"].tolist()
        rng.shuffle(names)
        for name in names:  # continue round-robin across groups: folds differ in size by at most one
            dealt[position % n_folds].append(name)
            position += 1
    train = table.loc[table["split"] == "train", "subject"].tolist()
    folds = []
    for k, test in enumerate(dealt):
        others = [name for j, names in enumerate(dealt) if j != k for name in names]
        folds.append(Fold(k, tuple(sorted(test)), tuple(sorted(train + others))))
    return folds


def generator_training_subjects(generator: str) -> frozenset[str]:
    """The ACDC patients the bundled ``generator`` trained on: the committed split's train patients (every
    training script of the generators, the phenotype VAE included, reads that split); none for ``none``."""
    if generator == "none":
        return frozenset()
    return frozenset(name for name, split in load_split().items() if split == "train")


def check_folds(folds: list[Fold], generator_subjects: frozenset[str] = frozenset()) -> None:
    """Raise :class:`FoldError` unless every test patient is in exactly one fold, never fine-tunes in its own
    fold, and was never a training patient of the generator whose cines are mixed in."""
    seen: dict[str, int] = {}
    for fold in folds:
        for name in fold.test:
            if name in seen:
                raise FoldError(f"Patient {name} is a test patient of folds {seen[name]} and {fold.index}")
            seen[name] = fold.index
        both = sorted(set(fold.test) & set(fold.finetune))
        if both:
            raise FoldError(f"Fold {fold.index} fine-tunes on its own test patients: {', '.join(both)}")
        leaked = sorted(set(fold.test) & generator_subjects)
        if leaked:
            raise FoldError(f"Fold {fold.index} tests on patients the generator trained on: {', '.join(leaked)}")
