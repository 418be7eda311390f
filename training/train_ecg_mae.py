"""Train the phase-aware ECG masked autoencoder on LUDB.

    python -m training.train_ecg_mae [--config default|paper] [--out weights/ecg_mae] [--epochs N] [--resume]
                                     [--max-steps N] [--device auto]

1. Reads every LUDB record once (``cardiosynth.data.ludb``: 12 x 5000 at 500 Hz, neurokit2 R peaks -> phase) and
   uses the committed split: train records train, val records select the checkpoint (EMA phase error), test
   records are only reported.
2. Each step: leads normalised at the input, a random time shift of +-``shift_tokens`` tokens (R peaks land
   anywhere), noise, baseline wander and dropped leads; half the tokens masked; loss = masked reconstruction
   MSE + phase MSE on (sin, cos).
3. Measures the selected EMA model on val and test: the phase error (radians and ms), how often a complete
   cycle is found from the predicted phase, and how the predicted cycle starts (phase wraps) match neurokit2's
   R peaks within +-75 ms; writes ``--out`` (weights, config with these figures in ``extra``, model card).
   ``reports/ecg_mae/metrics.json`` (and re-evaluating saved weights): ``python -m evaluation.ecg_mae_report``.

Several GPUs (or CPU workers): ``torchrun --nproc-per-node 4 -m training.train_ecg_mae --config paper``
(DistributedDataParallel; each rank takes a disjoint share of every epoch; rank 0 validates, logs, saves).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from cardiosynth.data.ludb import LudbArrays, load_arrays
from cardiosynth.models.cards.ecg_mae import model_card
from cardiosynth.models.ecg_mae import (CONFIGS, EcgMAE, EcgMAEConfig, augment_ecg, find_cycles, normalise_leads,
                                        phase_error, shift_batch, token_phase)
from cardiosynth.paths import cache_dir
from training.common import (Budget, EpochLoop, adamw, cosine_lr, distributed_trainer, init_distributed,
                             main_process_first, parse_training_run, pick_device, seed_everything, training_parser)
from training.recipes import ECG_MAE_RECIPES, EcgMAERecipe

MATCH_TOLERANCE_S = 0.075  # the R-peak scoring rule of docs/design.md


def tensors(arrays: LudbArrays, config: EcgMAEConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised signals (N, 12, S), token phase (N, T) and its validity (N, T)."""
    x = torch.stack([normalise_leads(s, int(n)) for s, n in zip(arrays.signals, arrays.valid_samples)])
    phase, valid = token_phase(arrays.phase, arrays.phase_valid, config.patch)
    return x, torch.from_numpy(np.ascontiguousarray(phase)), torch.from_numpy(np.ascontiguousarray(valid))


@torch.no_grad()
def evaluate(model: EcgMAE, arrays: LudbArrays, config: EcgMAEConfig) -> dict:
    """Phase error and cycle finding on un-augmented records (what inference sees)."""
    was_training = model.training
    model.eval()
    x, phase, valid = tensors(arrays, config)
    predicted = torch.cat([model.encode(x[i:i + 32])[1] for i in range(0, len(x), 32)]).numpy()
    model.train(was_training)
    errors, found, tp, n_pred, n_ref = [], 0, 0, 0, 0
    tolerance = MATCH_TOLERANCE_S / config.token_seconds
    for i in range(len(x)):
        target = phase[i].numpy()
        v = valid[i].numpy() & np.isfinite(target)
        if v.any():
            errors.append(phase_error(predicted[i], target, v))
        n_tokens = int(arrays.valid_samples[i]) // config.patch
        cycles = find_cycles(predicted[i], n_tokens, config.token_seconds)
        found += bool(cycles)
        # neurokit2's R peaks = the target phase's wraps from the first to the last R peak (the phase is measured
        # there, extrapolated outside); predicted R peaks = cycle boundaries, scored inside that span
        wraps = np.flatnonzero(np.diff(np.nan_to_num(target)) < -math.pi)
        reference = wraps[v[wraps] | v[wraps + 1]] + 0.5
        starts = np.unique(np.round([c for cycle in cycles for c in cycle], 3))
        if len(reference):
            starts = starts[(starts >= reference[0] - tolerance) & (starts <= reference[-1] + tolerance)]
        n_pred, n_ref = n_pred + len(starts), n_ref + len(reference)
        used = set()
        for s in starts:
            close = [j for j, r in enumerate(reference) if abs(r - s) <= tolerance and j not in used]
            if close:
                used.add(close[0])
                tp += 1
    rr = arrays.table["rr_s"].to_numpy(float)
    mean_rr_ms = float(np.nanmean(rr)) * 1000
    error = float(np.mean(errors)) if errors else float("nan")
    return {"records": len(x), "phase_error_rad": round(error, 4),
            "phase_error_ms_at_mean_rr": round(error / (2 * math.pi) * mean_rr_ms, 1),
            "complete_cycle_found": round(found / len(x), 4), "records_with_cycle": found,
            "cycle_boundaries_vs_neurokit_r_peaks": {"tolerance_ms": MATCH_TOLERANCE_S * 1000,
                                                     "scored_between": "neurokit2's first and last R peak",
                                                     "predicted": n_pred,
                                                     "reference": n_ref, "matched": tp,
                                                     "precision": round(tp / max(n_pred, 1), 4),
                                                     "sensitivity": round(tp / max(n_ref, 1), 4)}}


