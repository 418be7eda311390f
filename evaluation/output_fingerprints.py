"""Fingerprints of what the pipelines make for a fixed set of requests: run it before and after a change that
should not change any output (a refactor) and compare the two JSON files; every fingerprint must match.

    python -m evaluation.output_fingerprints --out /tmp/before.json      # on the old commit
    python -m evaluation.output_fingerprints --out /tmp/after.json --compare /tmp/before.json

Each request's fingerprint is the sha256 of its cines' frames (float32 bytes) and, apart, of its conditions as
CSV (floats to 6 significant digits), so both the pixels and what the result says made them are covered. The
requests use only the pipelines' public calls, so the command runs on older commits too. CPU only: bit-identity
is a property of one machine's CPU build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiosynth.pipelines.ecg_to_cine import EcgToCine
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
from cardiosynth.pipelines.real_cine import prepare_real_slice, read_cine_file

ROOT = Path(__file__).resolve().parents[1]
ECG_EXAMPLE = ROOT / "assets" / "ecg" / "Example_aECG.xml"
REAL_HEART = ("patient002", 4)  # an ACDC cine (../shared/data) and the slice an edit starts from


def digest(cines, conditions) -> dict:
    """sha256 of the frames and, apart, of the conditions: a change in what a result says made it (a recorded
    setting) is told from a change in its pixels."""
    frames = hashlib.sha256()
    for cine in cines:
        frames.update(np.ascontiguousarray(cine.frames, dtype=np.float32).tobytes())
    table = conditions if isinstance(conditions, pd.DataFrame) else pd.DataFrame([conditions])
    said = hashlib.sha256(table.to_csv(index=False, float_format="%.6g").encode())
    return {"frames": frames.hexdigest(), "conditions": said.hexdigest()}


def phenotype_requests(pipe) -> dict:
    table = pd.DataFrame([{"LVEDV": 120, "LVEF": 62, "LVM": 100, "slice_position": 0.3},
                          {"LVEDV": 210, "LVEF": 35, "LVM": 150, "slice_position": 0.6},
                          {"LVEDV": 95, "LVEF": 70, "LVM": 80, "slice_position": 0.5}])
    requests = {
        "one set, two cines": lambda: pipe({"LVEDV": 150, "LVEF": 55}, n=2, seed=3),
        "a table of three sets": lambda: pipe(table, seed=7),
        "UK Biobank columns": lambda: pipe({"24100-2.0": 160, "24103-2.0": 50}, seed=11),
        "motion drawn by the MAR": lambda: pipe({"LVEDV": 140, "LVEF": 45}, seed=1, motion="mar", steps=4, cfg=2.0),
        "privacy filter": lambda: pipe({"LVEDV": 170, "LVEF": 60}, seed=5, privacy_filter=True),
        "clamped": lambda: pipe({"LVEDV": 10, "LVEF": 55}, seed=2, clamp=True),
    }
    return {name: digest(out.cines, out.conditions) for name, out in ((k, make()) for k, make in requests.items())}


def edit_requests(pipe, data: Path) -> dict:
    patient, slice_index = REAL_HEART
    cine = prepare_real_slice(read_cine_file(data / "acdc" / patient / f"{patient}_4d.nii.gz"), slice_index)
    known = {"LVEDV": 160.0, "LVEF": 30.0, "LVM": 140.0, "RVEDV": 150.0}
    out = {}
    for motion in ("own", "mar"):
        result = pipe.edit(cine, {"LVEF": 50}, phenotypes=known, seed=4, motion=motion, steps=4)
        out[f"edit, {motion} motion"] = digest(result.cines, result.conditions)
    return out


def ecg_requests(pipe) -> dict:
    heart = {"LVEDV": 150, "LVEF": 55, "LVM": 110, "RVEDV": 150}
    out = {}
    for motion in ("exemplar", "flow"):
        result = pipe(ECG_EXAMPLE, seed=3, phenotypes=heart, motion=motion)
        conditions = {k: v for k, v in result.conditions.items() if k not in ("note", "anatomy")}
        out[f"ECG, {motion} motion"] = digest([result.cine], {**conditions, **result.cycle})
    return out


def fingerprints(data: Path) -> dict:
    torch.set_num_threads(1)  # one thread: no reduction-order differences between runs
    rendered = PhenotypeToCine.from_pretrained(device="cpu")
    out = phenotype_requests(rendered)
    decoded = PhenotypeToCine.from_pretrained(device="cpu", decoded=True)
    published = decoded({"LVEDV": 150, "LVEF": 55}, seed=0, steps=4)
    out["decoded (published path)"] = digest(published.cines, published.conditions)
    if (data / "acdc").is_dir():
        out.update(edit_requests(rendered, data))
    out.update(ecg_requests(EcgToCine.from_pretrained(device="cpu")))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the fingerprints (JSON)")
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON: exit 1 unless every fingerprint matches")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    found = fingerprints(args.data)
    args.out.write_text(json.dumps(found, indent=2) + "\n")
    if args.compare is None:
        print(json.dumps(found, indent=2))
        return 0
    before = json.loads(args.compare.read_text())
    report = {name: {part: ("same" if before.get(name, {}).get(part) == value else
                            "DIFFERENT" if name in before else "new") for part, value in parts.items()}
              for name, parts in found.items()}
    print(json.dumps(report, indent=2))
    same = all(v == "same" for parts in report.values() for v in parts.values())
    return 0 if same and set(before) <= set(found) else 1


if __name__ == "__main__":
    sys.exit(main())
