"""The README's picture: generated cines for five phenotype sets, small to large LVEDV and normal to low EF.

    python -m evaluation.showcase --out reports/renderer/showcase.png [--weights weights] [--seed 0] [--beside-real]

Each row is one cine (mid-ventricle) across the cardiac cycle (frame 0 = end-diastole); the row label gives
the requested LVEDV / LVEF beside what the measurement pipeline (segmenter + phenotype estimator) reads off
the generated cine, and the training exemplar it was rendered from. Every row uses the same seed; nothing is
picked by hand. ``--beside-real``: under each generated row, the real held-out (val) cine whose LVEDV and LVEF
are nearest to the request at a mid-ventricular slice, for a reader to compare.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cardiosynth.data.dataset import load_prepared
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
from cardiosynth.weights import WEIGHTS_DIR

# (LVEDV mL, LVEF %): the other seven phenotypes are completed by the phenotype VAE.
SETS = ((90.0, 65.0), (130.0, 60.0), (170.0, 50.0), (230.0, 35.0), (300.0, 20.0))


def nearest_real(real, lvedv: float, lvef: float, slice_position: float):
    """The held-out cine nearest to (LVEDV, LVEF) among slices within 0.2 of ``slice_position``."""
    table = real.table
    near = np.abs(table["slice_position"].to_numpy() - slice_position) <= 0.2
    distance = np.hypot((table["LVEDV"] - lvedv) / 60.0, (table["LVEF"] - lvef) / 15.0).to_numpy()
    return real.cine(int(np.argmin(np.where(near, distance, np.inf))))


def showcase(pipe: PhenotypeToCine, out: Path, seed: int = 0, slice_position: float = 0.5, columns: int = 8,
             real=None) -> dict:
    requests = pd.DataFrame({"LVEDV": [s[0] for s in SETS], "LVEF": [s[1] for s in SETS]})
    result = pipe(requests, n=1, seed=seed, slice_position=slice_position)
    measured, _ = CineMeasurer().measure(result.cines)
    n_frames = result.cines[0].n_frames
    frames = [round(k * n_frames / columns) for k in range(columns)]
    rows = []
    for row, cine in enumerate(result.cines):
        asked, got = result.conditions.iloc[row], measured.iloc[row]
        exemplar = cine.metadata.get("exemplar")
        rows.append((cine, f"asked EDV {asked.LVEDV:.0f}, EF {asked.LVEF:.0f}\nread EDV {got.est_LVEDV:.0f}, "
                           f"EF {got.est_LVEF:.0f}" + (f"\nfrom {exemplar}" if exemplar else "")))
        if real is not None:
            twin = nearest_real(real, asked.LVEDV, asked.LVEF, slice_position)
            rows.append((twin, f"REAL held-out {twin.source.split(':')[-1]}"))
    fig = Figure(figsize=(1.5 * columns + 1.8, 1.5 * len(rows)))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for row, (cine, label) in enumerate(rows):
        for col, frame in enumerate(frames):
            ax = axes[row, col]
            ax.imshow(cine.frames[frame], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {frame}" + (" (ED)" if frame == 0 else ""), fontsize=8)
        axes[row, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(f"CardioSynth phenotype -> cine (seed {seed}, slice position {slice_position})", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    table = result.conditions[["LVEDV", "LVEF"]].rename(columns=lambda c: f"asked_{c}")
    table[["read_LVEDV", "read_LVEF"]] = measured[["est_LVEDV", "est_LVEF"]].to_numpy()
    return {"png": str(out), "rows": table.round(1).to_dict(orient="records")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/renderer/showcase.png"))
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slice-position", type=float, default=0.5)
    parser.add_argument("--beside-real", action="store_true", help="a real held-out cine under each generated one")
    args = parser.parse_args(argv)
    real = load_prepared().split("val") if args.beside_real else None
    print(json.dumps(showcase(PhenotypeToCine.from_pretrained(args.weights), args.out, args.seed, args.slice_position,
                              real=real), indent=2))


if __name__ == "__main__":
    main()
