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

from cardiosynth import phenotypes as ph
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


def blinded_sheet(pipe: PhenotypeToCine, real, out: Path, n: int = 8, seed: int = 0) -> dict:
    """A reader-study sheet: ``n`` real held-out cines and ``n`` cines generated for their own phenotypes and slice
    positions, shuffled (seeded), each shown at ED and at the frame the measurer calls ES, numbered; the key
    (which number is which) is returned and written beside the PNG, never on it. For looking, as a reader
    would, for a giveaway (field of view, padding, texture)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(real), size=n, replace=False)
    real_cines = [real.cine(int(i)) for i in rows]
    requests = real.table.iloc[rows][[*ph.NAMES, "slice_position"]].reset_index(drop=True)
    synthetic = pipe(requests, n=1, seed=seed).cines
    cases = [(c, "real", c.source) for c in real_cines] + [(c, "synthetic", c.source) for c in synthetic]
    order = rng.permutation(len(cases))
    _, curves = CineMeasurer().measure([cases[k][0] for k in order])
    columns = 8
    fig = Figure(figsize=(1.6 * columns, 1.7 * 2 * len(order) / columns))
    axes = fig.subplots(2 * len(order) // columns, columns, squeeze=False)
    for number, (k, curve) in enumerate(zip(order, curves)):
        cine = cases[k][0]
        for half, frame in enumerate((0, int(curve.es_frame))):
            ax = axes[2 * (number // columns) + half, number % columns]
            ax.imshow(cine.frames[frame], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"case {number + 1} {'ED' if half == 0 else 'ES'}", fontsize=7)
    fig.suptitle(f"Blinded sheet: {n} real held-out + {n} synthetic cines, shuffled (seed {seed}); key in the JSON",
                 fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    key = [{"case": number + 1, "truth": cases[k][1], "source": cases[k][2]} for number, k in enumerate(order)]
    out.with_suffix(".json").write_text(json.dumps({"png": str(out), "key": key}, indent=2))
    return {"png": str(out), "key": str(out.with_suffix(".json"))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/renderer/showcase.png"))
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slice-position", type=float, default=0.5)
    parser.add_argument("--beside-real", action="store_true", help="a real held-out cine under each generated one")
    parser.add_argument("--blinded-sheet", type=Path, help="also write a shuffled real / synthetic sheet here")
    args = parser.parse_args(argv)
    real = load_prepared().split("val") if args.beside_real else None
    pipe = PhenotypeToCine.from_pretrained(args.weights)
    print(json.dumps(showcase(pipe, args.out, args.seed, args.slice_position, real=real), indent=2))
    if args.blinded_sheet:
        print(json.dumps(blinded_sheet(pipe, load_prepared().split("val"), args.blinded_sheet, seed=args.seed)))


if __name__ == "__main__":
    main()
