"""Train the phenotype-conditioned MAR (masked autoregressive transformer + per-token diffusion loss).

    python -m training.train_mar [--config default|vae3d|paper] [--frame-ae weights/frame_ae] [--motion weights/motion]
                                 [--vae weights/vae3d] [--out FOLDER] [--epochs N] [--resume] [--max-steps N]
                                 [--max-minutes M] [--dataset NAME|FOLDER] [--device auto]

``default``: the anatomy + motion MAR (bundled as ``weights/mar_motion``, the editor); ``vae3d``: the MAR on
3D-VAE latents (bundled as ``weights/mar``, the de novo generator); ``paper``: the anatomy + motion MAR at the
paper's scale (a GPU).

1. Encodes the train and val split cines into the config's representation (packed anatomy + motion codes,
   :mod:`cardiosynth.models.anatomy_motion`, or 3D-VAE latents) once and caches them under
   ``cache_dir()/mar_latents``, keyed by the models' sha256: the clean train latents plus ``augment_copies``
   encodings of randomly warped / intensity-jittered train cines (each epoch draws one version per cine;
   ~300 cines need the help), and the clean val latents.
2. Standardises the phenotypes with the train split's mean and SD; the scaler goes into the saved config and is
   never refit. An augmented version that zoomed the heart by s is conditioned on volumes and mass x s^2.
3. Trains with AdamW (warmup + cosine), gradient clipping and an EMA; every ``eval_every`` epochs the EMA
   model's validation diffusion loss (fixed seeds, so comparable across epochs) selects the checkpoint.
4. Writes ``--out`` (EMA weights, config with the scaler, model card) pinned to the representation's sha256.

Resumable (``--resume``) from ``cache_dir()/runs/<out name>/last``; each epoch's randomness comes from the seed
and the epoch number, so a resumed run continues the same run. Several GPUs (or CPU workers):
``torchrun --nproc-per-node 4 -m training.train_mar --config paper`` (DistributedDataParallel; each rank takes a
disjoint share of every epoch, the global batch is ``batch_size`` x processes; rank 0 validates, logs, saves).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from cardiosynth import phenotypes as ph
from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.models.anatomy_motion import AnatomyMotionCodec
from cardiosynth.models.cards.mar import model_card
from cardiosynth.models.mar import CONFIGS, MAR, MARConfig, PhenotypeScaler, standardise_phenotypes
from cardiosynth.models.vae3d import VAE3D, encode_cines
from cardiosynth.paths import cache_dir
from cardiosynth.weights import read_config, resolve
from training.augment import jitter_intensity, random_affine, warp
from training.common import (Budget, EpochLoop, adamw, cosine_lr, distributed_trainer, init_distributed,
                             main_process_first, parse_training_run, pick_device, seed_everything, store_compact,
                             training_parser)
from training.recipes import MAR_RECIPES, MARRecipe

VAL_SEED = 12345
# where each config's weights go: the bundled editor (anatomy + motion), the bundled de novo MAR, the GPU-scale one
DEFAULT_OUT = {"default": "weights/mar_motion", "vae3d": "weights/mar", "paper": "weights/mar_paper"}


# ---------------------------------------------------------------------------------------------------------
# Data: cached packed anatomy + motion codes and standardised conditions


def _frames(dataset: PreparedDataset) -> torch.Tensor:
    return torch.from_numpy(dataset.cines.astype(np.float32) / 255.0)


def area_factor(theta: torch.Tensor) -> torch.Tensor:
    """(B,) factor by which :func:`training.augment.warp` with affines ``theta`` (B, 2, 3) scales areas: the
    grid maps output to input coordinates, so areas grow by 1 / |det|."""
    return 1.0 / torch.linalg.det(theta[:, :, :2]).abs()


def representation_folders(config: MARConfig, frame_ae=None, motion=None, vae=None) -> dict[str, Path]:
    """The models that encode (and decode) the config's representation, resolved (a clear error if untrained)."""
    if config.representation == "vae3d":
        return {"vae3d": resolve(vae or "vae3d")}
    return {"frame_ae": resolve(frame_ae or "frame_ae"), "motion": resolve(motion or "motion")}


def _encoder(folders: dict[str, Path], device: torch.device):
    """cines (N, T, H, W) -> latents of the representation, 64 cines at a time."""
    if "vae3d" in folders:
        vae = VAE3D.from_pretrained(str(folders["vae3d"])).to(device)
        return lambda cines: encode_cines(vae, cines)

    codec = AnatomyMotionCodec.from_pretrained(str(folders["frame_ae"]), str(folders["motion"])).to(device)
    return lambda cines: torch.cat([codec.encode_codes(cines[i:i + 64]) for i in range(0, len(cines), 64)])


