"""Train the 3D-VAE (KL) whose latent space the cine generators (MAR, ECG flow) work in.

    python -m training.train_vae3d [--config default|paper] [--out weights/vae3d] [--epochs N] [--resume]

Trains on the real training split only (augmented: one affine per cine, intensity jitter, random
spatio-temporal crops), loss = L1 + ssim_weight * (1 - SSIM) on valid (non-padded) pixels + kl_weight * KL
(SD convention: summed KL over summed pixel loss); all of it is the config's ``recipe``. Selects the epoch with
the best validation PSNR, computes the latent scale (1 / std of the training-set posterior means) and stores it
in config.json (the config's ``stats``), then measures validation and test PSNR/SSIM (bootstrap 95 % CIs over
patients) and CPU speed for the model card. The reconstruction sheet and ``reports/vae3d/metrics.json``:
``python -m evaluation.vae3d_report`` (``--bench``: the speed alone).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.measure.metrics import bootstrap_ci
from cardiosynth.measure.timing import time_callable
from cardiosynth.models.cards.vae3d import model_card
from cardiosynth.models.latents import LatentStats
from cardiosynth.models.vae3d import CONFIGS, VAE3D, VAE3DConfig, kl_divergence, masked_metrics, ssim_map
from cardiosynth.paths import cache_dir
from training.augment import jitter_intensity, random_affine, warp
from training.common import (JsonlLog, checkpoint_exists, load_checkpoint, parse_training_run, pick_device,
                             save_checkpoint, seed_everything, training_parser)
from training.recipes import VAE3D_RECIPES, VAE3DRecipe


def augment(cines: torch.Tensor, valid: torch.Tensor, recipe: VAE3DRecipe, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, H, W) in [0, 1], (B, H, W) bool -> augmented and randomly cropped (B, Tc, Hc, Wc), (B, Hc, Wc), as
    the recipe says."""
    theta = random_affine(len(cines), generator)
    cines = warp(cines, theta)
    valid = warp(valid[:, None].float(), theta)[:, 0] > 0.5
    cines = jitter_intensity(cines, generator, noise_std=recipe.aug_noise_std) * valid[:, None]
    return random_crop(cines, valid, recipe.crop_frames, recipe.crop_size, generator)


def random_crop(cines: torch.Tensor, valid: torch.Tensor, frames: int, size: int, generator: torch.Generator):
    b, t, h, w = cines.shape
    out_c, out_v = [], []
    for i in range(b):
        t0 = int(torch.randint(0, t - frames + 1, (1,), generator=generator))
        y0 = int(torch.randint(0, h - size + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, w - size + 1, (1,), generator=generator))
        out_c.append(cines[i, t0:t0 + frames, y0:y0 + size, x0:x0 + size])
        out_v.append(valid[i, y0:y0 + size, x0:x0 + size])
    return torch.stack(out_c), torch.stack(out_v)


def loss_terms(model: VAE3D, cines: torch.Tensor, valid: torch.Tensor, recipe: VAE3DRecipe,
               generator: torch.Generator | None = None, sample: bool = True) -> dict[str, torch.Tensor]:
    """cines (B, T, H, W) in [0, 1], valid (B, H, W) bool. Padding is excluded from every reconstruction term;
    the recipe weighs the terms."""
    recon, mean, logvar = model(cines[:, None], sample=sample, generator=generator)
    recon = recon[:, 0]
    v = valid[:, None].expand_as(cines).float()
    n_valid = v.sum().clamp_min(1)
    l1 = ((recon - cines).abs() * v).sum() / n_valid
    pasted = recon * v + cines * (1 - v)  # padding neither helps nor hurts SSIM
    ssim = (ssim_map(pasted.flatten(0, 1), cines.flatten(0, 1)).view_as(cines) * v).sum() / n_valid
    kl_sum = kl_divergence(mean, logvar).sum()
    terms = {"l1": l1, "ssim": ssim, "kl_per_element": kl_sum.detach() / mean.numel(),
             "total": l1 + recipe.ssim_weight * (1 - ssim) + recipe.kl_weight * kl_sum / n_valid}
    return terms


@torch.inference_mode()
def reconstruct(model: VAE3D, cines: np.ndarray, batch_size: int = 8) -> torch.Tensor:
    """Posterior-mean reconstructions (N, T, H, W) clipped to [0, 1] of uint8 or float cines."""
    frames = torch.from_numpy(cines.astype(np.float32) / (255.0 if cines.dtype == np.uint8 else 1.0))
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(frames), batch_size):
        mean, _ = model.encode(frames[i:i + batch_size, None].to(device))
        out.append(model.decode(mean)[:, 0].clamp(0, 1).cpu())
    return torch.cat(out)


