"""Train the ECG -> cine rectified flow (template + DiT) on cines' motion codes paired with ECG cycles.

    python -m training.train_ecg_flow [--config default|paper] [--pairs pairs.csv] [--frame-ae weights/frame_ae]
                                      [--motion weights/motion] [--ecg-mae weights/ecg_mae] [--out weights/ecg_flow]
                                      [--epochs N] [--resume] [--max-steps N] [--max-minutes M] [--device auto]

1. Pairs: by default pseudo-pairs (``cardiosynth.data.pairing``: diagnosis family + QT/RR vs the cine's ES
   fraction, splits kept apart; deterministic), printed with their statistics, which the model card quotes.
   ``--pairs`` takes a table of real pairs (``subject, ecg_path``) instead and trains through exactly the same
   code; subjects take their split from the ACDC split file. The tables in ``reports/ecg_flow/`` (pairs,
   statistics, training summary) are rebuilt from the same inputs by ``python -m evaluation.ecg_flow_pairing``.
2. ECGs: each paired ECG is read (any supported format), encoded by the frozen ECG MAE, and every complete
   cycle's features are resampled to the cine's frames -- with the functions inference uses
   (``cardiosynth.pipelines.ecg_to_cine.encode_ecg``), so training and sampling cannot drift.
3. Codes: the train / val cines are re-timed so that end-systole falls at the config's
   ``canonical_es_fraction`` (sampling re-times to the ECG's QT / RR: ``cardiosynth.retime``), then encoded into
   packed anatomy + motion codes (cached by both models' sha256, with augmented copies, as for the MAR); the
   template is the mean clean training code and is saved inside the weights. The anatomy channels are the
   condition, the motion channels what the flow learns to draw.
4. Each epoch every training cine is seen once, with one of its subject's ECGs and one of that ECG's cycles
   drawn at random; AdamW, warmup + cosine, EMA; the EMA's validation flow loss (fixed seeds, val pairs, typical
   cycles) selects the checkpoint. The weights pin the frame autoencoder, the motion model and the ECG MAE by
   sha256.

Several GPUs (or CPU workers): ``torchrun --nproc-per-node 4 -m training.train_ecg_flow --config paper``
(DistributedDataParallel; each rank takes a disjoint share of every epoch; rank 0 validates, logs, saves).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.ludb import load_arrays
from cardiosynth.data.pairing import pairing_statistics, pseudo_pairs, read_pairs, subjects_from_cines
from cardiosynth.ecg import read_ecg
from cardiosynth.models.cards.ecg_flow import model_card
from cardiosynth.models.ecg_flow import CONFIGS, EcgFlow, EcgFlowConfig
from cardiosynth.models.ecg_mae import EcgMAE
from cardiosynth.paths import cache_dir
from cardiosynth.pipelines.ecg_to_cine import encode_ecg
from cardiosynth.retime import retimed_dataset
from cardiosynth.weights import read_config, resolve
from training.common import (Budget, EpochLoop, adamw, config_suffix, cosine_lr, distributed_trainer,
                             init_distributed, main_process_first, parse_training_run, pick_device, run_minutes,
                             seed_everything, store_compact, training_parser)
from training.recipes import ECG_FLOW_RECIPES, EcgFlowRecipe
from training.train_mar import compute_latents

VAL_SEED = 4242
AUGMENT_COPIES = 2  # augmented codes per training cine (the MAR uses 8; each count has its own cache)


# ---------------------------------------------------------------------------------------------------------
# Data: pairs -> per-cine lists of ECG cycle features


def make_pairs(cines: pd.DataFrame, frames: int, per_subject: int, seed: int, pairs_file: Path | None) -> pd.DataFrame:
    if pairs_file is not None:
        pairs = read_pairs(pairs_file)
        split = cines.groupby("subject")["split"].first()
        unknown = sorted(set(pairs["subject"]) - set(split.index))
        if unknown:
            raise ValueError(f"{pairs_file}: subjects without cines in the prepared dataset: {unknown[:5]}")
        pairs["split"] = pairs["subject"].map(split)
        return pairs

    return pseudo_pairs(subjects_from_cines(cines, frames), _ludb_table(), per_subject, seed)


def pairs_and_statistics(cines: pd.DataFrame, frames: int, recipe: EcgFlowRecipe,
                         pairs_file: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training pairs of a prepared cine table (``pairs_file``'s, or the recipe's pseudo-pairs) and their
    statistics; also what ``python -m evaluation.ecg_flow_pairing`` rebuilds the reports from."""
    pairs = make_pairs(cines, frames, recipe.pairs_per_subject, recipe.seed, pairs_file)
    return pairs, pairing_statistics(pairs, None if pairs_file else _ludb_table())


def ecg_cycles(mae_folder, paths: list[str], frames: int, progress: bool = True) -> dict[str, list[torch.Tensor]]:
    """For each ECG file: the (frames, D) features of every complete cycle; typical cycle first."""
    mae = EcgMAE.from_pretrained(str(mae_folder))
    out = {}
    for path in tqdm(sorted(set(paths)), desc="ECG cycles", unit="ecg", disable=not progress):
        encoded = encode_ecg(mae, read_ecg(path))
        if encoded.chosen is None:
            continue
        order = [encoded.chosen] + [k for k in range(len(encoded.cycles)) if k != encoded.chosen]
        out[path] = [encoded.cycle_features(k, frames) for k in order]
    return out


