"""Evaluate any generator (conditions in -> cines out) and write a report: JSON + Markdown + PNG plots.

    python -m cardiosynth.measure.evaluate --generator real --generator nearest-train --generator group-mean \
        --split val --out reports/ceiling

For every generator: control adherence (requested vs measured phenotypes: Pearson r, MAE, subject-level
bootstrap 95 % CIs; no best-of-N), realism (Fréchet distance to the real training cines in the cine
encoder's feature space, beside the real-val floor), diversity and memorisation (each cine's RMSE to its
nearest training cine, beside real held-out cines' own distances). ``real`` on held-out cines gives the
ceilings (``vae-recon``: the same cines through the 3D-VAE, the ceiling of a latent generator);
``nearest-train`` and ``group-mean`` are the trivial generators a model must beat.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cardiosynth import phenotypes as ph  # noqa: E402
from cardiosynth.data.dataset import PreparedDataset, load_prepared  # noqa: E402
from cardiosynth.measure import metrics  # noqa: E402
from cardiosynth.measure.generators import Generator, RealCines, build_generator, check_conditions  # noqa: E402
from cardiosynth.measure.measurer import CineMeasurer, stack_frames  # noqa: E402
from cardiosynth.models.cine_encoder import CineEncoder, encode_cines, load_cine_encoder  # noqa: E402

HEADLINE = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVEF")


@dataclass
class Reference:
    """The real data every generator is compared with, computed once per evaluation run."""

    train: PreparedDataset
    heldout: PreparedDataset
    encoder: CineEncoder
    train_frames: np.ndarray = field(init=False)
    train_features: np.ndarray = field(init=False)
    heldout_features: np.ndarray = field(init=False)
    heldout_nn_rmse: np.ndarray = field(init=False)

    def __post_init__(self):
        self.train_frames = self.train.cines.astype(np.float32) / 255.0
        heldout_frames = self.heldout.cines.astype(np.float32) / 255.0
        self.train_features = encode_cines(self.encoder, self.train_frames)
        self.heldout_features = encode_cines(self.encoder, heldout_frames)
        self.heldout_nn_rmse, _ = metrics.nearest_neighbour_rmse(heldout_frames, self.train_frames)

    @property
    def floor(self) -> dict:
        return metrics.frechet_with_ci(self.heldout_features, self.train_features)


def evaluate_generator(generator: Generator, conditions: pd.DataFrame, reference: Reference,
                       measurer: CineMeasurer) -> dict:
    """Every number of the report for one generator, plus the arrays the plots need."""
    check_conditions(conditions)
    started = time.perf_counter()
    cines = generator.generate(conditions)
    seconds = time.perf_counter() - started
    if len(cines) != len(conditions):
        raise ValueError(f"{generator.name} returned {len(cines)} cines for {len(conditions)} requests")
    frames = stack_frames(cines)
    measured, curves = measurer.measure(cines)
    groups = conditions["subject"].to_numpy() if "subject" in conditions else None
    adherence = {name: metrics.adherence(conditions[name].to_numpy(float), measured[f"est_{name}"].to_numpy(),
                                         groups=groups) for name in ph.NAMES if f"est_{name}" in measured}
    features = encode_cines(reference.encoder, frames)
    nn_rmse, nn_index = metrics.nearest_neighbour_rmse(frames, reference.train_frames)
    copy_threshold = float(np.percentile(reference.heldout_nn_rmse, 5))
    return {
        "generator": generator.name,
        "n": len(cines),
        "seconds_total_including_io": round(seconds, 2),
        "adherence": adherence,
        "frechet_to_train": metrics.frechet_with_ci(features, reference.train_features),
        "diversity_mean_pairwise_feature_distance": metrics.mean_pairwise_distance(features),
        "nearest_train_rmse": {
            "median": float(np.median(nn_rmse)),
            "p05": float(np.percentile(nn_rmse, 5)),
            "share_closer_than_real_p05": float(np.mean(nn_rmse < copy_threshold)),
        },
        "_arrays": {"requested": conditions, "measured": measured, "curves": curves, "nn_rmse": nn_rmse,
                    "frames": frames},
    }


# -------------------------------------------------------------------------------------------- report
def plot_adherence(results: list[dict], path: Path) -> None:
    names = [n for n in HEADLINE if n in results[0]["adherence"]]
    fig, axes = plt.subplots(len(results), len(names), figsize=(2.3 * len(names), 2.3 * len(results)), squeeze=False)
    for row, result in enumerate(results):
        requested, measured = result["_arrays"]["requested"], result["_arrays"]["measured"]
        for col, name in enumerate(names):
            ax = axes[row, col]
            x, y = requested[name].to_numpy(float), measured[f"est_{name}"].to_numpy(float)
            ax.scatter(x, y, s=6, alpha=0.6)
            low, high = np.nanmin([x.min(), y.min()]), np.nanmax([x.max(), y.max()])
            ax.plot([low, high], [low, high], "k--", lw=0.7)
            a = result["adherence"][name]
            ax.set_title(f"{result['generator']}: {name}\nr={a['pearson_r']:.2f} MAE={a['mae']:.1f}", fontsize=7)
            ax.tick_params(labelsize=6)
            if row == len(results) - 1:
                ax.set_xlabel(f"requested {ph.BY_NAME[name].unit}", fontsize=7)
            if col == 0:
                ax.set_ylabel("measured", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(results: list[dict], path: Path, n: int = 12) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 2.6), squeeze=False)
    for ax, result in zip(axes[0], results):
        curves = result["_arrays"]["curves"]
        for i in np.unique(np.linspace(0, len(curves) - 1, n).round().astype(int)):  # spread over subjects
            curve = curves[i]
            lv = curve.lv_area_mm2
            ax.plot(lv / max(lv.max(), 1e-6), color="tab:red", alpha=0.5, lw=0.8)
            rv = curve.rv_area_mm2
            if rv.max() > 0:
                ax.plot(rv / rv.max(), color="tab:blue", alpha=0.4, lw=0.8)
        ax.set_title(f"{result['generator']}: LV (red) / RV (blue) area", fontsize=8)
        ax.set_xlabel("frame", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_nearest(results: list[dict], reference: Reference, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 3))
    bins = np.linspace(0, max(r["_arrays"]["nn_rmse"].max() for r in results) * 1.05, 30)
    ax.hist(reference.heldout_nn_rmse, bins=bins, alpha=0.5, label="real held-out -> train", density=True, color="k")
    for result in results:
        ax.hist(result["_arrays"]["nn_rmse"], bins=bins, histtype="step", lw=1.2, density=True,
                label=f"{result['generator']} -> train")
    ax.set_xlabel("RMSE to nearest training cine", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(report: dict) -> str:
    lines = [f"# Evaluation report ({report['split']} conditions)", "",
             f"Command: `{report['command']}`", "",
             f"Reference: {report['n_train']} real training cines; {report['n_heldout']} real {report['split']} cines. "
             "Bootstrap 95 % intervals resample subjects.", "",
             "## Realism, diversity, memorisation", "",
             "| generator | n | Fréchet to train [95 % CI] | ratio to real floor | diversity | NN-RMSE median | share closer than real p05 |",
             "|---|---|---|---|---|---|---|"]
    floor = report["frechet_floor_real_heldout_to_train"]
    lines.append(f"| real {report['split']} (floor) | {report['n_heldout']} | {floor['value']:.2f} "
                 f"[{floor['ci95'][0]:.2f}, {floor['ci95'][1]:.2f}] | 1.00 | {report['real_diversity']:.2f} | "
                 f"{report['real_nearest_train_rmse_median']:.3f} | 0.05 |")
    for r in report["generators"]:
        fd, nn = r["frechet_to_train"], r["nearest_train_rmse"]
        lines.append(f"| {r['generator']} | {r['n']} | {fd['value']:.2f} [{fd['ci95'][0]:.2f}, {fd['ci95'][1]:.2f}] | "
                     f"{fd['value'] / floor['value']:.2f} | {r['diversity_mean_pairwise_feature_distance']:.2f} | "
                     f"{nn['median']:.3f} | {nn['share_closer_than_real_p05']:.2f} |")
    lines += ["", "## Control adherence (requested vs measured)", "",
              "| generator | phenotype | Pearson r [95 % CI] | MAE [95 % CI] | bias |", "|---|---|---|---|---|"]
    for r in report["generators"]:
        for name, a in r["adherence"].items():
            unit = ph.BY_NAME[name].unit
            lines.append(f"| {r['generator']} | {name} | {a['pearson_r']:.2f} [{a['pearson_r_ci95'][0]:.2f}, "
                         f"{a['pearson_r_ci95'][1]:.2f}] | {a['mae']:.1f} {unit} [{a['mae_ci95'][0]:.1f}, "
                         f"{a['mae_ci95'][1]:.1f}] | {a['bias']:+.1f} |")
    lines += ["", "![adherence](adherence.png)", "", "![curves](curves.png)", "", "![nearest](nearest_neighbour.png)", ""]
    return "\n".join(lines)


def run(generator_names: list[str], split: str, out: Path, dataset_name: str = "default", command: str = "",
        seed: int = 0) -> dict:
    """``seed``: the generation seed of every request, to see how far a figure moves with the draw alone."""
    dataset = load_prepared(dataset_name)
    reference = Reference(dataset.split("train"), dataset.split(split), load_cine_encoder())
    measurer = CineMeasurer()
    conditions = RealCines(dataset, split).conditions().assign(seed=int(seed))
    results = [evaluate_generator(build_generator(name, dataset, split), conditions, reference, measurer)
               for name in generator_names]
    real_features = reference.heldout_features
    report = {
        "command": command, "split": split, "dataset": dataset_name, "seed": int(seed),
        "n_train": len(reference.train), "n_heldout": len(reference.heldout),
        "frechet_floor_real_heldout_to_train": reference.floor,
        "real_diversity": metrics.mean_pairwise_distance(real_features),
        "real_nearest_train_rmse_median": float(np.median(reference.heldout_nn_rmse)),
        "generators": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot_adherence(results, out / "adherence.png")
    plot_curves(results, out / "curves.png")
    plot_nearest(results, reference, out / "nearest_neighbour.png")
    return report


def main(argv: list[str] | None = None) -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", action="append",
                        help="real, vae-recon[:folder], nearest-train, group-mean, cpgg[:folder] (repeatable)")
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--out", default="reports/ceiling")
    parser.add_argument("--seed", type=int, default=0, help="generation seed of every request (default 0)")
    args = parser.parse_args(argv)
    command = "python -m cardiosynth.measure.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run(args.generator or ["real", "nearest-train", "group-mean"], args.split, Path(args.out),
                 args.dataset, command, args.seed)
    print(json.dumps({r["generator"]: {"frechet": r["frechet_to_train"]["value"],
                                       "LVEDV_r": r["adherence"].get("LVEDV", {}).get("pearson_r")}
                      for r in report["generators"]}, indent=2))


if __name__ == "__main__":
    main()
