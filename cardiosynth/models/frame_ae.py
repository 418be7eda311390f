"""Frame autoencoder: the *anatomy* half of the anatomy + motion representation.

One 2D KL autoencoder (MONAI's ``AutoencoderKL``, the Stable Diffusion first stage) codes single frames
1 x 64 x 64 into a latent 8 x 16 x 16 (f = 4). It is trained on every frame of every training cine
(augmented), with L1 + an in-domain perceptual loss (the bundled segmenter's encoder features, so the
loss cares about what separates myocardium from blood pool) + MONAI's patch-adversarial loss, so decoded
frames stay sharp instead of averaged. A cine's anatomy is its end-diastolic frame through this
autoencoder; the motion model (``cardiosynth.models.motion``) warps it through the cycle.

Why 2D and not the 3D-VAE: a cine has 16 frames but only 319 training cines exist, while ~5,000 training
frames do; a 2D model sees 16x more examples per parameter and never has to average motion into blur.

The generators work on *scaled* latents (posterior mean x ``stats.latent_scale``; scale = 1 / std of the
training-set means, computed after training and stored in ``config.json``).

    ae = FrameAutoencoder.from_pretrained()                          # bundled weights/frame_ae, sha256 checked
    z = encode_frames(ae, frames)                 # (N, H, W) in [0, 1] -> (N, 8, 16, 16) scaled
    frames = decode_frames(ae, z)                # -> (N, H, W) in [0, 1]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import AutoencoderKL
from torch import nn

from cardiosynth.models.latents import LatentStats, decode_in_batches, encode_in_batches
from cardiosynth.weights import Pretrained, config_from_dict


@dataclass(frozen=True)
class FrameAERecipe:
    """The training recipe (training.train_frame_ae: schedule, loss weights, the patch discriminator, EMA,
    augmentation, a second stage's start): read only by training, so nothing here changes what trained
    weights encode or decode."""

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
class FrameAEConfig:
    """The architecture (what the weights' shapes and the frames they take depend on), then, one dataclass
    each, the fitted latent statistics (``stats``) and the training recipe (``recipe``); saved, nested the same
    way, in ``config.json``."""

    name: str = "default"
    size: int = 64  # H = W of the prepared frames (cardiosynth.data.prepare config ``data_config``)
    data_config: str = "default"  # the prepare config of the frames it codes (size, spacing): its input contract
    channels: tuple[int, ...] = (16, 32, 64)  # per level, full resolution first; f = 2 ** (levels - 1)
    # (thin at full resolution: (32, 64, 96) trained 2.5x slower on the 2 cores; that is where CPU time goes)
    res_blocks: int = 1
    latent_channels: int = 8  # 4 channels (12 epochs) decoded visibly blurred ED frames: 24.2 dB on val frames
    norm_groups: int = 8
    stats: LatentStats = field(default_factory=LatentStats)  # latent_scale, filled in after training
    recipe: FrameAERecipe = field(default_factory=FrameAERecipe)

    def __post_init__(self):
        if len(self.channels) < 2 or any(c % self.norm_groups for c in self.channels):
            raise ValueError(f"channels {self.channels} need >= 2 levels, each divisible by norm_groups={self.norm_groups}")
        if self.size % self.factor:
            raise ValueError(f"size {self.size} must be divisible by the downsampling factor {self.factor}")

    @property
    def factor(self) -> int:
        return 2 ** (len(self.channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.size // self.factor, self.size // self.factor)

    @classmethod
    def from_dict(cls, values: dict) -> "FrameAEConfig":
        return config_from_dict(cls, values)


CONFIGS = {
    "default": FrameAEConfig(),
    # 96 px frames -> 8 x 24 x 24: the motion model's "paper" control grid, so the MAR's packed code lines up
    "paper": FrameAEConfig(name="paper", size=96, data_config="paper", channels=(64, 128, 256), latent_channels=8,
                           recipe=FrameAERecipe(epochs=60, batch_size=64)),
}
# A second stage: the bundled autoencoder's decoder trained further under a 5x stronger patch-adversarial term,
# its encoder (and so every model trained on its latents) bit for bit the same. Measured on val it did not sharpen
# the frames (reports/anatomy_motion/README.md), so it is not bundled; it is the stage for a sharper encoder.
CONFIGS["decoder_ft"] = dataclasses.replace(
    CONFIGS["default"], name="decoder_ft",
    recipe=dataclasses.replace(CONFIGS["default"].recipe, init_from="frame_ae", freeze_encoder=True, epochs=16, lr=1e-4,
                               adversarial_weight=0.1, adversarial_start_epoch=0))


class FrameAutoencoder(nn.Module, Pretrained):
    """(N, 1, H, W) in [0, 1] <-> (N, C, H/f, W/f). No attention blocks: at 16 x 16 latents on a CPU budget
    they cost more than they give (MONAI's defaults put attention at the deepest levels)."""

    config_class = FrameAEConfig
    default_weights = "frame_ae"

    def __init__(self, config: FrameAEConfig = CONFIGS["default"]):
        super().__init__()
        self.config = config
        levels = len(config.channels)
        self.net = AutoencoderKL(spatial_dims=2, in_channels=1, out_channels=1, channels=config.channels,
                                 num_res_blocks=(config.res_blocks,) * levels, attention_levels=(False,) * levels,
                                 latent_channels=config.latent_channels, norm_num_groups=config.norm_groups,
                                 with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation (unscaled)."""
        return self.net.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What maps a frame to its posterior (frozen by a decoder fine-tune)."""
        net = self.net
        return [*net.encoder.parameters(), *net.quant_conv_mu.parameters(), *net.quant_conv_log_sigma.parameters()]

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, std = self.encode(x)
        z = self.net.sampling(mean, std) if sample else mean
        return self.decode(z), mean, std


def kl_per_element(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std) || N(0, 1)) averaged over latent elements."""
    var = std.pow(2).clamp_min(1e-12)
    return 0.5 * (mean.pow(2) + var - var.log() - 1).mean()


def perceptual_distance(segmenter: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS-style distance on the segmenter's encoder features: at every level, unit-normalise each pixel's
    channel vector, take the squared difference summed over channels, average over pixels and levels."""
    total = 0.0
    features_a, features_b = segmenter.encoder_features(a), segmenter.encoder_features(b)
    for fa, fb in zip(features_a, features_b):
        fa, fb = F.normalize(fa, dim=1, eps=1e-6), F.normalize(fb, dim=1, eps=1e-6)
        total = total + (fa - fb).pow(2).sum(dim=1).mean()
    return total / len(features_a)


def _check_frames(frames, size: int) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    if not torch.is_tensor(frames) or not frames.is_floating_point():
        raise ValueError("frames must be a float array or tensor (N, H, W) in [0, 1]")
    if frames.dim() != 3 or tuple(frames.shape[1:]) != (size, size):
        raise ValueError(f"frames must have shape (N, {size}, {size}); got {tuple(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise ValueError("frames contain NaN or infinite values")
    return frames.float()


@torch.inference_mode()
def encode_frames(model: FrameAutoencoder, frames, batch_size: int = 64) -> torch.Tensor:
    """(N, H, W) in [0, 1] -> *scaled* latents (N, C, h, w): posterior mean x stats.latent_scale."""
    return encode_in_batches(model, _check_frames(frames, model.config.size), batch_size)


@torch.inference_mode()
def decode_frames(model: FrameAutoencoder, latents, batch_size: int = 64) -> torch.Tensor:
    """*Scaled* latents (N, C, h, w) -> frames (N, H, W) float32 clipped to [0, 1]."""
    return decode_in_batches(model, latents, batch_size)
