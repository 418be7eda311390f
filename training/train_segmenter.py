"""Train the cine segmenter (2D U-Net for RV, MYO, LV) on the ED and ES frames of the prepared ACDC slices.

    python -m training.train_segmenter [--config default] [--out weights/segmenter] [--epochs N] [--resume]

Only ED and ES frames have masks, so those are the training images (the other cine frames cannot be used:
there is nothing to supervise them with). Train split for fitting, val split (mean Dice over RV/MYO/LV) for
choosing the epoch, test split reported once at the end. Augmentation suits short-axis MRI: small rotation,
scale and translation, gamma / contrast / brightness jitter and noise; no flips, because the RV lies on the
same side of the LV in every ACDC slice, so a mirrored heart is anatomy the model will never be shown.

Resumable (``--resume``) from the checkpoint in ``--run-dir``; every epoch's randomness comes from the
recipe's ``seed`` and the epoch number, so a resumed run is the same run. Writes the bundled weights with a model card
whose Dice figures (per patient, bootstrap 95 % CIs over patients) are also stored in ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.data.labels import LABEL_NAMES, LV, STRUCTURES
from cardiosynth.models.cards.segmenter import model_card
from cardiosynth.models.segmenter import (CONFIGS, Segmenter, SegmenterConfig, count_parameters, dice_per_class,
                                          segment_cine)
from cardiosynth.paths import REPO_ROOT, cache_dir
from training.common import (JsonlLog, checkpoint_exists, config_suffix, load_checkpoint, parse_training_run,
                             pick_device, save_checkpoint, seed_everything, training_parser)
from training.recipes import SEGMENTER_RECIPES, SegmenterRecipe

BOOTSTRAP_SAMPLES = 2000


# --------------------------------------------------------------------------------------------- data
def frames_and_masks(ds: PreparedDataset) -> dict[str, torch.Tensor | np.ndarray]:
    """The labelled frames of a split: ED (cine frame 0) then ES, with masks, valid masks and who they are."""
    images = np.concatenate([ds.cines[:, 0], ds.es_images]).astype(np.float32) / 255.0
    return {
        "x": torch.from_numpy(images)[:, None],  # (N, 1, H, W)
        "y": torch.from_numpy(np.concatenate([ds.ed_masks, ds.es_masks]).astype(np.int64)),  # (N, H, W)
        "valid": torch.from_numpy(np.concatenate([ds.valid, ds.valid]).astype(np.float32))[:, None],
        "subject": np.concatenate([ds.table["subject"].to_numpy()] * 2),
        "phase": np.repeat(np.array(["ED", "ES"]), len(ds)),
    }


def augment(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, recipe: SegmenterRecipe,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random similarity transform (images bilinear, labels nearest; outside the field of view stays padding),
    then intensity jitter and noise on the real pixels only (padding stays 0, as in prepared cines); the
    ranges are the recipe's."""
    n = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    angle = (2 * u(n) - 1) * math.radians(recipe.aug_rotate_deg)
    lo, hi = recipe.aug_scale
    scale = lo + (hi - lo) * u(n)
    shift = (2 * u(n, 2) - 1) * recipe.aug_translate_px * 2 / x.shape[-1]  # pixels -> [-1, 1] units
    apply = (u(n) < recipe.aug_probability).float()
    angle, scale, shift = angle * apply, 1 + (scale - 1) * apply, shift * apply[:, None]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    valid = F.grid_sample(valid, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    lo, hi = recipe.aug_gamma
    gamma = torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u(n, 1, 1, 1))
    x = x.clamp(0, 1) ** gamma
    lo, hi = recipe.aug_contrast
    contrast = lo + (hi - lo) * u(n, 1, 1, 1)
    brightness = (2 * u(n, 1, 1, 1) - 1) * recipe.aug_brightness
    mean = (x * valid).sum((2, 3), keepdim=True) / valid.sum((2, 3), keepdim=True).clamp_min(1)
    x = (x - mean) * contrast + mean + brightness
    noise = torch.randn(x.shape, generator=generator) * recipe.aug_noise_std * u(n, 1, 1, 1)
    x = ((x + noise).clamp(0, 1) * valid).contiguous()
    return x, y[:, 0].long()