def evaluate(model: VAE3D, dataset: PreparedDataset) -> dict[str, np.ndarray]:
    """Per-cine PSNR / SSIM on valid pixels of posterior-mean reconstructions."""
    was_training = model.training
    model.eval()
    recon = reconstruct(model, dataset.cines)
    target = torch.from_numpy(dataset.cines.astype(np.float32) / 255.0)
    metrics = masked_metrics(recon, target, torch.from_numpy(dataset.valid))
    model.train(was_training)
    return {k: v.numpy().astype(np.float64) for k, v in metrics.items()}


def summarise(per_cine: dict[str, np.ndarray], subjects: np.ndarray, n_boot: int = 2000) -> dict:
    """Mean over patients (each patient's slices averaged first) with a bootstrap 95 % CI over patients."""
    out = {"n_cines": int(len(subjects)), "n_patients": int(len(np.unique(subjects)))}
    unique = np.unique(subjects)
    for name in ("psnr", "ssim"):
        per_patient = np.array([per_cine[name][subjects == s].mean() for s in unique])
        low, high = bootstrap_ci(lambda idx: per_patient[idx].mean(), len(per_patient), n_boot=n_boot, seed=0)
        out[name] = {"mean": float(per_patient.mean()), "ci95": [low, high],
                     "mean_over_cines": float(per_cine[name].mean())}
    return out


@torch.inference_mode()
def latent_statistics(model: VAE3D, dataset: PreparedDataset) -> dict:
    """Std (-> latent_scale) and mean of training-set posterior means, and the mean posterior std."""
    model.eval()
    means, stds = [], []
    frames = torch.from_numpy(dataset.cines.astype(np.float32) / 255.0)
    for i in range(0, len(frames), 8):
        mean, logvar = model.encode(frames[i:i + 8, None])
        means.append(mean)
        stds.append(torch.exp(0.5 * logvar))
    means, stds = torch.cat(means), torch.cat(stds)
    return {"latent_std": float(means.std()), "latent_mean": float(means.mean()),
            "latent_channel_std": means.std(dim=(0, 2, 3, 4)).tolist(),
            "latent_channel_mean": means.mean(dim=(0, 2, 3, 4)).tolist(),
            "posterior_std_mean": float(stds.mean())}