def compute_latents(folders: dict[str, Path], dataset: PreparedDataset, dataset_name: str, copies: int, seed: int,
                    device: torch.device) -> dict[str, np.ndarray]:
    """``train`` (1 + copies, N, C, t, h, w) -- index 0 un-augmented -- and ``val`` (N, C, t, h, w) latents of the
    representation ``folders`` name (:func:`representation_folders`), plus ``area_factor`` (1 + copies, N): how
    much each version's warp scaled the heart's areas (1 for the clean one), so the volumes it is conditioned on
    can follow. Cached by the models' sha256 so a retrained model never reuses stale latents."""
    shas = "_".join(f"{name}{read_config(folder)['sha256'][:12]}" for name, folder in folders.items())
    path = cache_dir() / "mar_latents" / f"{Path(str(dataset_name)).name}_{shas}_aug{copies}_seed{seed}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in ("train", "val", "area_factor")}
    encode = _encoder(folders, device)
    train, val = _frames(dataset.split("train")), _frames(dataset.split("val"))
    generator = torch.Generator().manual_seed(seed)
    versions, factors = [encode(train)], [torch.ones(len(train))]
    for _ in tqdm(range(copies), desc="augmented latents", unit="copy"):
        theta = random_affine(len(train), generator)
        augmented = jitter_intensity(warp(train, theta), generator).clamp(0, 1)
        versions.append(encode(augmented))
        factors.append(area_factor(theta))
    arrays = {"train": torch.stack(versions).numpy(), "val": encode(val).numpy(),
              "area_factor": torch.stack(factors).numpy()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), **arrays)
    path.with_suffix(".tmp.npz").replace(path)
    return arrays


def fit_scaler(dataset: PreparedDataset, config: MARConfig) -> MARConfig:
    """The config with the train split's phenotype mean / SD (one row per slice cine, as trained on)."""
    values = dataset.split("train").table[list(config.phenotypes)].to_numpy(np.float64)
    return dataclasses.replace(config, scaler=PhenotypeScaler(mean=tuple(values.mean(0).tolist()),
                                                              std=tuple(values.std(0).tolist())))


