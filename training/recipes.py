"""The training recipes: how each trainer trains (schedule, optimiser, loss weights, masking, augmentation), one
frozen dataclass per trainer, with presets named as the model's ``CONFIGS`` are (``--config NAME`` picks both).

A recipe is not part of the model: the model's config (``cardiosynth.models.<model>``) holds what is needed to
build and run it, and nothing here changes a trained model's outputs. A trainer passes the recipe's loss and
augmentation settings to the model's training functions as arguments, and saves the recipe beside the weights
(the top-level ``recipe`` object of ``config.json``, written by :func:`cardiosynth.weights.write_weights`), where
the model card reads it. ``python -m training.<trainer> --epochs N`` changes only the recipe's ``epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CineEncoderRecipe:
    """training.train_cine_encoder: AdamW, one-cycle schedule."""

    epochs: int = 60
    batch_size: int = 16
    lr: float = 2e-3  # peak of the one-cycle schedule
    weight_decay: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class EcgFlowRecipe:
    """training.train_ecg_flow."""

    condition_dropout: float = 0.1  # share of training examples given the null ECG (for CFG)
    epochs: int = 150
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ema_decay: float = 0.998
    grad_clip: float = 1.0
    eval_every: int = 3
    pairs_per_subject: int = 4  # pseudo-pairs: LUDB ECGs per ACDC subject (cardiosynth.data.pairing)
    seed: int = 0


@dataclass(frozen=True)
class EcgMAERecipe:
    """training.train_ecg_mae: the masking, the loss weights, the augmentation and the optimiser."""

    mask_ratio: float = 0.5  # share of the tokens hidden behind the mask token
    phase_weight: float = 1.0
    epochs: int = 150
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    eval_every: int = 5
    shift_tokens: int = 60  # random time shift in training, +- tokens
    noise_std: float = 0.05  # in normalised units
    wander_max: float = 0.3  # baseline wander amplitude, normalised units
    lead_dropout: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class FrameAERecipe:
    """training.train_frame_ae: schedule, loss weights, the patch discriminator, EMA, augmentation, a second
    stage's start."""

    epochs: int = 30  # 30 min on 2 free cores (55-60 s an epoch; 2-3x that when another job shares them)
    batch_size: int = 32
    lr: float = 3e-4
    disc_lr: float = 3e-4
    kl_weight: float = 1e-6  # on the mean KL per latent element, relative to the mean L1 per pixel
    perceptual_weight: float = 0.1  # segmenter-feature distance (LPIPS-style: unit-normalised channels)
    adversarial_weight: float = 0.02  # least-squares patch GAN (MONAI PatchAdversarialLoss)
    adversarial_start_epoch: int = 2  # the discriminator joins once reconstructions are roughly right
    disc_channels: int = 16
    disc_layers: int = 3
    ema_decay: float = 0.999
    seed: int = 0
    # decoder fine-tune (a second stage): start from the weights folder ``init_from`` and train the decoder
    # only, so the latent space (and every model trained on it) stays as it is
    init_from: str = ""
    freeze_encoder: bool = False
    # augmentation: one random affine + intensity jitter per frame
    aug_rotate_deg: float = 12.0
    aug_scale: tuple[float, float] = (0.9, 1.1)
    aug_shift: float = 0.08  # in normalised coordinates (fraction of half the image)
    aug_noise_std: float = 0.01


@dataclass(frozen=True)
class MARRecipe:
    """training.train_mar."""

    condition_dropout: float = 0.1  # share of training examples given the null condition (for CFG)
    # masking (LTH14): ratio ~ truncated normal, mean 1, std 0.25, on [mask_ratio_min, 1]
    mask_ratio_min: float = 0.7
    mask_ratio_std: float = 0.25
    diffusion_batch_mul: int = 4  # noise levels drawn per masked token and step (the denoiser is cheap)
    epochs: int = 120  # 20 steps an epoch at batch 16 on ~320 cines: ~45 min on 2 CPU cores (see train_mar)
    batch_size: int = 16
    lr: float = 4e-4
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio
    warmup_steps: int = 200
    weight_decay: float = 0.02
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 3.0
    ema_decay: float = 0.998  # averages ~the last 500 of 2,000 steps; the paper config uses LTH14's 0.9999
    augment_copies: int = 8  # augmented encodings per training cine (cached), besides the clean one; a zoomed
    # copy is conditioned on volumes and mass x zoom^2, so the copies also spread the conditions (train_mar)
    eval_every: int = 5  # epochs between validation losses (model selection on the EMA model)
    seed: int = 0

    def loss_options(self) -> dict:
        """The keyword arguments of :meth:`cardiosynth.models.mar.MAR.loss` this recipe sets."""
        return {"condition_dropout": self.condition_dropout, "mask_ratio_min": self.mask_ratio_min,
                "mask_ratio_std": self.mask_ratio_std, "diffusion_batch_mul": self.diffusion_batch_mul}


