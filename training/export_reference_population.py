"""Write the app's reference population: the real ACDC training patients' nine phenotypes, bundled and versioned.

    python -m training.export_reference_population [--acdc ../shared/data/acdc]

The phenotype explorer marks these patients under its population plot. It reads the bundled table
(``weights/phenotype_vae/reference_population.csv``, :data:`cardiosynth.weights.REFERENCE_POPULATION`), so the
app needs no training data at start-up. The table is ACDC's ``phenotypes.csv`` restricted to the committed
split's training patients (the phenotype VAE's training set), rows in the file's order, with a README
(``reference_population.md``) beside it: version, source, sha256 and licence.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import pandas as pd

from cardiosynth import phenotypes as ph
from cardiosynth.data.acdc import read_phenotype_csv
from cardiosynth.data.splits import load_split
from cardiosynth.models.cards.reference_population import model_card
from cardiosynth.paths import require_dataset
from cardiosynth.weights import REFERENCE_POPULATION

VERSION = 1  # raise when the rows or columns change (a new split, a corrected phenotypes.csv)


def reference_population(root=None) -> pd.DataFrame:
    """The training split's patients and their nine phenotypes (rows with a missing phenotype dropped)."""
    table = read_phenotype_csv(require_dataset("acdc", root))
    if table is None:
        raise FileNotFoundError("ACDC phenotypes.csv is missing")
    train = table[table["patient"].map(load_split()) == "train"]
    return train[["patient", *ph.NAMES]].dropna(subset=list(ph.NAMES)).reset_index(drop=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acdc", default=None, help="the ACDC folder (default: $CARDIOSYNTH_DATA/acdc)")
    args = parser.parse_args(argv)
    table = reference_population(args.acdc)
    table.to_csv(REFERENCE_POPULATION, index=False)
    back = pd.read_csv(REFERENCE_POPULATION)  # the app reads it so: the values must come back bit for bit
    if not np.array_equal(back[list(ph.NAMES)].to_numpy(float), table[list(ph.NAMES)].to_numpy(float)):
        raise RuntimeError(f"{REFERENCE_POPULATION} does not read back to the same values")
    sha256 = hashlib.sha256(REFERENCE_POPULATION.read_bytes()).hexdigest()
    REFERENCE_POPULATION.with_suffix(".md").write_text(model_card(len(table), sha256, VERSION))
    print(f"Wrote {REFERENCE_POPULATION} ({len(table)} patients, sha256 {sha256})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
