"""The privacy test: how often is a generator's cine matched to a training patient, beside real held-out cines?

    python -m evaluation.reidentification --split val|test [--out reports/renderer]

For each generator (requests: the held-out cines' own phenotypes and slice positions, seed 0), every cine's
ED frame gets its best re-identification score against the training cines (``cardiosynth.measure.
reidentification``); *matched* = above the held-out threshold (95th percentile of the val cines' best
matches, fitted with the network). Reported per generator: matched share (patient-bootstrap 95 % CI), the
share matched to the patient of its own exemplar, the pixel nearest-neighbour RMSE to the training cines
(median) and, for the filtered default, what the filter costs (redraws, C2ST, adherence). Real held-out cines
read 5 % on val by construction; on test they are an independent check of the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cardiosynth.data.dataset import load_prepared
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.measure.reidentification import TrainingReference, matched_share
from cardiosynth.models.cine_encoder import CineEncoder
from cardiosynth.models.reid import ReidNet
from cardiosynth.pipelines.generators import RealCines, build_generator
from evaluation.evaluate import Reference, TuringReference, evaluate_generator
from evaluation.renderer_study import summary

GENERATORS = ("real", "nearest-train", "group-mean", "cpgg", "edit")


class Filtered:
    """The default pipeline with its privacy filter on."""

    def __init__(self, pipe):
        self.pipe, self.name, self.redraws = pipe, "cpgg+privacy-filter", []

    def generate(self, conditions):
        cines = self.pipe.generate(conditions, privacy_filter=True)
        self.redraws = [c.metadata.get("privacy_redraws", 0) for c in cines]
        return cines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--out", default="reports/renderer")
    args = parser.parse_args(argv)
    command = "python -m evaluation.reidentification " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(2)
    dataset = load_prepared("default")
    train, heldout = dataset.split("train"), dataset.split(args.split)
    reid = ReidNet.from_pretrained()
    threshold = float(reid.metrics["threshold"])
    reference = TrainingReference.build(reid, train.cines[:, 0].astype(np.float32) / 255.0, train.table["subject"])
    evaluation = Reference(train, heldout, CineEncoder.from_pretrained())
    measurer = CineMeasurer()
    realism = TuringReference(evaluation, measurer)
    conditions = RealCines(dataset, args.split).conditions()
    groups = conditions["subject"].to_numpy()
    generators = [build_generator(name, dataset, args.split, device="cpu") for name in GENERATORS]
    generators.append(Filtered(build_generator("cpgg", dataset, args.split, device="cpu").pipe))
    report = {"command": command, "split": args.split, "threshold": threshold,
              "threshold_from": reid.metrics.get("threshold_from"), "generators": {}}
    for generator in generators:
        started = time.perf_counter()
        result = evaluate_generator(generator, conditions, evaluation, measurer,
                                    None if generator.name.startswith("real") else realism)
        frames = result["_arrays"]["frames"]
        scores, patients = reference.best_match(frames[:, 0])
        entry = {"reidentification": matched_share(scores, threshold, groups),
                 "nearest_train_rmse_median": result["nearest_train_rmse"]["median"]}
        sources = [str(s) for s in result["_arrays"].get("sources", [])]
        if sources:
            exemplar = np.array([s.split("exemplar ")[-1].split("/")[0] if "exemplar" in s else "" for s in sources])
            entry["matched_to_own_exemplar_share"] = float(np.mean((scores > threshold) & (patients == exemplar)))
        if "turing" in result:
            entry.update(summary(result))
        if isinstance(generator, Filtered):
            entry["redraws_mean"] = float(np.mean(generator.redraws))
            entry["redraws_max"] = int(np.max(generator.redraws))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        report["generators"][generator.name] = entry
        print(generator.name, json.dumps(entry), flush=True)
    out = Path(args.out) / args.split
    out.mkdir(parents=True, exist_ok=True)
    (out / "reidentification.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
