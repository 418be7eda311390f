"""How the renderer's settings were chosen, on val: the rendering ceiling, the shift control and the de novo
variants, each through the automated Turing test, the anatomy checks and the measurer.

    python -m evaluation.renderer_study --split val [--only ceiling,shift,denovo,motion] [--out reports/renderer]

- ceiling: every real held-out cine rebuilt as its own real ED frame warped by its own full registration
  (no generator), per kernel and with / without the noise restoration: the best any rendered cine can read.
- shift: every real held-out cine moved by half a pixel (all frames): interpolation alone, on real motion.
- denovo: each held-out request (its phenotypes and slice position) rendered from the training bank: the
  exemplar's own motion scaled to the requested LVEF, with and without the anatomy deformation and novelty.
- vae: the default pipeline on phenotype VAE samples (temperature 1) instead of the held-out cines' own sets
  (positions and patient grouping kept); adherence is then to the sampled values.
- motion: the default pipeline (deformation + novelty as bundled) with each motion: the exemplar's own scaled to
  the requested LVEF, or the phenotype MAR's motion drawn for the new anatomy.

Writes ``<out>/<split>/study.json`` (every figure with its CI, the command) and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.data.dataset import load_prepared
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.models.cine_encoder import CineEncoder
from cardiosynth.models.motion import CONFIGS as MOTION_CONFIGS
from cardiosynth.pipelines.generators import RealCines
from cardiosynth.pipelines.phenotype_to_cine import MOTIONS, PhenotypeToCine
from cardiosynth.pipelines.rendering import ExemplarRendering
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.render.fields import motion_positions
from cardiosynth.render.registration import registered_controls
from cardiosynth.render.renderer import RenderSettings
from cardiosynth.render.sampling import identity_positions, resample
from evaluation.evaluate import Reference, TuringReference, evaluate_generator


class Rendered:
    """A generator of the study: a name and a function conditions -> cines."""

    def __init__(self, name, make):
        self.name, self.make = name, make

    def generate(self, conditions):
        return self.make(conditions)


def ceiling(part, controls, settings: RenderSettings, seed: int = 0):
    def make(conditions):
        out = []
        generator = torch.Generator().manual_seed(seed)
        for i in conditions["index"]:
            cine = part.cine(int(i))
            frames = resample(cine.frames[0], motion_positions(controls[int(i)], part.config.size), cine.valid,
                              settings.kernel, settings.restore_noise, generator)
            out.append(Cine(frames, cine.spacing_mm, cine.slice_position, cine.valid, source=f"render:{cine.source}"))
        return out
    return make


def shifted(part, settings: RenderSettings, shift: float = 0.5, seed: int = 0):
    def make(conditions):
        out = []
        generator = torch.Generator().manual_seed(seed)
        positions = identity_positions(part.config.size) + shift
        for i in conditions["index"]:
            cine = part.cine(int(i))
            frames = np.stack([resample(f, positions[None], cine.valid, settings.kernel, settings.restore_noise,
                                        generator)[0] for f in cine.frames])
            out.append(Cine(frames, cine.spacing_mm, cine.slice_position, cine.valid, source=f"shift:{cine.source}"))
        return out
    return make


def de_novo(bank: AnatomyBank, settings: RenderSettings, spacing: float, seed: int = 0):
    rendering = ExemplarRendering(bank, settings)

    def make(conditions):
        hearts = rendering.hearts(conditions, seed)
        out = []
        for heart, (_, row) in zip(hearts, conditions.iterrows()):
            control, m = rendering.exemplar_motion(heart, float(row["LVEF"]))
            out.append(rendering.render(heart, control, "exemplar", spacing, float(row["slice_position"]),
                                        "synthetic:render", {"motion_scale": m}))
        return out
    return make


def pipeline_motion(pipe, motion: str, seed: int = 0):
    """The default pipeline's de novo cines with the given motion (one call per seed, rows in order)."""
    def make(conditions):
        columns = list(ph.NAMES) + ["slice_position"]
        return pipe(conditions[columns].reset_index(drop=True), n=1, seed=seed, motion=motion).cines
    return make


