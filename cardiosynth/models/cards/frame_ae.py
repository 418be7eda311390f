"""Model card of the frame autoencoder (``weights/frame_ae``), from its config and its training ``extra``."""

from __future__ import annotations

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.frame_ae import FrameAEConfig


def model_card(config: FrameAEConfig, recipe: dict, extra: dict) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``)."""
    c, h, w = config.latent_shape
    r = recipe  # short names keep the card's lines within 120 characters
    val_psnr_frames = extra.get("val_psnr_ema_frames", float("nan"))
    stage = (f"- Second stage: started from `weights/{r['init_from']}`"
             + (", its encoder frozen (same latents, same scale); only the decoder trained.\n" if r['freeze_encoder']
                else ".\n")) if r['init_from'] else ""
    discriminator = f"{r['disc_layers']} layers, {r['disc_channels']} channels"
    return f"""# CardioSynth frame autoencoder (anatomy)

A 2D KL autoencoder (MONAI `AutoencoderKL`, no attention) for single short-axis frames 1 x {config.size} x
{config.size} in [0, 1]; latent {c} x {h} x {w} (f = {config.factor}; channels {", ".join(map(str, config.channels))}).
It codes a cine's end-diastolic frame (the anatomy); the motion model warps that frame through the cycle
(`weights/motion`). Generators work on scaled latents: posterior mean x latent_scale = {config.stats.latent_scale:.5f}.

- Data: every frame of the ACDC training-split cines ({extra.get("n_train_frames")} frames of the
  `{extra.get("dataset")}` prepared set), one random affine (rotation +-{r['aug_rotate_deg']} deg, scale
  {r['aug_scale'][0]}-{r['aug_scale'][1]}, shift) and intensity jitter per frame.
- Loss: L1 + {r['perceptual_weight']} x perceptual (LPIPS-style distance on the bundled segmenter's encoder
  features) + {r['kl_weight']:g} x KL; from epoch {r['adversarial_start_epoch']} + {r['adversarial_weight']} x
  least-squares patch-adversarial (MONAI `PatchDiscriminator`, {discriminator}).
{stage}- Schedule: {r['epochs']} epochs ({extra.get("steps")} steps of {r['batch_size']}), AdamW lr {r['lr']:g} cosine,
  EMA {r['ema_decay']}; the EMA after the last epoch is bundled (nothing selected on validation).
- Command: `{extra.get("command")}` ({extra.get("train_minutes")} min on {extra.get("train_threads")} CPU thread(s)).
- Validation frames (every 4th frame of the val cines), posterior mean: PSNR {val_psnr_frames:.2f} dB.
  What the whole representation does to held-out cines (automated Turing test, anatomy checks, LVEF,
  PSNR, speed) is in `weights/motion/README.md` and `reports/anatomy_motion/`.
- Weights stored as float16 (cast to float32 on load); every figure is for exactly these weights.

{ACDC_LICENCE}"""
