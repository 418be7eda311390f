"""Train the spatio-temporal cine encoder whose features define our Fréchet distance.

    python -m training.train_cine_encoder [--config default|paper] [--out weights/cine_encoder] [--resume]

Trains on the real training split (augmented), selects the epoch with the lowest validation loss, and
writes safetensors + config + model card.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cardiosynth.data.dataset import load_prepared
from cardiosynth.models.cards.cine_encoder import model_card
from cardiosynth.models.cine_encoder import CONFIGS, GROUPS, CineEncoder, CineEncoderConfig
from cardiosynth.paths import cache_dir
from training.augment import jitter_intensity, random_affine, warp
from training.common import (JsonlLog, checkpoint_exists, load_checkpoint, parse_training_run, pick_device,
                             save_checkpoint, seed_everything, training_parser)
from training.recipes import CINE_ENCODER_RECIPES, CineEncoderRecipe


def tensors(dataset, config: CineEncoderConfig, scaler: dict) -> dict[str, torch.Tensor]:
    table = dataset.table
    phen = (table[list(config.phenotypes)].to_numpy(float) - scaler["mean"]) / scaler["std"]
    return {
        "cines": torch.from_numpy(dataset.cines.astype(np.float32) / 255.0),
        "group": torch.tensor([GROUPS.index(g) for g in table["group"]]),
        "position": torch.tensor(table["slice_position"].to_numpy(np.float32)),
        "phenotypes": torch.tensor(phen, dtype=torch.float32),
    }


def shuffle_frames(cines: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Permute the frames of a random half of the batch; returns (cines, shuffled labels)."""
    labels = torch.rand(len(cines), generator=generator) < 0.5
    out = cines.clone()
    for i in torch.nonzero(labels).flatten().tolist():
        out[i] = cines[i, torch.randperm(cines.shape[1], generator=generator)]
    return out, labels.float()


def losses(model: CineEncoder, batch: dict, generator: torch.Generator | None, augment: bool) -> dict:
    cines = batch["cines"]
    if augment:
        cines = jitter_intensity(warp(cines, random_affine(len(cines), generator)), generator)
    shuffled_input, shuffled = shuffle_frames(cines, generator) if generator is not None else (cines, torch.zeros(len(cines)))
    out = model(shuffled_input[:, None])
    keep = shuffled == 0  # anatomy heads learn from coherent cines only
    terms = {"shuffle": F.binary_cross_entropy_with_logits(out["shuffled"], shuffled)}
    if keep.any():
        terms["group"] = F.cross_entropy(out["group"][keep], batch["group"][keep])
        terms["position"] = F.mse_loss(out["position"][keep], batch["position"][keep]) * 10
        terms["phenotypes"] = F.mse_loss(out["phenotypes"][keep], batch["phenotypes"][keep])
    terms["total"] = sum(terms.values())
    return terms


@torch.no_grad()
def evaluate(model: CineEncoder, data: dict, seed: int = 123) -> dict:
    """Validation loss (fixed shuffles) and group accuracy on unshuffled cines."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    terms = losses(model, data, generator, augment=False)
    out = model(data["cines"][:, None])
    accuracy = (out["group"].argmax(1) == data["group"]).float().mean()
    model.train()
    return {"val_loss": float(terms["total"]), "val_group_accuracy": float(accuracy),
            "val_position_mae": float((out["position"] - data["position"]).abs().mean())}


def train(config: CineEncoderConfig, recipe: CineEncoderRecipe, out: Path, dataset_name: str = "default",
          resume: bool = False, device: str = "auto") -> dict:
    generator = seed_everything(recipe.seed)
    device = pick_device(device)
    dataset = load_prepared(dataset_name)
    train_set, val_set = dataset.split("train"), dataset.split("val")
    values = train_set.table[list(config.phenotypes)].to_numpy(float)
    scaler = {"mean": values.mean(0), "std": values.std(0)}
    train_data, val_data = tensors(train_set, config, scaler), tensors(val_set, config, scaler)

    model = CineEncoder(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = int(np.ceil(len(train_set) / recipe.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
    run_dir = cache_dir() / "runs" / out.name
    log = JsonlLog(run_dir / "log.jsonl")
    start_epoch, best = 0, {"val_loss": float("inf")}
    if resume and checkpoint_exists(run_dir / "last"):
        meta = load_checkpoint(run_dir / "last", model, optimizer)
        start_epoch, best = meta["extra"]["epoch"] + 1, meta["extra"]["best"]
        for _ in range(start_epoch * steps_per_epoch):
            schedule.step()
    started = time.perf_counter()
    for epoch in tqdm(range(start_epoch, recipe.epochs), desc="cine encoder", unit="epoch"):
        order = torch.randperm(len(train_set), generator=generator)
        for k in range(steps_per_epoch):
            idx = order[k * recipe.batch_size:(k + 1) * recipe.batch_size]
            batch = {key: value[idx].to(device) for key, value in train_data.items()}
            terms = losses(model, batch, generator, augment=True)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            schedule.step()
        metrics = evaluate(model, val_data)
        log.write(epoch=epoch, train_loss=float(terms["total"]), **metrics)
        if metrics["val_loss"] < best["val_loss"]:
            best = {**metrics, "epoch": epoch}
            save_checkpoint(run_dir / "best", model, optimizer, step=epoch, extra={"epoch": epoch, "best": best})
        save_checkpoint(run_dir / "last", model, optimizer, step=epoch, extra={"epoch": epoch, "best": best})

    load_checkpoint(run_dir / "best", model)
    minutes = (time.perf_counter() - started) / 60
    card = model_card(config, best, minutes, dataset_name)
    model.cpu().save_pretrained(out, card,
                                extra={"phenotype_scaler": {k: v.tolist() for k, v in scaler.items()}, "groups": GROUPS,
                           "selected": best, "train_minutes": round(minutes, 1), "dataset": dataset_name},
                                recipe=recipe)
    return best


def main(argv: list[str] | None = None) -> None:
    run = parse_training_run(training_parser(__doc__, CONFIGS, "cine_encoder"), CONFIGS, "cine_encoder",
                             "train_cine_encoder", argv, recipes=CINE_ENCODER_RECIPES)
    print(train(run.config, run.recipe, run.out, run.args.dataset or run.args.config, run.args.resume, run.args.device))


if __name__ == "__main__":
    main()