def fit(config: EcgMAEConfig, recipe: EcgMAERecipe, train: LudbArrays, val: LudbArrays, run_dir: Path,
        resume: bool = False, device: str = "auto", max_steps: int | None = None,
        progress: bool = True) -> tuple[EcgMAE, dict]:
    """Train; return the EMA model of the epoch with the lowest validation phase error, and that evaluation."""
    seed_everything(recipe.seed)
    rank, world, device = init_distributed(pick_device(device))  # torchrun: one process per GPU (or CPU worker)
    model = EcgMAE(config).to(device)
    trainer = distributed_trainer(model, device, world)
    x, phase, valid = tensors(train, config)

    def step_loss(idx: torch.Tensor, version: None, generator: torch.Generator) -> dict:
        shifts = torch.randint(-recipe.shift_tokens, recipe.shift_tokens + 1, (len(idx),), generator=generator)
        xb, pb, vb = shift_batch(x[idx], phase[idx], valid[idx], shifts, config.patch)
        xb = augment_ecg(xb, config, generator, recipe.noise_std, recipe.wander_max, recipe.lead_dropout)
        return trainer(xb.to(device), pb.to(device), vb.to(device), generator, mask_ratio=recipe.mask_ratio,
                       phase_weight=recipe.phase_weight)

    def validate(ema: EcgMAE) -> tuple[dict, dict]:
        scores = evaluate(ema.cpu(), val, config)
        ema.to(device)
        return {"val": scores}, scores

    loop = EpochLoop(model, trainer, adamw(model, recipe.lr, recipe.weight_decay), run_dir, "phase_error_rad", n=len(x),
                     recipe=recipe, lr=lambda step, total: cosine_lr(step, total, recipe.lr, recipe.warmup_steps, 0.05),
                     step_loss=step_loss, validate=validate, rank=rank, world=world, desc="ECG MAE")
    return loop.run(resume, Budget(max_steps), progress)


def train(config: EcgMAEConfig, recipe: EcgMAERecipe, out: Path, resume: bool = False, device: str = "auto",
          max_steps: int | None = None, command: str = "") -> dict:
    rank, world, _ = init_distributed(pick_device(device))
    arrays = main_process_first(rank, world, load_arrays)  # rank 0 fills the LUDB cache
    started = time.perf_counter()
    model, best = fit(config, recipe, arrays.split("train"), arrays.split("val"), cache_dir() / "runs" / out.name,
                      resume, device, max_steps)
    if rank != 0:
        return {}  # rank 0 writes the weights
    run = {"selected": {"epoch": best.get("epoch"), "step": best.get("step")},
           "train_minutes": round((time.perf_counter() - started) / 60, 1), "command": command,
           "threads": torch.get_num_threads()}
    metrics = measure(model, arrays, run)
    save(out, model, metrics, dataclasses.asdict(recipe))
    return metrics


def measure(model: EcgMAE, arrays: LudbArrays, run: dict) -> dict:
    """The figures stored with the weights (``extra``) and quoted by their card: ``run`` (how they were trained)
    and the evaluation on val and test; also used by ``python -m evaluation.ecg_mae_report --evaluate``."""
    config = model.config
    return {**run, "val": evaluate(model, arrays.split("val"), config),
            "test": evaluate(model, arrays.split("test"), config), "n_train": len(arrays.split("train"))}


def save(out: Path, model: EcgMAE, metrics: dict, recipe: dict) -> None:
    """Write the weights folder: weights, config with the training ``recipe`` (as saved) beside it and
    ``metrics`` in ``extra``, and the library's model card."""
    card = model_card(model.config, recipe, metrics, metrics["train_minutes"], metrics["command"],
                      model.count_parameters())
    model.save_pretrained(out, card, extra=metrics, recipe=recipe)


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "ecg_mae", dataset=False, max_steps=True)
    run = parse_training_run(parser, CONFIGS, "ecg_mae", "train_ecg_mae", argv, recipes=ECG_MAE_RECIPES)
    metrics = train(run.config, run.recipe, run.out, run.args.resume, run.args.device, run.args.max_steps, run.command)
    if metrics:
        print(json.dumps({k: metrics[k] for k in ("val", "test", "train_minutes")}, indent=2))


if __name__ == "__main__":
    main()
