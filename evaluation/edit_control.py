"""Does editing a real heart's LVEF move what is measured on it? Each held-out cine edited to two LVEFs.

    python -m evaluation.edit_control --split val --low 30 --high 60 --out reports/mar/edit_val.json

For every real held-out cine: ``PhenotypeToCine.edit`` with its own LVEDV, LVM and RVEDV (the anatomy kept)
and LVEF = ``low``, then = ``high`` (same seed). The bundled measurer reads LVEF back from the real cine and
from both edits. Reported: mean read-back at each target with a patient-bootstrap 95 % CI, the mean change
(high - low) against the change asked for, the share of cines whose read-back rises, and the real cines'
own read-back error (the instrument's floor). Prints the JSON and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cardiosynth.data.dataset import load_prepared
from cardiosynth.measure import metrics
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.pipelines import PhenotypeToCine


def mean_ci(values: np.ndarray, groups: np.ndarray) -> dict:
    """Mean of finite ``values`` with a patient-bootstrap 95 % CI (a value the measurer could not read is left out)."""
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    low, high = metrics.bootstrap_ci(lambda i: float(values[i].mean()), len(values), groups)
    return {"mean": round(float(values.mean()), 2), "ci95": [round(low, 2), round(high, 2)], "n": int(keep.sum())}


def run(split: str = "val", low: float = 30.0, high: float = 60.0, seed: int = 0, dataset_name: str = "default",
        command: str = "", motion: str = "own") -> dict:
    if not 0 < low < high < 100:
        raise ValueError(f"need 0 < low < high < 100 (LVEF %), got {low}, {high}")
    heldout = load_prepared(dataset_name).split(split)
    pipe, measurer = PhenotypeToCine.from_pretrained(), CineMeasurer()
    real = [heldout.cine(i) for i in range(len(heldout))]
    table = heldout.table.reset_index(drop=True)
    edited = {target: [pipe.edit(cine, {"LVEF": target}, phenotypes=row.to_dict(), seed=seed,
                                 motion=motion).cines[0]
                       for cine, (_, row) in zip(real, table.iterrows())] for target in (low, high)}
    read = {name: measurer.measure(cines)[0]["est_LVEF"].to_numpy(float)
            for name, cines in (("real", real), ("low", edited[low]), ("high", edited[high]))}
    groups = table["subject"].to_numpy()
    change = read["high"] - read["low"]
    report = {
        "command": command, "split": split, "n": len(real), "seed": seed, "motion": motion,
        "asked": {"low": low, "high": high},
        "read_back_mean": {name: mean_ci(values, groups) for name, values in read.items()},
        "change_read_vs_asked": {"asked": high - low, "read": mean_ci(change, groups)},
        "share_rising": round(float((change[np.isfinite(change)] > 0).mean()), 3),
        "real_read_back_mae_vs_truth": round(float(np.nanmean(np.abs(read["real"] - table["LVEF"].to_numpy(float)))), 2),
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--low", type=float, default=30.0)
    parser.add_argument("--high", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--motion", choices=["own", "mar"], default="own",
                        help="the heart's own registered motion scaled (default) or the MAR's draw")
    args = parser.parse_args(argv)
    command = "python -m evaluation.edit_control " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run(args.split, args.low, args.high, args.seed, command=command, motion=args.motion)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