def condition_tensors(table, config: MARConfig, area_factor: np.ndarray | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised phenotypes (N, P) and slice positions (N,). With ``area_factor`` (V, N) from
    :func:`compute_latents`, the phenotypes are (V, N, P): each augmented version's volumes and mass scaled as
    its warp scaled the heart (EF unchanged), so a zoomed heart is never labelled with the original size."""
    values = table[list(config.phenotypes)].to_numpy(np.float64)
    if area_factor is not None:
        scales = np.array([n in ph.AREA_SCALED for n in config.phenotypes])
        values = values * np.where(scales, np.asarray(area_factor, np.float64)[..., None], 1.0)
    return (torch.tensor(standardise_phenotypes(values, config), dtype=torch.float32),
            torch.tensor(table["slice_position"].to_numpy(np.float32)))


# ---------------------------------------------------------------------------------------------------------
# Training loop (independent of the representation and of the dataset files, so tests can run it on random latents)


def learning_rate(step: int, total_steps: int, recipe: MARRecipe) -> float:
    """Linear warmup, then cosine decay to ``lr * min_lr_ratio``."""
    return cosine_lr(step, total_steps, recipe.lr, recipe.warmup_steps, recipe.min_lr_ratio)


def make_optimizer(model: nn.Module, recipe: MARRecipe) -> torch.optim.AdamW:
    return adamw(model, recipe.lr, recipe.weight_decay, recipe.betas)


@torch.no_grad()
def validation_loss(model: MAR, latents: torch.Tensor, phenotypes: torch.Tensor, positions: torch.Tensor,
                    batch_size: int, repeats: int = 2, loss_options: dict | None = None) -> float:
    """Mean diffusion loss over the set with fixed seeds (masks, orders, timesteps, noise): comparable across
    epochs, so it can select the checkpoint. ``loss_options``: the recipe's masking (MARRecipe.loss_options)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for r in range(repeats):
        generator = torch.Generator().manual_seed(VAL_SEED + r)
        for i in range(0, len(latents), batch_size):
            sl = slice(i, i + batch_size)
            loss = model.loss(latents[sl].to(device), phenotypes[sl], positions[sl], generator, **(loss_options or {}))
            total, count = total + float(loss) * len(latents[sl]), count + len(latents[sl])
    model.train(was_training)
    return total / count


def fit(config: MARConfig, recipe: MARRecipe, train_latents: torch.Tensor,
        train_conditions: tuple[torch.Tensor, torch.Tensor], val_latents: torch.Tensor,
        val_conditions: tuple[torch.Tensor, torch.Tensor], run_dir: Path, resume: bool = False,
        device: str | torch.device = "auto", max_steps: int | None = None, progress: bool = True,
        max_minutes: float | None = None) -> tuple[MAR, dict]:
    """Train on ``train_latents`` (versions, N, C, t, h, w) with ``train_conditions`` = (phenotypes (N, P), or
    (versions, N, P) when they differ per version, and positions (N,)); return the EMA model of the best
    validation epoch and its metrics. Checkpoints (model + EMA + optimizer) go to ``run_dir``, the log to ``run_dir/log.jsonl``."""
    seed_everything(recipe.seed)
    device = pick_device(device) if isinstance(device, str) else device
    rank, world, device = init_distributed(device)  # torchrun: one process per GPU (or CPU worker)
    model = MAR(config).to(device)
    trainer = distributed_trainer(model, device, world)
    phenotypes, positions = train_conditions

    def step_loss(idx: torch.Tensor, version: torch.Tensor, generator: torch.Generator) -> dict:
        conditions = phenotypes[version[idx], idx] if phenotypes.dim() == 3 else phenotypes[idx]
        return {"loss": trainer(train_latents[version[idx], idx].to(device), conditions, positions[idx], generator,
                                **recipe.loss_options())}

    def validate(ema: MAR) -> tuple[dict, dict]:
        scores = {"val_loss": validation_loss(ema, val_latents, *val_conditions, recipe.batch_size,
                                              loss_options=recipe.loss_options())}
        return scores, scores

    loop = EpochLoop(model, trainer, make_optimizer(model, recipe), run_dir, "val_loss", n=train_latents.shape[1],
                     recipe=recipe, lr=lambda step, total: learning_rate(step, total, recipe), step_loss=step_loss,
                     validate=validate,
                     versions=train_latents.shape[0], rank=rank, world=world, desc="MAR")
    return loop.run(resume, Budget(max_steps, max_minutes), progress)


# ---------------------------------------------------------------------------------------------------------
# Command


def train(config: MARConfig, recipe: MARRecipe, out: Path, folders: dict[str, Path],
          dataset_name: str = "default", resume: bool = False, device: str = "auto", max_steps: int | None = None,
          command: str = "", max_minutes: float | None = None) -> dict:
    """Train on the representation ``folders`` name (:func:`representation_folders`) and write ``out``."""
    rank, world, device = init_distributed(pick_device(device))
    dataset = load_prepared(dataset_name)
    # the pixel size of its cines is part of the model: recorded in its config, which the pipelines read
    config = dataclasses.replace(fit_scaler(dataset, config), spacing_mm=dataset.config.spacing_mm)
    arrays = main_process_first(rank, world, lambda: compute_latents(folders, dataset, dataset_name,
                                                                     recipe.augment_copies, recipe.seed, device))
    if tuple(arrays["val"].shape[1:]) != config.latent_shape:
        raise ValueError(f"{', '.join(map(str, folders.values()))} give latents {tuple(arrays['val'].shape[1:])}, "
                         f"but the MAR config expects {config.latent_shape}: use the matching --config")
    latent_std = float(arrays["train"][0].std())
    if not 0.5 < latent_std < 2.0:
        print(f"warning: the training latents have SD {latent_std:.3f}, not ~1: is the representation's "
              "latent scale set?", file=sys.stderr)
    train_set, val_set = dataset.split("train"), dataset.split("val")
    run_dir = cache_dir() / "runs" / out.name
    started = time.perf_counter()
    train_conditions = condition_tensors(train_set.table, config, arrays["area_factor"])
    ema, best = fit(config, recipe, torch.from_numpy(arrays["train"]), train_conditions,
                    torch.from_numpy(arrays["val"]), condition_tensors(val_set.table, config), run_dir, resume,
                    device, max_steps, max_minutes=max_minutes)
    minutes = (time.perf_counter() - started) / 60
    if rank != 0:
        return best
    card = model_card(config, dataclasses.asdict(recipe), best, minutes, dataset_name, command,
                      ema.count_parameters(), len(train_set), len(val_set), folders)
    ema.save_pretrained(out, card, depends_on=folders, recipe=recipe,
                        extra={"selected": best, "train_minutes": round(minutes, 1), "dataset": str(dataset_name),
                           **{f"{name}_folder": str(folder) for name, folder in folders.items()},
                           "train_latent_std": latent_std, "n_train": len(train_set), "n_val": len(val_set),
                           "parameters": ema.count_parameters(), "command": command, "device": str(device),
                           "threads": torch.get_num_threads()})
    store_compact(out)  # ~12 MB instead of ~45 MB in weights/
    return best


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "mar", max_steps=True, max_minutes=True,
                             out_help="weights folder (default: weights/mar_motion, weights/mar for vae3d, "
                                      "weights/mar_paper)")
    parser.add_argument("--frame-ae", default=None, help="frame autoencoder folder (default weights/frame_ae[_<config>])")
    parser.add_argument("--motion", default=None, help="motion model folder (default weights/motion[_<config>])")
    parser.add_argument("--vae", default=None, help="3D-VAE folder, for the vae3d config (default weights/vae3d)")
    run = parse_training_run(parser, CONFIGS, "mar", "train_mar", argv, default_out=lambda a: DEFAULT_OUT[a.config],
                             recipes=MAR_RECIPES)
    args, config = run.args, run.config
    paper = args.config == "paper"
    suffix = "_paper" if paper else ""
    folders = representation_folders(config, args.frame_ae or f"weights/frame_ae{suffix}",
                                     args.motion or f"weights/motion{suffix}", args.vae or f"weights/vae3d{suffix}")
    best = train(config, run.recipe, run.out, folders, args.dataset or ("paper" if paper else "default"), args.resume,
                 args.device, args.max_steps, command=run.command, max_minutes=args.max_minutes)
    print(json.dumps(best))


if __name__ == "__main__":
    main()
