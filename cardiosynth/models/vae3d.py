"""3D-VAE (KL): the Stable Diffusion KL autoencoder with 3D convolutions, for cines (B, 1, T, H, W).

A cine 1 x T x H x W maps to a latent C x T/f_t x H/f_s x W/f_s (default 4 x 8 x 16 x 16 for 16 x 64 x 64).
The generators (MAR with diffusion loss, ECG rectified flow) work on *scaled* latents: posterior means times
``stats.latent_scale`` (1 / std of the training-set posterior means), which is computed once after training
and stored in ``config.json`` beside the weights, so training and sampling cannot use different scales.

Layout (per level: ResBlocks, then a strided-conv downsample): channels grow as resolution shrinks; the
decoder mirrors it with "conv at low resolution, then nearest upsample", so the thin full-resolution layers
(``channels[0]``) are the only ones that run on every voxel -- they dominate CPU decode time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cardiosynth.models.latents import LatentStats, decode_in_batches, encode_in_batches
from cardiosynth.weights import Pretrained


@dataclass
class VAE3DConfig:
    """The architecture (the cine shape it codes and the network's shapes), then the fitted latent statistics
    (``stats``) as their own dataclass; saved, nested the same way, in ``config.json``, the training recipe
    (training.recipes, whose crops are checked against this config when training starts) beside it."""

    frames: int = 16
    size: int = 64
    latent_channels: int = 4
    f_t: int = 2  # temporal downsampling factor (power of 2)
    f_s: int = 4  # spatial downsampling factor (power of 2)
    channels: tuple[int, ...] = (32, 64, 128)  # one per level: full resolution, /2, /4, ... (log2(f_s) + 1)
    enc_blocks: tuple[int, ...] = (0, 1, 1)  # ResBlocks per encoder level
    dec_blocks: tuple[int, ...] = (1, 1, 1)  # ResBlocks per decoder level
    mid_blocks: int = 1  # ResBlocks at the latent resolution (encoder and decoder each)
    groups: int = 8  # GroupNorm groups
    # filled in after training: 1 / std of the training-set posterior means (scaled latent has unit std)
    stats: LatentStats = field(default_factory=LatentStats)

    def __post_init__(self):
        levels = len(self.channels)
        for name, factor in (("f_t", self.f_t), ("f_s", self.f_s)):
            if factor < 1 or factor & (factor - 1):
                raise ValueError(f"{name} must be a power of 2; got {factor}")
        if levels != int(math.log2(self.f_s)) + 1:
            raise ValueError(f"f_s = {self.f_s} needs log2(f_s) + 1 = {int(math.log2(self.f_s)) + 1} channel levels; "
                             f"got channels {self.channels}")
        if self.f_t > self.f_s:
            raise ValueError("f_t may not exceed f_s (temporal downsampling rides on the spatial downsamples)")
        if len(self.enc_blocks) != levels or len(self.dec_blocks) != levels:
            raise ValueError("enc_blocks and dec_blocks need one entry per level of channels")
        if self.frames % self.f_t or self.size % self.f_s:
            raise ValueError(f"frames {self.frames} must be divisible by f_t {self.f_t} and size {self.size} by f_s {self.f_s}")
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every channel count must be divisible by groups={self.groups}")

    @property
    def strides(self) -> list[tuple[int, int, int]]:
        """Downsampling stride after each level but the last; the temporal ones come first."""
        n_t = int(math.log2(self.f_t))
        return [(2 if k < n_t else 1, 2, 2) for k in range(len(self.channels) - 1)]

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        return (self.latent_channels, self.frames // self.f_t, self.size // self.f_s, self.size // self.f_s)


CONFIGS = {
    "default": VAE3DConfig(),
    # CPGG paper setting (UK Biobank four-chamber cines): |x| = 16, f_t = 2, f_s = 8 -> 16 x 25 x 12 x 12.
    "paper": VAE3DConfig(frames=50, size=96, latent_channels=16, f_t=2, f_s=8, channels=(32, 64, 128, 256),
                         enc_blocks=(0, 1, 1, 1), dec_blocks=(1, 1, 1, 1)),
}


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv3d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = _norm(c_out, groups), nn.Conv3d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    def __init__(self, config: VAE3DConfig):
        super().__init__()
        ch, g = config.channels, config.groups
        self.conv_in = nn.Conv3d(1, ch[0], 3, padding=1)
        layers: list[nn.Module] = []
        for level, c in enumerate(ch):
            layers += [ResBlock(c, c, g) for _ in range(config.enc_blocks[level])]
            if level < len(ch) - 1:
                layers.append(nn.Conv3d(c, ch[level + 1], 3, stride=config.strides[level], padding=1))
        layers += [ResBlock(ch[-1], ch[-1], g) for _ in range(config.mid_blocks)]
        self.body = nn.Sequential(*layers)
        self.norm_out = _norm(ch[-1], g)
        self.conv_out = nn.Conv3d(ch[-1], 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.body(self.conv_in(x)))))


class Upsample(nn.Module):
    """Conv at the low resolution (cheap), then nearest upsampling by ``stride``."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int, int]):
        super().__init__()
        self.conv, self.stride = nn.Conv3d(c_in, c_out, 3, padding=1), stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.stride, mode="nearest")