def bench(model: VAE3D, repeats: int = 10, warmup: int = 3) -> dict:
    """Encode / decode seconds per cine at batch 1 (after warm-up, median of repeats), current thread count."""
    model.eval()
    c = model.config
    x = torch.rand(1, 1, c.frames, c.size, c.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        z = model.encode(x)[0]
        encode = time_callable(lambda: model.encode(x), 1, warmup, repeats)
        decode = time_callable(lambda: model.decode(z), 1, warmup, repeats)
    return {"encode_s_per_cine": encode["seconds_per_cine"], "decode_s_per_cine": decode["seconds_per_cine"],
            "batch": 1, "repeats": repeats, "threads": torch.get_num_threads(),
            "input_shape": [1, 1, c.frames, c.size, c.size], "latent_shape": list(c.latent_shape)}


def train(config: VAE3DConfig, recipe: VAE3DRecipe, out: Path, dataset_name: str = "default", resume: bool = False,
          device: str = "auto", config_name: str = "default") -> dict:
    recipe.check_crops(config)
    generator = seed_everything(recipe.seed)
    device = pick_device(device)
    dataset = load_prepared(dataset_name)
    train_set, val_set = dataset.split("train"), dataset.split("val")
    cines = torch.from_numpy(train_set.cines.astype(np.float32) / 255.0)
    valid = torch.from_numpy(train_set.valid)

    model = VAE3D(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = int(np.ceil(len(train_set) / recipe.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=recipe.epochs * steps_per_epoch,
                                                   pct_start=0.1)
    run_dir = cache_dir() / "runs" / out.name
    log = JsonlLog(run_dir / "log.jsonl")
    start_epoch, best, spent = 0, {"val_psnr": -float("inf")}, 0.0
    if resume and checkpoint_exists(run_dir / "last"):
        meta = load_checkpoint(run_dir / "last", model, optimizer)
        start_epoch, best, spent = meta["extra"]["epoch"] + 1, meta["extra"]["best"], meta["extra"].get("seconds", 0.0)
        generator.set_state(torch.tensor(meta["extra"]["generator_state"], dtype=torch.uint8))
        for _ in range(start_epoch * steps_per_epoch):
            schedule.step()
    started = time.perf_counter() - spent
    model.train()
    for epoch in tqdm(range(start_epoch, recipe.epochs), desc="3D-VAE", unit="epoch"):
        order = torch.randperm(len(train_set), generator=generator)
        sums: dict[str, float] = {}
        for k in range(steps_per_epoch):
            idx = order[k * recipe.batch_size:(k + 1) * recipe.batch_size]
            x, v = augment(cines[idx], valid[idx], recipe, generator)
            terms = loss_terms(model, x.to(device), v.to(device), recipe, generator)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            schedule.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / steps_per_epoch
        record = {"epoch": epoch, **{f"train_{k}": round(v, 6) for k, v in sums.items()}}
        if (epoch + 1) % recipe.eval_every == 0 or epoch == recipe.epochs - 1:
            per_cine = evaluate(model, val_set)
            record.update(val_psnr=float(per_cine["psnr"].mean()), val_ssim=float(per_cine["ssim"].mean()))
            if record["val_psnr"] > best["val_psnr"]:
                best = {"val_psnr": record["val_psnr"], "val_ssim": record["val_ssim"], "epoch": epoch}
                save_checkpoint(run_dir / "best", model, optimizer, step=epoch, extra={"epoch": epoch, "best": best})
        log.write(**record)
        save_checkpoint(run_dir / "last", model, optimizer, step=epoch,
                        extra={"epoch": epoch, "best": best, "seconds": time.perf_counter() - started,
                               "generator_state": generator.get_state().tolist()})

    minutes = (time.perf_counter() - started) / 60
    load_checkpoint(run_dir / "best", model)
    model = model.cpu().eval()
    model.save_pretrained(out, "(model card written by finalise)",
                          extra={"selected": best, "train_minutes": round(minutes, 1), "dataset": dataset_name,
                           "command": command_line(recipe, out, config_name), "train_threads": torch.get_num_threads()},
                          recipe=recipe)
    return finalise(out, dataset_name, train_minutes=minutes)


def command_line(recipe: VAE3DRecipe, out: Path, config_name: str) -> str:
    epochs, threads = recipe.epochs, torch.get_num_threads()
    epochs = "" if epochs == VAE3D_RECIPES[config_name].epochs else f" --epochs {epochs}"
    return f"python -m training.train_vae3d --config {config_name} --out {out}{epochs} --threads {threads}"


def finalise(out: Path, dataset_name: str = "default", train_minutes: float | None = None) -> dict:
    """Finalise saved weights: round them to float16 (bundle < 10 MB; loading casts back to float32), compute
    the latent scale on the training split with the rounded weights, then val/test metrics with CIs and speed on
    exactly the weights that are bundled; rewrites weights, config and model card. Idempotent: rounding rounded
    weights changes nothing. The sheet and ``reports/vae3d/metrics.json``: ``python -m evaluation.vae3d_report``."""
    model = VAE3D.from_pretrained(out)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    dataset = load_prepared(dataset_name)
    stats = latent_statistics(model, dataset.split("train"))
    model.config = dataclasses.replace(model.config, stats=LatentStats(latent_scale=1.0 / stats["latent_std"]))
    results = {}
    for split in ("val", "test"):
        part = dataset.split(split)
        results[split] = summarise(evaluate(model, part), part.table["subject"].to_numpy())
    speed = bench(model)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    payload = json.loads((Path(out) / "config.json").read_text())
    if "recipe" not in payload:
        raise SystemExit(f"{out}/config.json was written before training recipes were saved beside the config; "
                         "train it again with python -m training.train_vae3d")
    extra = payload["extra"]
    extra["latent_statistics"] = stats
    extra["weights_dtype"] = "float16 (cast to float32 on load)"
    if train_minutes is not None:
        extra["train_minutes"] = round(train_minutes, 1)
    extra.update(metrics=results, speed=speed)
    model.save_pretrained(out, model_card(model.config, payload["recipe"], extra), extra=extra, state=state,
                          recipe=payload["recipe"])
    return {"latent_shape": list(model.config.latent_shape), "latent_scale": model.config.stats.latent_scale, **extra}


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "vae3d", threads=True)
    run = parse_training_run(parser, CONFIGS, "vae3d", "train_vae3d", argv, recipes=VAE3D_RECIPES)
    args, out = run.args, run.out
    summary = train(run.config, run.recipe, out, args.dataset or args.config, args.resume, args.device, args.config)
    print(json.dumps({k: summary[k] for k in ("latent_shape", "latent_scale", "metrics", "speed", "selected")}, indent=2))


if __name__ == "__main__":
    main()
