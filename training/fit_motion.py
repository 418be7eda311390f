"""Fit the motion model (the motion half of the anatomy + motion representation).

    python -m training.fit_motion [--config default|paper] [--out weights/motion]      # register + PCA (resumable)

Fitting: every training-split cine is registered to its own ED frame (gradient descent on a 16 x 16 control
grid per frame, MSE + smoothness; batches cached under .cache/runs/<out>/ so an interrupted run resumes),
then a PCA of the control points' trajectories gives the temporal modes of the motion code. Nothing is fitted
on validation or test cines.

The whole representation on held-out cines (PSNR, LVEF, speed, sheet, the card's evaluation section):
``python -m evaluation.motion_report``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from cardiosynth.data.dataset import load_prepared
from cardiosynth.models.cards.motion import model_card
from cardiosynth.models.motion import CONFIGS, MotionConfig, MotionModel, warp_through_cycle
from cardiosynth.render.registration import registered_controls
from training.common import parse_training_run, seed_everything, training_parser


def fit(config: MotionConfig, out: Path, dataset_name: str, command: str) -> dict:
    seed_everything(0)
    train = load_prepared(dataset_name).split("train")
    cines = torch.from_numpy(train.cines.astype(np.float32) / 255.0)
    started = time.perf_counter()
    controls = registered_controls(cines, config, out.name, dataset_name)
    model = MotionModel(config)
    explained = model.fit(controls)
    rebuilt = model.control(model.project(controls))
    extra = {**explained, "fit_minutes": round((time.perf_counter() - started) / 60, 1), "dataset": dataset_name,
             "command": command, "threads": torch.get_num_threads(),
             "train_registration_psnr_db": psnr_db(torch.cat([model_warp(cines[i:i + 64], controls[i:i + 64])
                                                              for i in range(0, len(cines), 64)]), cines),
             "train_pca_psnr_db": psnr_db(torch.cat([model_warp(cines[i:i + 64], rebuilt[i:i + 64])
                                                     for i in range(0, len(cines), 64)]), cines)}
    model.save_pretrained(out, model_card(config, extra), extra=extra)
    return extra


def model_warp(cines: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return warp_through_cycle(cines[:, 0], controls)


def psnr_db(recon: torch.Tensor, target: torch.Tensor) -> float:
    mse = (recon - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "motion", epochs=False, resume=False, device=False, threads=True)
    parser.add_argument("--temporal-components", type=int, help="override the number of temporal modes")
    run = parse_training_run(parser, CONFIGS, "motion", "fit_motion", argv)
    args, config = run.args, run.config
    torch.set_flush_denormal(True)
    if args.temporal_components:
        config = dataclasses.replace(config, temporal_components=args.temporal_components)
    print(json.dumps(fit(config, run.out, args.dataset or config.data_config, run.command), indent=2))


if __name__ == "__main__":
    main()