class Decoder(nn.Module):
    def __init__(self, config: VAE3DConfig):
        super().__init__()
        ch, g = config.channels, config.groups
        self.conv_in = nn.Conv3d(config.latent_channels, ch[-1], 3, padding=1)
        layers: list[nn.Module] = [ResBlock(ch[-1], ch[-1], g) for _ in range(config.mid_blocks)]
        for level in reversed(range(len(ch))):
            layers += [ResBlock(ch[level], ch[level], g) for _ in range(config.dec_blocks[level])]
            if level > 0:
                layers.append(Upsample(ch[level], ch[level - 1], config.strides[level - 1]))
        self.body = nn.Sequential(*layers)
        self.norm_out = _norm(ch[0], g)
        self.conv_out = nn.Conv3d(ch[0], 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.body(self.conv_in(z)))))


class VAE3D(nn.Module, Pretrained):
    """``encode`` -> (mean, logvar); ``decode`` latent -> cine in roughly [0, 1] (unclipped).

    Inputs are cines in [0, 1]; internally they are mapped to [-1, 1] and back."""

    config_class = VAE3DConfig
    default_weights = "vae3d"

    def __init__(self, config: VAE3DConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, T, H, W) in [0, 1] -> posterior (mean, logvar), each (B, C, T/f_t, H/f_s, W/f_s)."""
        check_batch(x, self.config)
        moments = self.encoder(x * 2 - 1)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent (B, C, t, h, w) -> (B, 1, T, H, W), roughly [0, 1] (not clipped)."""
        if z.dim() != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"decode expects latents (B, {self.config.latent_channels}, t, h, w) "
                             f"(for full cines {self.config.latent_shape}); got {tuple(z.shape)}")
        return (self.decoder(z) + 1) / 2

    def forward(self, x: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None):
        """Returns (reconstruction, mean, logvar); samples the posterior when ``sample`` (training)."""
        mean, logvar = self.encode(x)
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)  # CPU generator: same draw anywhere
            z = mean + torch.exp(0.5 * logvar) * noise
        return self.decode(z), mean, logvar


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) per element (same shape as ``mean``)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def check_batch(x: torch.Tensor, config: VAE3DConfig) -> None:
    """(B, 1, T, H, W) float; T divisible by f_t and H, W by f_s (training uses crops; the helpers below insist
    on the configured cine shape)."""
    if not torch.is_tensor(x):
        raise ValueError(f"Expected a torch tensor (B, 1, T, H, W); got {type(x).__name__}")
    if x.dim() != 5 or x.shape[1] != 1 or x.shape[2] % config.f_t or x.shape[3] % config.f_s or x.shape[4] % config.f_s:
        raise ValueError(f"The 3D-VAE expects cines (B, 1, T, H, W) with T divisible by {config.f_t} and H, W by "
                         f"{config.f_s} (trained on 1 x {config.frames} x {config.size} x {config.size}); got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"Cines must be float in [0, 1]; got dtype {x.dtype} (divide uint8 by 255)")


def _check_frames(frames, config: VAE3DConfig) -> torch.Tensor:
    """(N, T, H, W) float in [0, 1] (numpy or torch) -> float32 tensor, or a clear ValueError."""
    if isinstance(frames, np.ndarray):
        if not np.issubdtype(frames.dtype, np.floating):
            raise ValueError(f"Cines must be float in [0, 1]; got dtype {frames.dtype} (divide uint8 by 255)")
        frames = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    elif torch.is_tensor(frames):
        if not frames.is_floating_point():
            raise ValueError(f"Cines must be float in [0, 1]; got dtype {frames.dtype} (divide uint8 by 255)")
        frames = frames.detach().float().cpu()
    else:
        raise ValueError(f"Expected a numpy array or torch tensor of cines (N, T, H, W); got {type(frames).__name__}")
    expected = (config.frames, config.size, config.size)
    if frames.dim() == 3:
        raise ValueError(f"Expected a batch of cines (N, {', '.join(map(str, expected))}); got one cine {tuple(frames.shape)}"
                         " -- add a leading axis")
    if frames.dim() != 4 or tuple(frames.shape[1:]) != expected:
        raise ValueError(f"The 3D-VAE expects cines of shape (N, {', '.join(map(str, expected))}); got {tuple(frames.shape)}")
    if len(frames) == 0:
        raise ValueError("No cines given (empty batch)")
    if not torch.isfinite(frames).all():
        raise ValueError("Cines contain NaN or infinite values")
    if frames.min() < -1e-6 or frames.max() > 1 + 1e-6:
        raise ValueError(f"Cine intensities must lie in [0, 1]; got {float(frames.min()):.3g}..{float(frames.max()):.3g}")
    return frames


@torch.inference_mode()
def encode_cines(model: VAE3D, frames, batch_size: int = 16) -> torch.Tensor:
    """(N, T, H, W) float in [0, 1] -> *scaled* latents (N, C, T/f_t, H/f_s, W/f_s): posterior mean x
    stats.latent_scale."""
    return encode_in_batches(model, _check_frames(frames, model.config), batch_size)


@torch.inference_mode()
def decode_cines(model: VAE3D, latents, batch_size: int = 16) -> torch.Tensor:
    """*Scaled* latents (N, C, t, h, w) -> cines (N, T, H, W) float32 clipped to [0, 1]."""
    return decode_in_batches(model, latents, batch_size)


# ---------------------------------------------------------------------------------------------------------
# Quality metrics on valid pixels (used by training, the report and tests)

def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Standard SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03) per 2D frame.

    a, b: (N, H, W) -> SSIM map (N, H, W) (reflect-padded borders so every pixel has a value)."""
    w = _gaussian_window().to(a)
    pad = len(w) // 2

    def blur(x):
        x = F.pad(x[:, None], (pad, pad, pad, pad), mode="reflect")
        x = F.conv2d(x, w.view(1, 1, 1, -1))
        return F.conv2d(x, w.view(1, 1, -1, 1))[:, 0]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def masked_metrics(recon: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-cine PSNR (dB) and SSIM on valid pixels. recon, target (N, T, H, W) in [0, 1]; valid (N, H, W) bool.

    Padding is excluded: the reconstruction is pasted onto the target outside ``valid`` before SSIM, so
    padded pixels neither help nor hurt; both means run over valid pixels only."""
    recon = recon.clamp(0, 1)
    v = valid[:, None].expand_as(target).float()
    n = v.sum(dim=(1, 2, 3)).clamp_min(1)
    mse = ((recon - target) ** 2 * v).sum(dim=(1, 2, 3)) / n
    psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
    pasted = recon * v + target * (1 - v)
    s = ssim_map(pasted.flatten(0, 1), target.flatten(0, 1)).view_as(target)
    ssim = (s * v).sum(dim=(1, 2, 3)) / n
    return {"psnr": psnr, "ssim": ssim, "mse": mse}