def loss_fn(logits: torch.Tensor, target: torch.Tensor, config: SegmenterConfig,
            recipe: SegmenterRecipe) -> torch.Tensor:
    """Cross-entropy + soft Dice loss over the foreground classes (batch-level sums), weighted by the recipe."""
    ce = F.cross_entropy(logits, target)
    prob = logits.softmax(dim=1)[:, 1:]
    onehot = F.one_hot(target, config.classes).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (prob * onehot).sum((0, 2, 3))
    dice = (2 * inter + 1) / (prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
    return ce + recipe.dice_weight * (1 - dice.mean())


# --------------------------------------------------------------------------------------------- evaluation
def per_patient_dice(pred: np.ndarray, data: dict) -> dict[str, np.ndarray]:
    """Volumetric Dice per patient and phase (all of a patient's slices at ED, or at ES), averaged over the
    two phases: {subject: [RV, MYO, LV]}."""
    target = data["y"].numpy()
    out = {}
    for subject in dict.fromkeys(data["subject"]):
        phases = [dice_per_class(pred[(data["subject"] == subject) & (data["phase"] == phase)],
                                 target[(data["subject"] == subject) & (data["phase"] == phase)])
                  for phase in ("ED", "ES")]
        out[subject] = np.nanmean(phases, axis=0)
    return out


def summarise(per_patient: dict[str, np.ndarray], seed: int = 0) -> dict:
    """Mean over patients per structure with a bootstrap 95 % CI (patients resampled with replacement)."""
    values = np.stack(list(per_patient.values()))  # (patients, 3)
    rng = np.random.default_rng(seed)
    boots = np.stack([np.nanmean(values[rng.integers(0, len(values), len(values))], axis=0)
                      for _ in range(BOOTSTRAP_SAMPLES)])
    result = {"patients": len(values)}
    for k, label in enumerate(STRUCTURES):
        low, high = np.percentile(boots[:, k], [2.5, 97.5])
        result[LABEL_NAMES[label]] = {"dice": round(float(np.nanmean(values[:, k])), 4),
                                      "ci95": [round(float(low), 4), round(float(high), 4)]}
    mean_boot = np.percentile(boots.mean(axis=1), [2.5, 97.5])
    result["mean"] = {"dice": round(float(np.nanmean(values)), 4), "ci95": [round(float(v), 4) for v in mean_boot]}
    return result


def predict(model: Segmenter, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(chunk).argmax(1) for chunk in x.split(batch)]).to(torch.uint8).numpy()


def es_timing_check(model: Segmenter, ds: PreparedDataset) -> dict:
    """On whole cines (frames without masks): does the frame with the smallest predicted LV area fall within
    one frame of the annotated ES frame? A check that frame-by-frame use behaves on unlabelled frames."""
    labels = segment_cine(model, ds.cines.astype(np.float32) / 255.0)  # (N, T, H, W)
    area = (labels == LV).sum(axis=(2, 3))
    frames = ds.cines.shape[1]
    diff = np.abs(area.argmin(axis=1) - ds.table["es_frame"].to_numpy())
    diff = np.minimum(diff, frames - diff)
    return {"cines": len(ds), "within_1_frame": round(float((diff <= 1).mean()), 4),
            "median_abs_frames": float(np.median(diff))}