@dataclass(frozen=True)
class PhenotypeVAERecipe:
    """training.train_phenotype_vae."""

    epochs: int = 4000  # full-batch steps (60 patients)
    lr: float = 3e-3
    weight_decay: float = 1e-3
    beta: float = 1.0  # KL weight after warm-up
    kl_warmup: int = 500  # steps of linear KL annealing from 0 to beta
    train_samples: int = 8  # z samples per patient per step
    input_noise: float = 0.0  # SD of Gaussian noise added to the standardised training inputs (smoothing)
    eval_every: int = 50
    patience: int = 1500  # steps without val improvement before stopping
    eval_importance_samples: int = 256  # importance samples for the val NLL used for early stopping
    seed: int = 0


@dataclass(frozen=True)
class ReidRecipe:
    """training.train_reid."""

    steps: int = 1200
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift_px: int = 4
    deform_px: float = 1.5  # SD of a 4 x 4 smooth deformation's control points (the renderer's novelty: 0.5-1)
    seed: int = 0


@dataclass(frozen=True)
class SegmenterRecipe:
    """training.train_segmenter: optimiser, schedule, loss weight, augmentation."""

    epochs: int = 120
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    dice_weight: float = 1.0  # loss = CE + dice_weight * soft Dice loss (foreground classes)
    seed: int = 0
    # augmentation (no flips: the RV lies on a consistent side of the LV in every ACDC slice)
    aug_rotate_deg: float = 15.0
    aug_scale: tuple[float, float] = (0.85, 1.15)
    aug_translate_px: float = 4.0
    aug_gamma: tuple[float, float] = (0.7, 1.5)
    aug_contrast: tuple[float, float] = (0.8, 1.2)
    aug_brightness: float = 0.08
    aug_noise_std: float = 0.03
    aug_probability: float = 0.9  # share of training images that get the geometric transform


@dataclass(frozen=True)
class VAE3DRecipe:
    """training.train_vae3d: loss weights, schedule, augmentation and crops."""

    kl_weight: float = 1e-5  # SD convention: weight of the summed KL relative to the summed pixel loss
    ssim_weight: float = 0.2  # weight of (1 - SSIM) on valid pixels, added to the L1 term
    epochs: int = 14
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    aug_noise_std: float = 0.01
    crop_frames: int = 8  # training on random crops (fully convolutional): ~3.5x cheaper steps on CPU
    crop_size: int = 48
    eval_every: int = 3  # epochs between validation passes (full cines)
    seed: int = 0

    def check_crops(self, config) -> None:
        """Refuse crops that do not fit ``config``'s cine (a VAE3DConfig) or its downsampling factors."""
        if (self.crop_frames % config.f_t or self.crop_size % config.f_s or self.crop_frames > config.frames
                or self.crop_size > config.size):
            raise ValueError("the recipe's crop_frames / crop_size must fit the cine and be divisible by f_t / f_s")


# Presets, named as the model's CONFIGS are (every name there has one here; tests/test_training_cli.py checks it)
CINE_ENCODER_RECIPES = {"default": CineEncoderRecipe(), "paper": CineEncoderRecipe()}
ECG_FLOW_RECIPES = {"default": EcgFlowRecipe(),
            # ECGFlowCMR's paper setting (a GPU): AdamW 1e-4, wd 1e-4, batch 4
            "paper": EcgFlowRecipe(epochs=10, batch_size=4, lr=1e-4, weight_decay=1e-4)}
ECG_MAE_RECIPES = {"default": EcgMAERecipe(), "paper": EcgMAERecipe(epochs=400, batch_size=64, lr=5e-4)}
FRAME_AE_RECIPES = {
    "default": FrameAERecipe(),
    "paper": FrameAERecipe(epochs=60, batch_size=64),
    # A second stage: the bundled autoencoder's decoder trained further under a 5x stronger patch-adversarial
    # term, its encoder (and so every model trained on its latents) bit for bit the same. Measured on val it did
    # not sharpen the frames (reports/anatomy_motion/README.md), so it is not bundled; it is the stage for a
    # sharper encoder.
    "decoder_ft": FrameAERecipe(init_from="frame_ae", freeze_encoder=True, epochs=16, lr=1e-4, adversarial_weight=0.1,
                                adversarial_start_epoch=0),
}
MAR_RECIPES = {"default": MARRecipe(), "vae3d": MARRecipe(),
       # CPGG paper scale: AdamW lr 8e-4, 400 epochs, LTH14's EMA
       "paper": MARRecipe(epochs=400, batch_size=64, lr=8e-4, warmup_steps=2000, ema_decay=0.9999, augment_copies=0,
                          eval_every=10)}
PHENOTYPE_VAE_RECIPES = {"default": PhenotypeVAERecipe()}
REID_RECIPES = {"default": ReidRecipe()}
SEGMENTER_RECIPES = {"default": SegmenterRecipe(), "paper": SegmenterRecipe(epochs=300, batch_size=32)}
VAE3D_RECIPES = {"default": VAE3DRecipe(),
         "paper": VAE3DRecipe(epochs=100, batch_size=4, lr=4e-4, crop_frames=16, crop_size=64)}