def summary(result: dict) -> dict:
    t = result.get("turing", {})
    adherence = result["adherence"]
    return {"cnn": t.get("cnn", {}).get("auc"), "cnn_ci95": t.get("cnn", {}).get("ci95"),
            "features": t.get("features", {}).get("auc"), "features_ci95": t.get("features", {}).get("ci95"),
            "anatomy_all": result["anatomy"]["all"]["share"], "lv_ringed": result["anatomy"]["lv_ringed"]["share"],
            "LVEDV_r": adherence["LVEDV"]["pearson_r"], "LVEF_mae": adherence["LVEF"]["mae"],
            "LVEF_r": adherence["LVEF"]["pearson_r"], "nearest_train_rmse_median": result["nearest_train_rmse"]["median"],
            "seconds": result["seconds_total_including_io"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--only", default="ceiling,shift,denovo")
    parser.add_argument("--bank", default="anatomy_bank")
    parser.add_argument("--out", default="reports/renderer")
    args = parser.parse_args(argv)
    command = "python -m evaluation.renderer_study " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(2)
    dataset = load_prepared("default")
    part = dataset.split(args.split)
    reference = Reference(dataset.split("train"), part, CineEncoder.from_pretrained())
    measurer = CineMeasurer()
    realism = TuringReference(reference, measurer)
    conditions = RealCines(dataset, args.split).conditions()
    parts = args.only.split(",")
    generators = []
    base = RenderSettings()
    if "ceiling" in parts:
        controls = registered_controls(torch.from_numpy(part.cines.astype(np.float32) / 255.0), MOTION_CONFIGS["default"],
                                       f"registration_{args.split}", "default")
        for kernel, noise in (("bilinear", False), ("keys", False), ("bspline", False), ("keys", True),
                              ("bspline", True)):
            s = dataclasses.replace(base, kernel=kernel, restore_noise=noise)
            generators.append(Rendered(f"ceiling-{kernel}{'+noise' if noise else ''}", ceiling(part, controls, s)))
    if "shift" in parts:
        for kernel, noise in (("bilinear", False), ("bspline", False), ("bspline", True)):
            s = dataclasses.replace(base, kernel=kernel, restore_noise=noise)
            generators.append(Rendered(f"shift-half-{kernel}{'+noise' if noise else ''}", shifted(part, s)))
    if "denovo" in parts:
        bank = AnatomyBank.from_pretrained(args.bank)
        spacing = bank.config.spacing_mm
        equal = dataclasses.replace(bank.config.choice, weights=(1.0, 1.0, 1.0, 1.0))
        variants = (("denovo-lvef-weight1", base, equal), ("denovo-lvef-weight2", base, None))
        for name, s, choice in variants:
            chosen = AnatomyBank.from_pretrained(args.bank)
            if choice is not None:
                chosen.config = dataclasses.replace(chosen.config, choice=choice)
            generators.append(Rendered(name, de_novo(chosen, s, spacing)))
    if "denovo-history" in parts:  # the rows measured before the area correction, LVEF weight and limit
        bank = AnatomyBank.from_pretrained(args.bank)
        spacing = bank.config.spacing_mm
        for name, s in (("denovo-exemplar-only", dataclasses.replace(base, deform_anatomy=False, novelty_px=0.0)),
                        ("denovo-deformed", dataclasses.replace(base, novelty_px=0.0)),
                        ("denovo-deformed+novelty0.5", dataclasses.replace(base, novelty_px=0.5)),
                        ("denovo-deformed+novelty1.0", dataclasses.replace(base, novelty_px=1.0))):
            generators.append(Rendered(name, de_novo(bank, s, spacing)))
    if "vae" in parts:  # requests the phenotype VAE samples (temperature 1), at the held-out cines' positions
        pipe = PhenotypeToCine.from_pretrained(device="cpu")
        sampled = pipe.phenotype_prior.sample(len(conditions), temperature=1.0, seed=0).reset_index(drop=True)
        conditions = conditions.assign(**{name: sampled[name].to_numpy() for name in ph.NAMES})
        generators.append(Rendered("pipeline-vae-samples", pipeline_motion(pipe, "exemplar")))
    if "motion" in parts:
        pipe = PhenotypeToCine.from_pretrained(device="cpu")
        for motion in MOTIONS:
            generators.append(Rendered(f"pipeline-motion-{motion}", pipeline_motion(pipe, motion)))
    out = Path(args.out) / args.split
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.json"
    report = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    report.update(command=command, split=args.split, control=realism.control and {
        "cnn": realism.control["cnn"], "features": realism.control["features"]}, anatomy_real=realism.anatomy["all"])
    for generator in generators:
        started = time.perf_counter()
        result = evaluate_generator(generator, conditions, reference, measurer, realism)
        report["rows"][generator.name] = summary(result)
        print(generator.name, json.dumps(report["rows"][generator.name]), f"{time.perf_counter() - started:.0f} s",
              flush=True)
        path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
