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
class FrameAEConfig:
    """The architecture (what the weights' shapes and the frames they take depend on), then the fitted latent
    statistics (``stats``) as their own dataclass; saved, nested the same way, in ``config.json``, the training
    recipe (training.recipes) beside it."""

    name: str = "default"
    size: int = 64  # H = W of the prepared frames (cardiosynth.data.prepare config ``data_config``)
    data_config: str = "default"  # the prepare config of the frames it codes (size, spacing): its input contract
    channels: tuple[int, ...] = (16, 32, 64)  # per level, full resolution first; f = 2 ** (levels - 1)
    # (thin at full resolution: (32, 64, 96) trained 2.5x slower on the 2 cores; that is where CPU time goes)
    res_blocks: int = 1
    latent_channels: int = 8  # 4 channels (12 epochs) decoded visibly blurred ED frames: 24.2 dB on val frames
    norm_groups: int = 8
    stats: LatentStats = field(default_factory=LatentStats)  # latent_scale, filled in after training

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
    "paper": FrameAEConfig(name="paper", size=96, data_config="paper", channels=(64, 128, 256), latent_channels=8),
}
# A second stage (its recipe, training.recipes.FRAME_AE_RECIPES["decoder_ft"], trains the bundled autoencoder's
# decoder further, its encoder bit for bit the same): the default architecture under its own name.
CONFIGS["decoder_ft"] = dataclasses.replace(CONFIGS["default"], name="decoder_ft")


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
