"""Evaluate any generator (conditions in -> cines out) and write a report: JSON + Markdown + PNG plots.

    python -m evaluation.evaluate --generator real --generator nearest-train --generator group-mean \
        --split val --out reports/ceiling

Realism first, by an automated Turing test (``cardiosynth.measure.turing``): a classifier two-sample test
between the generated cines and the real held-out cines they were requested for (a small CNN trained from
scratch, and a linear classifier on the segmenter's encoder features; patient-grouped folds, out-of-fold
ROC AUC with a patient-bootstrap 95 % CI). Judge by the larger of the two AUCs: 0.5 means the classifiers
cannot tell the sets apart, 1.0 that they always can. The real-vs-real control (real training cines of
patients matched by group and slice position vs the real held-out cines) is the floor; it can read a little
below 0.5 (held-out cines pull the training means away from themselves: a small-sample cross-validation
bias). Beside it, per-frame anatomy checks on the segmenter's labels (``cardiosynth.measure.anatomy``): LV
found, LV ringed by myocardium, RV where the slice position puts it, with the real held-out shares.

Then control adherence (requested vs measured phenotypes: Pearson r, MAE, subject-level bootstrap 95 %
CIs; no best-of-N), the Fréchet distance to the real training cines in the cine encoder's feature space
beside the real-val floor (secondary: it did not separate blobs from hearts), diversity and memorisation
(each cine's RMSE to its nearest training cine, beside real held-out cines' own distances). ``real`` on
held-out cines gives the ceilings (its own C2ST is skipped: it would compare a set with itself;
``vae-recon``: the same cines through the 3D-VAE, the ceiling of a latent generator); ``nearest-train`` and
``group-mean`` are the trivial generators a model must beat. ``--no-c2st`` skips the Turing test (quick
runs; about 10 s per generator on one thread otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cardiosynth import phenotypes as ph
from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.measure import metrics, turing
from cardiosynth.measure.anatomy import CHECKS, check_anatomy, summarize_anatomy
from cardiosynth.measure.measurer import CineMeasurer, stack_frames
from cardiosynth.models.cine_encoder import CineEncoder, embed_cines
from cardiosynth.pipelines.generators import (
    KNOWN_GENERATORS,
    Generator,
    RealCines,
    Sampler,
    build_generator,
    check_conditions,
)

HEADLINE = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVEF")
TURING_SEED = 0  # the instrument's own seed (folds, CNN init, bootstrap, control draw): not the generation seed
CHECK_TITLES = {"lv_found": "LV found", "lv_ringed": "LV ringed by MYO", "rv_where_expected": "RV where expected",
                "all": "all"}


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
        self.train_features = embed_cines(self.encoder, self.train_frames)
        self.heldout_features = embed_cines(self.encoder, heldout_frames)
        self.heldout_nn_rmse, _ = metrics.nearest_neighbour_rmse(heldout_frames, self.train_frames)

    @property
    def floor(self) -> dict:
        return metrics.frechet_with_ci(self.heldout_features, self.train_features)


def too_small_for_c2st(n_cines: int, groups: np.ndarray | None) -> str | None:
    """Why a set cannot go through the Turing test (None when it can)."""
    if groups is None:
        return "the conditions carry no 'subject' column to group folds by"
    if n_cines < 4 or len(np.unique(groups)) < 2:
        return f"too few cines or patients for grouped folds ({n_cines} cines, {len(np.unique(groups))} patients)"
    return None


@dataclass
class TuringReference:
    """The real held-out cines the Turing test compares against, their anatomy shares, and the real-vs-real
    control (real training cines of matched patients vs the held-out cines), computed once per run."""

    reference: Reference
    measurer: CineMeasurer
    c2st: bool = True
    frames: np.ndarray = field(init=False)
    groups: np.ndarray = field(init=False)
    anatomy: dict = field(init=False)
    control: dict | None = field(init=False)

    def __post_init__(self):
        heldout, train = self.reference.heldout, self.reference.train
        self.frames = heldout.cines.astype(np.float32) / 255.0
        self.groups = heldout.table["subject"].to_numpy()
        labels = np.stack(self.measurer.segment([heldout.cine(i) for i in range(len(heldout))]))
        self.anatomy = summarize_anatomy(check_anatomy(labels, heldout.table["slice_position"]), self.groups,
                                         seed=TURING_SEED)
        self.control = None
        why = too_small_for_c2st(len(heldout), self.groups)
        if self.c2st and why is None:
            rows = turing.matched_control(heldout.table, train.table, seed=TURING_SEED)
            self.control = turing.classifier_two_sample_test(
                self.frames, self.reference.train_frames[rows], self.groups, self.groups,
                segmenter=self.measurer.segmenter, seed=TURING_SEED)
            self.control["train_subjects"] = sorted(set(train.table["subject"].iloc[rows]))
        elif self.c2st:
            self.control = {"skipped": why}

    def test(self, generator_name: str, frames: np.ndarray, groups: np.ndarray | None) -> dict:
        """The C2ST of generated ``frames`` (patient ids ``groups``) against the real held-out cines."""
        if not self.c2st:
            return {"skipped": "--no-c2st"}
        if generator_name.startswith("real-") or (frames.shape == self.frames.shape
                                                  and np.array_equal(frames, self.frames)):
            return {"skipped": "the real held-out cines themselves; see the real-vs-real control"}
        why = too_small_for_c2st(len(frames), groups) or too_small_for_c2st(len(self.frames), self.groups)
        if why:
            return {"skipped": why}
        return turing.classifier_two_sample_test(self.frames, frames, self.groups, groups,
                                                 segmenter=self.measurer.segmenter, seed=TURING_SEED)


def evaluate_generator(generator: Generator, conditions: pd.DataFrame, reference: Reference,
                       measurer: CineMeasurer, realism: TuringReference | None = None) -> dict:
    """Every number of the report for one generator, plus the arrays the plots need. ``realism``: the
    Turing test and the anatomy checks (skipped when None)."""
    check_conditions(conditions)
    started = time.perf_counter()
    cines = generator.generate(conditions)
    seconds = time.perf_counter() - started
    if len(cines) != len(conditions):
        raise ValueError(f"{generator.name} returned {len(cines)} cines for {len(conditions)} requests")
    frames = stack_frames(cines)
    measured, curves, labels = measurer.measure_with_labels(cines)
    groups = conditions["subject"].to_numpy() if "subject" in conditions else None
    realism_entries = {}
    if realism is not None:
        checks = check_anatomy(np.stack(labels), conditions["slice_position"].to_numpy(float))
        realism_entries = {"turing": realism.test(generator.name, frames, groups),
                           "anatomy": summarize_anatomy(checks, groups, seed=TURING_SEED)}
    adherence = {name: metrics.adherence(conditions[name].to_numpy(float), measured[f"est_{name}"].to_numpy(),
                                         groups=groups) for name in ph.NAMES if f"est_{name}" in measured}
    features = embed_cines(reference.encoder, frames)
    nn_rmse, nn_index = metrics.nearest_neighbour_rmse(frames, reference.train_frames)
    copy_threshold = float(np.percentile(reference.heldout_nn_rmse, 5))
    return {
        "generator": generator.name,
        "n": len(cines),
        "seconds_total_including_io": round(seconds, 2),
        **realism_entries,
        "adherence": adherence,
        "frechet_to_train": metrics.frechet_with_ci(features, reference.train_features),
        "diversity_mean_pairwise_feature_distance": metrics.mean_pairwise_distance(features),
        "nearest_train_rmse": {
            "median": float(np.median(nn_rmse)),
            "p05": float(np.percentile(nn_rmse, 5)),
            "share_closer_than_real_p05": float(np.mean(nn_rmse < copy_threshold)),
        },
        "_arrays": {"requested": conditions, "measured": measured, "curves": curves, "nn_rmse": nn_rmse,
                    "frames": frames, "sources": [c.source for c in cines]},
    }


# -------------------------------------------------------------------------------------------- report
def plot_adherence(results: list[dict], path: Path) -> None:
    names = [n for n in HEADLINE if n in results[0]["adherence"]]
    fig = Figure(figsize=(2.3 * len(names), 2.3 * len(results)))
    axes = fig.subplots(len(results), len(names), squeeze=False)
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


def plot_curves(results: list[dict], path: Path, n: int = 12) -> None:
    fig = Figure(figsize=(3.2 * len(results), 2.6))
    axes = fig.subplots(1, len(results), squeeze=False)
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


def plot_nearest(results: list[dict], reference: Reference, path: Path) -> None:
    fig = Figure(figsize=(4.5, 3))
    ax = fig.subplots()
    bins = np.linspace(0, max(r["_arrays"]["nn_rmse"].max() for r in results) * 1.05, 30)
    ax.hist(reference.heldout_nn_rmse, bins=bins, alpha=0.5, label="real held-out -> train", density=True, color="k")
    for result in results:
        ax.hist(result["_arrays"]["nn_rmse"], bins=bins, histtype="step", lw=1.2, density=True,
                label=f"{result['generator']} -> train")
    ax.set_xlabel("RMSE to nearest training cine", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _auc_cell(entry: dict | None, key: str) -> str:
    if not entry or "skipped" in entry:
        return "—"
    a = entry[key]
    return f"{a['auc']:.2f} [{a['ci95'][0]:.2f}, {a['ci95'][1]:.2f}]"


def _share_cells(anatomy: dict | None) -> list[str]:
    if not anatomy:
        return ["—"] * len(CHECKS)
    cells = []
    for name in CHECKS:
        a = anatomy[name]
        ci = f" [{100 * a['ci95'][0]:.0f}, {100 * a['ci95'][1]:.0f}]" if a.get("ci95") else ""
        cells.append(f"{100 * a['share']:.1f} %{ci}")
    return cells


def turing_markdown(report: dict) -> list[str]:
    """The realism table: C2ST AUCs beside the real-vs-real control, anatomy shares beside the real ones."""
    split = report["split"]
    lines = ["## Realism: automated Turing test", "",
             f"Classifier two-sample test against the {report['n_heldout']} real {split} cines (patient-grouped "
             "folds, out-of-fold ROC AUC, patient-bootstrap 95 % CI): **judge by the larger AUC**; 0.5 = cannot "
             "tell the sets apart, 1.0 = always can. The real-vs-real control (real train cines of matched "
             "patients vs real held-out) is the floor. Anatomy: share of frames passing each check on the "
             "segmenter's labels [95 % CI over patients]. The Fréchet distance further down is secondary: it "
             "did not separate blobs from hearts.", "",
             "| generator | C2ST AUC CNN [CI] | C2ST AUC features [CI] | " + " | ".join(CHECK_TITLES[c] for c in CHECKS) + " |",
             "|---" * (3 + len(CHECKS)) + "|"]
    lines.append(f"| real {split} (reference) | — | — | " + " | ".join(_share_cells(report.get("anatomy_real_heldout"))) + " |")
    control = report.get("turing_control_real_train_vs_heldout")
    lines.append(f"| control: real train vs real {split} (floor) | {_auc_cell(control, 'cnn')} | "
                 f"{_auc_cell(control, 'features')} | " + " | ".join(["—"] * len(CHECKS)) + " |")
    for r in report["generators"]:
        turing_entry = r.get("turing")
        note = f" ({turing_entry['skipped'].split(';')[0]})" if turing_entry and "skipped" in turing_entry else ""
        lines.append(f"| {r['generator']}{note} | {_auc_cell(turing_entry, 'cnn')} | {_auc_cell(turing_entry, 'features')} | "
                     + " | ".join(_share_cells(r.get("anatomy"))) + " |")
    return lines + [""]


def markdown(report: dict) -> str:
    lines = [f"# Evaluation report ({report['split']} conditions)", "",
             f"Command: `{report['command']}`", "",
             f"Reference: {report['n_train']} real training cines; {report['n_heldout']} real {report['split']} cines. "
             "Bootstrap 95 % intervals resample subjects.", "",
             *turing_markdown(report),
             "## Fréchet distance (secondary), diversity, memorisation", "",
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
        seed: int = 0, c2st: bool = True, sampler: Sampler = Sampler()) -> dict:
    """``seed``: the generation seed of every request, to see how far a figure moves with the draw alone.
    ``c2st``: run the Turing test (the anatomy checks always run). ``sampler``: the trained generators' sampler
    settings instead of the defaults saved with their weights."""
    started = time.perf_counter()
    dataset = load_prepared(dataset_name)
    reference = Reference(dataset.split("train"), dataset.split(split), CineEncoder.from_pretrained())
    measurer = CineMeasurer()
    realism = TuringReference(reference, measurer, c2st=c2st)
    conditions = RealCines(dataset, split).conditions().assign(seed=int(seed))
    results = [evaluate_generator(build_generator(name, dataset, split, sampler=sampler), conditions, reference,
                                  measurer, realism)
               for name in generator_names]
    real_features = reference.heldout_features
    report = {
        "command": command, "split": split, "dataset": dataset_name, "seed": int(seed), "sampler": sampler.given(),
        "n_train": len(reference.train), "n_heldout": len(reference.heldout),
        "turing_control_real_train_vs_heldout": realism.control,
        "anatomy_real_heldout": realism.anatomy,
        "frechet_floor_real_heldout_to_train": reference.floor,
        "real_diversity": metrics.mean_pairwise_distance(real_features),
        "real_nearest_train_rmse_median": float(np.median(reference.heldout_nn_rmse)),
        "generators": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
    }
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot_adherence(results, out / "adherence.png")
    plot_curves(results, out / "curves.png")
    plot_nearest(results, reference, out / "nearest_neighbour.png")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", action="append",
                        help=f"{KNOWN_GENERATORS} (repeatable)")
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--out", default="reports/ceiling")
    parser.add_argument("--seed", type=int, default=0, help="generation seed of every request (default 0)")
    parser.add_argument("--no-c2st", action="store_true",
                        help="skip the automated Turing test (quick runs; the anatomy checks still run)")
    parser.add_argument("--steps", type=int, help="MAR decoding steps K of cpgg / edit (default: the weights')")
    parser.add_argument("--cfg", type=float, help="guidance scale of cpgg / edit (default: the weights')")
    parser.add_argument("--temperature", type=float, help="sampling temperature of cpgg / edit (default: the weights')")
    args = parser.parse_args(argv)
    command = "python -m evaluation.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run(args.generator or ["real", "nearest-train", "group-mean"], args.split, Path(args.out),
                 args.dataset, command, args.seed, c2st=not args.no_c2st,
                 sampler=Sampler(args.steps, args.cfg, args.temperature))
    control = report["turing_control_real_train_vs_heldout"] or {}
    print(json.dumps({"control_real_vs_real_max_auc": control.get("max_auc"),
                      **{r["generator"]: {"c2st_max_auc": r["turing"].get("max_auc"),
                                          "anatomy_all": r["anatomy"]["all"]["share"],
                                          "frechet": r["frechet_to_train"]["value"],
                                          "LVEDV_r": r["adherence"].get("LVEDV", {}).get("pearson_r")}
                         for r in report["generators"]}}, indent=2))


if __name__ == "__main__":
    main()
