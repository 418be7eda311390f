"""Train the frame autoencoder (the anatomy half of the anatomy + motion representation).

    python -m training.train_frame_ae [--config default|paper] [--out weights/frame_ae] [--epochs N] [--resume]

Every frame of every training-split cine is a training example (5,104 frames for the default config),
augmented by one random affine and an intensity jitter each. Loss: L1 + perceptual (bundled segmenter's
encoder features) + KL, and from ``recipe.adversarial_start_epoch`` on a least-squares patch-adversarial term
(MONAI ``PatchDiscriminator`` + ``PatchAdversarialLoss``). Everything the loop reads is the config's ``recipe``;
what it fits is ``stats`` (the latent scale, after the last epoch). The EMA of the weights after the last epoch
is bundled: a fixed schedule, so validation only reports (val PSNR per epoch in the log), it selects nothing.
Resumable: ``--resume`` continues from the last finished epoch (autoencoder, EMA, discriminator, both
optimizers and the random state are in the checkpoint).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from tqdm import tqdm

from cardiosynth.data.dataset import load_prepared
from cardiosynth.models.cards.frame_ae import model_card
from cardiosynth.models.frame_ae import (CONFIGS, FrameAEConfig, FrameAutoencoder, encode_frames,
                                         kl_per_element, perceptual_distance)
from cardiosynth.models.latents import LatentStats
from cardiosynth.models.segmenter import Segmenter
from cardiosynth.paths import cache_dir
from training.augment import jitter_intensity, random_affine, warp
from training.common import (JsonlLog, checkpoint_exists, config_suffix, cosine_lr, ema_update,
                             load_checkpoint, parse_training_run, pick_device, save_checkpoint, seed_everything,
                             training_parser)
from training.recipes import FRAME_AE_RECIPES, FrameAERecipe


def augment(frames: torch.Tensor, recipe: FrameAERecipe, generator: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) -> the same frames, each under its own random affine and intensity jitter (as the recipe says)."""
    theta = random_affine(len(frames), generator, recipe.aug_rotate_deg, recipe.aug_scale, recipe.aug_shift)
    return jitter_intensity(warp(frames, theta), generator, noise_std=recipe.aug_noise_std)


def discriminator(recipe: FrameAERecipe) -> PatchDiscriminator:
    return PatchDiscriminator(spatial_dims=2, channels=recipe.disc_channels, in_channels=1,
                              num_layers_d=recipe.disc_layers)


@torch.inference_mode()
def val_psnr(model: FrameAutoencoder, frames: torch.Tensor) -> float:
    """Mean PSNR (dB) of posterior-mean reconstructions of (N, 1, H, W) frames."""
    recon = torch.cat([model(frames[i:i + 128], sample=False)[0].clamp(0, 1) for i in range(0, len(frames), 128)])
    mse = (recon - frames).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.inference_mode()
def latent_std(model: FrameAutoencoder, frames: torch.Tensor) -> float:
    return float(encode_frames(model, frames[:, 0]).std())


def initial_model(config: FrameAEConfig, recipe: FrameAERecipe) -> FrameAutoencoder:
    """A fresh autoencoder, or (the recipe's ``init_from``) the weights of a trained one with its fitted
    statistics, its encoder frozen with ``freeze_encoder`` so its latent space stays exactly as it was."""
    if not recipe.init_from:
        return FrameAutoencoder(config)
    start = FrameAutoencoder.from_pretrained(recipe.init_from)
    kept = ("size", "channels", "res_blocks", "latent_channels", "norm_groups")
    if any(getattr(start.config, k) != getattr(config, k) for k in kept):
        raise ValueError(f"{recipe.init_from} does not have the architecture of config {config.name!r}")
    model = FrameAutoencoder(dataclasses.replace(config, stats=start.config.stats))
    model.load_state_dict(start.state_dict())
    if recipe.freeze_encoder:
        for parameter in model.encoder_parameters():
            parameter.requires_grad_(False)
    return model