# --------------------------------------------------------------------------------------------- training
def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(config: SegmenterConfig, recipe: SegmenterRecipe, out: Path, run_dir: Path, resume: bool = False, device: str = "auto",
          max_steps: int | None = None, checkpoint_every: int = 5, progress: bool = True,
          write_weights: bool = True, command: str = "") -> dict:
    started = time.perf_counter()
    seed_everything(recipe.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    dev = pick_device(device)
    ds = load_prepared(config.data_config)
    if ds.cines.shape[-1] != config.image_size:
        raise ValueError(f"prepared data '{config.data_config}' is {ds.cines.shape[-1]} px, config wants {config.image_size}")
    train_data, val_data = frames_and_masks(ds.split("train")), frames_and_masks(ds.split("val"))
    n_train = len(train_data["x"])
    steps_per_epoch = n_train // recipe.batch_size  # drop_last: BatchNorm never sees a tiny batch
    total_steps = steps_per_epoch * recipe.epochs
    warmup = steps_per_epoch * recipe.warmup_epochs

    model = Segmenter(config).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(run_dir / "log.jsonl")
    ckpt, best_file = run_dir / "last", run_dir / "best.safetensors"
    start_epoch, best = 0, {"score": -1.0, "epoch": -1}
    if resume and checkpoint_exists(ckpt):
        meta = load_checkpoint(ckpt, model, optimizer)
        if meta["extra"].get("config") != json.loads(json.dumps(dataclasses.asdict(config))) or \
                meta["extra"].get("recipe") != json.loads(json.dumps(dataclasses.asdict(recipe))):
            raise ValueError(f"{ckpt} was written with a different config or recipe; start without --resume or use "
                             "its config")
        start_epoch, best = meta["extra"]["epoch"] + 1, meta["extra"]["best"]
        print(f"resumed from {ckpt} after epoch {start_epoch - 1} (best val mean Dice {best['score']:.4f})", file=sys.stderr)
    elif resume:
        print(f"--resume: no checkpoint in {run_dir}, starting fresh", file=sys.stderr)
    if start_epoch == 0:
        log.write(event="start", config=dataclasses.asdict(config), recipe=dataclasses.asdict(recipe),
                  train_images=n_train,
                  val_images=len(val_data["x"]), parameters=count_parameters(model))

    step = start_epoch * steps_per_epoch
    bar = tqdm(total=total_steps, initial=step, desc=f"segmenter[{config.name}]", unit="step",
               disable=not progress, dynamic_ncols=True)
    for epoch in range(start_epoch, recipe.epochs):
        epoch_gen = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)  # resume-proof randomness
        torch.manual_seed(recipe.seed * 100_003 + epoch)  # dropout
        order = torch.randperm(n_train, generator=epoch_gen)
        model.train()
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * recipe.batch_size:(b + 1) * recipe.batch_size]
            x, y = augment(train_data["x"][idx], train_data["y"][idx], train_data["valid"][idx], recipe, epoch_gen)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total_steps, warmup, recipe.lr)
            loss = loss_fn(model(x.to(dev)), y.to(dev), config, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if max_steps is not None and step >= max_steps:
                break
        val = summarise(per_patient_dice(predict(model, val_data["x"].to(dev)), val_data))
        score = val["mean"]["dice"]
        if score > best["score"]:
            best = {"score": score, "epoch": epoch}
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(best_file))
        record = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": round(float(np.mean(losses)), 5),
                  **{f"val_{k}": val[k]["dice"] for k in ("RV", "MYO", "LV", "mean")}, "best": best}
        log.write(**record)
        bar.set_postfix(loss=record["train_loss"], val=score, best=best["score"])
        if (epoch + 1) % checkpoint_every == 0 or epoch == recipe.epochs - 1 or max_steps is not None:
            save_checkpoint(ckpt, model, optimizer, step,
                            extra={"epoch": epoch, "best": best, "config": dataclasses.asdict(config),
                                   "recipe": dataclasses.asdict(recipe)})
        if max_steps is not None and step >= max_steps:
            break
    bar.close()
    train_seconds = time.perf_counter() - started

    model.load_state_dict(load_file(str(best_file)))
    model.eval()
    metrics = {"selected_epoch": best["epoch"], "train_seconds": round(train_seconds, 1),
               "definition": "volumetric Dice per patient and phase (all its slices), mean of ED and ES, mean over "
                             f"patients; 95 % CI: percentile bootstrap over patients ({BOOTSTRAP_SAMPLES} resamples)"}
    for split in ("val", "test"):
        data = frames_and_masks(ds.split(split))
        metrics[split] = summarise(per_patient_dice(predict(model, data["x"].to(dev)), data))
    model.cpu()
    metrics["es_timing_val"] = es_timing_check(model, ds.split("val"))
    metrics["parameters"] = count_parameters(model)
    log.write(event="done", **metrics)
    if write_weights:
        model.save_pretrained(out, model_card(config, dataclasses.asdict(recipe), metrics, command),
                              extra={"metrics": metrics}, recipe=recipe)
    return metrics


def run_folder(args) -> Path:
    """Checkpoints and log of a run; a smoke run (``--max-steps``) never overwrites the real ones."""
    smoke = "_smoke" if args.max_steps is not None else ""
    return Path(args.run_dir) if args.run_dir else cache_dir() / "runs" / f"segmenter_{args.config}{smoke}"


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__.split("\n\n")[0], CONFIGS, "segmenter", dataset=False, max_steps=True,
                             threads=True)
    parser.add_argument("--run-dir", default=None, help="checkpoints and log.jsonl (default .cache/runs/segmenter_<config>)")
    parser.add_argument("--no-progress", action="store_true")
    run = parse_training_run(parser, CONFIGS, "segmenter", "train_segmenter", argv, default_out=lambda a: (
        run_folder(a) / "weights" if a.max_steps is not None else REPO_ROOT / "weights" / f"segmenter{config_suffix(a.config)}"),
        recipes=SEGMENTER_RECIPES)
    args, run_dir = run.args, run_folder(run.args)
    metrics = train(run.config, run.recipe, run.out, run_dir, resume=args.resume, device=args.device, max_steps=args.max_steps,
                    progress=not args.no_progress, command=run.command)
    for split in ("val", "test"):
        m = metrics[split]
        print(f"{split}: " + ", ".join(f"{k} {m[k]['dice']:.3f} [{m[k]['ci95'][0]:.3f}, {m[k]['ci95'][1]:.3f}]"
                                       for k in ("LV", "MYO", "RV", "mean")))
    print(f"weights: {run.out}")


if __name__ == "__main__":
    main()
