"""How far the "Edit a real heart" read-backs go wrong on basal and apical slices, against mid-ventricular ones.

    python -m evaluation.edit_read_backs --split val test --out reports/edit_read_backs

Every slice of every held-out patient's real 4D NIfTI is read as the editor reads an upload
(``prepare_real_slice``: slice position = its place in the file's stack, 0 = base, 1 = apex) and measured by the
bundled measurer; its read LVEF is compared with the patient's true LVEF (ACDC phenotypes.csv). Slices are
grouped by :func:`cardiosynth.app.heart_edit.slice_region` (the few slices the editor refuses, no heart found, are
listed and left out). Reported per region: slices, patients, the share the
app shows as "-" (LV lost in some frame, or EF outside 0-100 %), the LVEF mean absolute error and mean signed
error of the others with a patient-bootstrap 95 % CI, and the share whose independent ESV estimate exceeds the
EDV estimate (what the editor showed before it derived ESV from EDV and EF). Also, on readable slices, the
LVESV error of the independent estimate against the one derived from the read EDV and EF.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cardiosynth.app.heart_edit import (
    APICAL_START,
    BASAL_END,
    consistent_read,
    slice_region,
)
from cardiosynth.data.splits import load_split
from cardiosynth.measure import metrics
from cardiosynth.measure.curves import unreadable_reason
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.paths import require_dataset
from cardiosynth.pipelines.real_cine import RealCineError, prepare_real_slice, read_cine_file


def read_slices(root: Path, patients: list[str], measurer: CineMeasurer, refused: list[str]) -> pd.DataFrame:
    """One row per slice the editor accepts (the slices it refuses are appended to ``refused``)."""
    truth = pd.read_csv(root / "phenotypes.csv").set_index("patient")
    rows = []
    for patient in patients:
        volume = read_cine_file(root / patient / f"{patient}_4d.nii.gz")
        for z in range(volume.n_slices):
            try:
                cine = prepare_real_slice(volume, z, segmenter=measurer.segmenter)
            except RealCineError:  # the editor refuses the slice with a message: no read-back to judge
                refused.append(f"{patient}#slice{z}")
                continue
            table, curves = measurer.measure([cine])
            read = table.iloc[0]
            derived = consistent_read(read)
            rows.append({"patient": patient, "slice": z, "slice_position": cine.slice_position,
                         "region": slice_region(cine.slice_position),
                         "readable": unreadable_reason("est_LVEF", read["est_LVEF"], curves[0].lv_area_mm2) is None,
                         "est_LVEF": read["est_LVEF"], "est_LVEDV": read["est_LVEDV"], "est_LVESV": read["est_LVESV"],
                         "derived_LVESV": derived["LVESV"], "LVEF": truth.loc[patient, "LVEF_pct"],
                         "LVESV": truth.loc[patient, "LVESV_ml"]})
    return pd.DataFrame(rows)


def mean_ci(values: np.ndarray, groups: np.ndarray) -> dict:
    if len(values) == 0:
        return {"mean": None, "ci95": None}
    low, high = metrics.bootstrap_ci(lambda i: float(values[i].mean()), len(values), groups)
    return {"mean": round(float(values.mean()), 2), "ci95": [round(low, 2), round(high, 2)]}


def summarise(slices: pd.DataFrame) -> dict:
    out = {}
    for region in ("basal", "mid", "apical"):
        part = slices[slices["region"] == region]
        ok = part[part["readable"]]
        groups = ok["patient"].to_numpy()
        error = (ok["est_LVEF"] - ok["LVEF"]).to_numpy(float)
        out[region] = {
            "slices": len(part), "patients": int(part["patient"].nunique()),
            "shown_as_dash": round(float((~part["readable"]).mean()), 3) if len(part) else None,
            "LVEF_mae": mean_ci(np.abs(error), groups), "LVEF_bias": mean_ci(error, groups),
            "esv_above_edv_independent": round(float((part["est_LVESV"] > part["est_LVEDV"]).mean()), 3)
            if len(part) else None,
            "LVESV_mae_independent": mean_ci(np.abs(ok["est_LVESV"] - ok["LVESV"]).to_numpy(float), groups),
            "LVESV_mae_derived": mean_ci(np.abs(ok["derived_LVESV"] - ok["LVESV"]).to_numpy(float), groups),
        }
    return out


def run(splits: list[str], command: str = "") -> tuple[dict, pd.DataFrame]:
    root = require_dataset("acdc")
    split = load_split()
    measurer = CineMeasurer()
    patients = sorted(p for p, s in split.items() if s in splits and (root / p / f"{p}_4d.nii.gz").is_file())
    refused: list[str] = []
    slices = read_slices(root, patients, measurer, refused)
    report = {"command": command, "splits": splits, "patients": len(patients), "refused_by_the_editor": refused,
              "regions": {"basal": f"position < {BASAL_END}", "mid": f"{BASAL_END}-{APICAL_START}",
                          "apical": f"position > {APICAL_START}"},
              "by_region": summarise(slices)}
    return report, slices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", nargs="+", default=["val"], choices=["train", "val", "test"])
    parser.add_argument("--out", default="reports/edit_read_backs")
    args = parser.parse_args()
    report, slices = run(args.split, "python -m evaluation.edit_read_backs " + " ".join(sys.argv[1:]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "_".join(args.split)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    slices.to_csv(out / f"{name}_slices.csv", index=False, float_format="%.3f")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