def cine_ecgs(cines: pd.DataFrame, pairs: pd.DataFrame, cycles: dict[str, list[torch.Tensor]]) -> list[list]:
    """For each cine row: its subject's usable ECGs, each a list of cycle features (typical cycle first)."""
    by_subject = {s: [cycles[p] for p in part["ecg_path"] if p in cycles] for s, part in pairs.groupby("subject")}
    return [by_subject.get(s, []) for s in cines["subject"]]


def draw_batch(ecgs: list[list], idx: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(B, frames, D): for each cine a random paired ECG and a random cycle of it (typical cycle without a
    generator, the validation setting)."""
    out = []
    for i in idx.tolist():
        if generator is None:
            out.append(ecgs[i][0][0])
            continue
        cycles = ecgs[i][int(torch.randint(len(ecgs[i]), (1,), generator=generator))]
        out.append(cycles[int(torch.randint(len(cycles), (1,), generator=generator))])
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------------------
# Training loop (independent of files, so tests can run it on random latents and features)


@torch.no_grad()
def validation_loss(model: EcgFlow, latents: torch.Tensor, ecgs: list[list], positions: torch.Tensor,
                    batch_size: int, repeats: int = 2, condition_dropout: float = 0.1) -> float:
    """Mean flow loss with fixed noise and times, typical cycles of the first paired ECG: comparable across epochs."""
    was_training = model.training
    model.eval()
    device = model.template.device
    total, count = 0.0, 0
    for r in range(repeats):
        generator = torch.Generator().manual_seed(VAL_SEED + r)
        for i in range(0, len(latents), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(latents)))
            loss = model.loss(latents[idx].to(device), draw_batch(ecgs, idx, None).to(device), positions[idx].to(device),
                              generator, condition_dropout)
            total, count = total + float(loss) * len(idx), count + len(idx)
    model.train(was_training)
    return total / count


def fit(config: EcgFlowConfig, recipe: EcgFlowRecipe, train_latents: torch.Tensor, train_ecgs: list[list],
        train_positions: torch.Tensor, val_latents: torch.Tensor, val_ecgs: list[list], val_positions: torch.Tensor,
        run_dir: Path, resume: bool = False, device: str = "auto", max_steps: int | None = None, progress: bool = True,
        max_minutes: float | None = None) -> tuple[EcgFlow, dict]:
    """Train on ``train_latents`` (versions, N, C, F, H, W; version 0 clean, whose mean is the template); return
    the EMA model of the best validation epoch and that epoch's record."""
    seed_everything(recipe.seed)
    rank, world, device = init_distributed(pick_device(device))  # torchrun: one process per GPU (or CPU worker)
    model = EcgFlow(config)
    model.template.copy_(train_latents[0].mean(0))
    model = model.to(device)
    trainer = distributed_trainer(model, device, world)

    def step_loss(idx: torch.Tensor, version: torch.Tensor, generator: torch.Generator) -> dict:
        return {"loss": trainer(train_latents[version[idx], idx].to(device), draw_batch(train_ecgs, idx, generator).to(device),
                                train_positions[idx].to(device), generator, recipe.condition_dropout)}

    def validate(ema: EcgFlow) -> tuple[dict, dict]:
        scores = {"val_loss": validation_loss(ema, val_latents, val_ecgs, val_positions, recipe.batch_size,
                                              condition_dropout=recipe.condition_dropout)}
        return scores, scores

    loop = EpochLoop(model, trainer, adamw(model, recipe.lr, recipe.weight_decay), run_dir, "val_loss",
                     n=train_latents.shape[1], recipe=recipe,
                     lr=lambda step, total: cosine_lr(step, total, recipe.lr, recipe.warmup_steps, 0.05),
                     step_loss=step_loss, validate=validate, versions=train_latents.shape[0], rank=rank, world=world,
                     desc="ECG flow")
    return loop.run(resume, Budget(max_steps, max_minutes), progress)


# ---------------------------------------------------------------------------------------------------------
# Command


def train(config: EcgFlowConfig, recipe: EcgFlowRecipe, out: Path, frame_ae, motion, mae_folder,
          pairs_file: Path | None = None, dataset_name: str = "default", resume: bool = False, device: str = "auto",
          max_steps: int | None = None, command: str = "", max_minutes: float | None = None) -> dict:
    dataset = load_prepared(dataset_name)
    # the pixel size of its cines is part of the model: recorded in its config, which the pipelines read
    config = dataclasses.replace(config, spacing_mm=dataset.config.spacing_mm)
    frame_ae, motion, mae_folder = resolve(frame_ae), resolve(motion), resolve(mae_folder)
    mae_width = read_config(mae_folder)["config"]["width"]
    if mae_width != config.ecg_dim:
        raise ValueError(f"The ECG MAE at {mae_folder} has width {mae_width}; this flow config expects {config.ecg_dim}")
    frames = dataset.cines.shape[1]
    if frames != config.ecg_frames:
        raise ValueError(f"The cines have {frames} frames; the flow config expects {config.ecg_frames}")
    rank, world, torch_device = init_distributed(pick_device(device))  # under torchrun rank 0 fills the caches
    pairs, stats = main_process_first(rank, world,
                                      lambda: pairs_and_statistics(dataset.table, frames, recipe, pairs_file))
    if rank == 0:
        print("Pairs (" + ("given: " + str(pairs_file) if pairs_file else "pseudo-pairs: family + QT/RR") + ")")
        print(stats.to_string(index=False))
    cycles = ecg_cycles(mae_folder, pairs["ecg_path"].tolist(), frames, progress=rank == 0)
    latent_name = str(dataset_name)
    if config.canonical_es_fraction is not None:  # after pairing, which reads each cine's own ES fraction
        dataset = retimed_dataset(dataset, config.canonical_es_fraction)
        latent_name = f"{latent_name}_es{round(1000 * config.canonical_es_fraction)}"
    folders = {"frame_ae": frame_ae, "motion": motion}
    arrays = main_process_first(rank, world, lambda: compute_latents(folders, dataset, latent_name, AUGMENT_COPIES, 0,
                                                                     torch_device))
    if tuple(arrays["val"].shape[1:]) != config.latent_shape:
        raise ValueError(f"frame_ae {frame_ae} + motion {motion} give codes {tuple(arrays['val'].shape[1:])}; the "
                         f"flow config expects {config.latent_shape}: use the matching --config")
    train_set, val_set = dataset.split("train"), dataset.split("val")
    train_ecgs, val_ecgs = cine_ecgs(train_set.table, pairs, cycles), cine_ecgs(val_set.table, pairs, cycles)
    keep_train = np.array([bool(e) for e in train_ecgs])
    keep_val = np.array([bool(e) for e in val_ecgs])
    if not keep_train.any() or not keep_val.any():
        raise ValueError("No training or validation cine has a paired ECG with a complete cycle")
    positions = {s: torch.tensor(d.table["slice_position"].to_numpy(np.float32)) for s, d in
                 (("train", train_set), ("val", val_set))}
    run_dir = cache_dir() / "runs" / out.name
    model, best = fit(config, recipe, torch.from_numpy(arrays["train"][:, keep_train]), [e for e in train_ecgs if e],
                      positions["train"][keep_train], torch.from_numpy(arrays["val"][keep_val]),
                      [e for e in val_ecgs if e], positions["val"][keep_val], run_dir, resume, device, max_steps,
                      max_minutes=max_minutes)
    if rank != 0:
        return {}  # rank 0 writes the weights
    minutes = run_minutes(run_dir / "log.jsonl")  # all segments of a resumed run
    summary = {"selected": best, "train_minutes": round(minutes, 1), "dataset": str(dataset_name),
               "pairs": "given" if pairs_file else "pseudo-pairs (diagnosis family + QT/RR)",
               "n_pairs": len(pairs), "n_ecgs_with_cycles": len(cycles), "n_ecgs_paired": pairs["ecg_path"].nunique(),
               "n_train_cines": int(keep_train.sum()), "n_val_cines": int(keep_val.sum()),
               "parameters": model.count_parameters(), "command": command, "threads": torch.get_num_threads()}
    card = model_card(config, dataclasses.asdict(recipe), summary, stats, frame_ae, motion, mae_folder)
    model.save_pretrained(out, card, depends_on={"frame_ae": frame_ae, "motion": motion, "ecg_mae": mae_folder},
                          extra=summary, recipe=recipe)
    store_compact(out)  # int8 weight matrices: what is bundled, and what the reports measure
    return summary


def _ludb_table() -> pd.DataFrame:
    return load_arrays(progress=False).table


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "ecg_flow", max_steps=True, max_minutes=True)
    parser.add_argument("--pairs", type=Path, help="CSV of real pairs (subject, ecg_path); default: pseudo-pairs")
    parser.add_argument("--frame-ae", default=None, help="frame autoencoder folder (default weights/frame_ae[_<config>])")
    parser.add_argument("--motion", default=None, help="motion model folder (default weights/motion[_<config>])")
    parser.add_argument("--ecg-mae", default=None, help="ECG MAE folder (default weights/ecg_mae, or ecg_mae_<config>)")
    run = parse_training_run(parser, CONFIGS, "ecg_flow", "train_ecg_flow", argv, recipes=ECG_FLOW_RECIPES)
    args = run.args
    suffix = config_suffix(args.config)
    summary = train(run.config, run.recipe, run.out, args.frame_ae or f"weights/frame_ae{suffix}",
                    args.motion or f"weights/motion{suffix}", args.ecg_mae or f"weights/ecg_mae{suffix}", args.pairs,
                    args.dataset or args.config, args.resume, args.device, args.max_steps, run.command,
                    max_minutes=args.max_minutes)
    if summary:
        print(json.dumps(summary["selected"]))


if __name__ == "__main__":
    main()