def train(config: FrameAEConfig, recipe: FrameAERecipe, out: Path, dataset_name: str, resume: bool, device: str,
          command: str, segmenter_folder: str = "segmenter") -> dict:
    generator = seed_everything(recipe.seed)
    device = pick_device(device)
    dataset = load_prepared(dataset_name)
    train_frames = torch.from_numpy(dataset.split("train").cines.astype(np.float32) / 255.0).flatten(0, 1)[:, None]
    val_frames = torch.from_numpy(dataset.split("val").cines[:, ::4].astype(np.float32) / 255.0).flatten(0, 1)[:, None]
    segmenter = Segmenter.from_pretrained(segmenter_folder, fuse=True).to(device).requires_grad_(False)
    model = initial_model(config, recipe).to(device)
    disc = discriminator(recipe).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    opt_g = torch.optim.AdamW(trained, lr=recipe.lr, weight_decay=0.0, betas=(0.5, 0.9))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=recipe.disc_lr, weight_decay=0.0, betas=(0.5, 0.9))
    adversarial = PatchAdversarialLoss(criterion="least_squares")
    steps_per_epoch = len(train_frames) // recipe.batch_size
    total_steps = recipe.epochs * steps_per_epoch
    run_dir = cache_dir() / "runs" / out.name
    log = JsonlLog(run_dir / "log.jsonl")
    both = torch.nn.ModuleDict({"model": model, "ema": ema})
    start_epoch, step, spent = 0, 0, 0.0
    if resume and checkpoint_exists(run_dir / "last"):
        meta = load_checkpoint(run_dir / "last", both, opt_g)
        load_checkpoint(run_dir / "last_disc", disc, opt_d)
        start_epoch, step, spent = meta["extra"]["epoch"] + 1, meta["extra"]["step"], meta["extra"]["seconds"]
        generator.set_state(torch.tensor(meta["extra"]["generator_state"], dtype=torch.uint8))
    started = time.perf_counter() - spent
    for epoch in tqdm(range(start_epoch, recipe.epochs), desc="frame AE", unit="epoch", initial=start_epoch,
                      total=recipe.epochs):
        model.train(), disc.train()
        use_adversarial = epoch >= recipe.adversarial_start_epoch
        order = torch.randperm(len(train_frames), generator=generator)
        sums: dict[str, float] = {}
        for k in range(steps_per_epoch):
            for group in opt_g.param_groups:
                group["lr"] = cosine_lr(step, total_steps, recipe.lr, warmup_steps=100, min_ratio=0.1)
            x = augment(train_frames[order[k * recipe.batch_size:(k + 1) * recipe.batch_size]], recipe, generator)
            x = x.to(device)
            recon, mean, std = model(x)
            terms = {"l1": (recon - x).abs().mean(), "perceptual": perceptual_distance(segmenter, recon, x),
                     "kl": kl_per_element(mean, std)}
            loss = terms["l1"] + recipe.perceptual_weight * terms["perceptual"] + recipe.kl_weight * terms["kl"]
            if use_adversarial:
                terms["g_adv"] = adversarial(disc(recon)[-1], target_is_real=True, for_discriminator=False)
                loss = loss + recipe.adversarial_weight * terms["g_adv"]
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            ema_update(ema, model, recipe.ema_decay, step)
            if use_adversarial:
                d_loss = 0.5 * (adversarial(disc(recon.detach())[-1], target_is_real=False, for_discriminator=True)
                                + adversarial(disc(x)[-1], target_is_real=True, for_discriminator=True))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                terms["d_adv"] = d_loss
            step += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / steps_per_epoch
        record = {"epoch": epoch, "step": step, **{f"train_{k}": round(v, 5) for k, v in sums.items()},
                  "val_psnr_ema": round(val_psnr(ema, val_frames.to(device)), 3)}
        log.write(**record)
        extra = {"epoch": epoch, "step": step, "seconds": time.perf_counter() - started,
                 "generator_state": generator.get_state().tolist()}
        save_checkpoint(run_dir / "last_disc", disc, opt_d, step, extra=extra)
        save_checkpoint(run_dir / "last", both, opt_g, step, extra=extra)

    minutes = (time.perf_counter() - started) / 60
    ema = ema.cpu()
    with torch.no_grad():  # bundle float16 (cast back on load): measure exactly those weights from here on
        for tensor in ema.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    if not recipe.freeze_encoder:  # a frozen encoder keeps the scale the latents were drawn in
        ema.config = dataclasses.replace(config, stats=LatentStats(latent_scale=1.0 / latent_std(ema, train_frames)))
    extra = {"train_minutes": round(minutes, 1), "train_threads": torch.get_num_threads(), "dataset": dataset_name,
             "command": command, "n_train_frames": len(train_frames), "steps": step,
             "val_psnr_ema_frames": val_psnr(ema, val_frames),
             "weights_dtype": "float16 (cast to float32 on load)"}
    state = {k: v.half() if v.is_floating_point() else v for k, v in ema.state_dict().items()}
    depends_on = {"segmenter": segmenter_folder, **({"encoder_of": recipe.init_from} if recipe.init_from else {})}
    ema.save_pretrained(out, model_card(ema.config, dataclasses.asdict(recipe), extra), extra=extra, state=state,
                        depends_on=depends_on, recipe=recipe)
    return extra


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "frame_ae", threads=True)
    parser.add_argument("--segmenter", help="segmenter of the perceptual loss (default weights/segmenter, or "
                        "segmenter_<config>)")
    run = parse_training_run(parser, CONFIGS, "frame_ae", "train_frame_ae", argv, recipes=FRAME_AE_RECIPES)
    args, config = run.args, run.config
    segmenter = args.segmenter or f"segmenter{config_suffix(config.data_config)}"
    summary = train(config, run.recipe, run.out, args.dataset or config.data_config, args.resume, args.device,
                    run.command, segmenter)
    print(json.dumps(summary, indent=2))
    FrameAutoencoder.from_pretrained(run.out)  # the bundle loads (sha256 checked)


if __name__ == "__main__":
    main()
