"""Augmentations for (B, T, H, W) cines and their masks: one random affine per cine (shared by all its frames)
and intensity jitter. No flips: the RV sits on a consistent side of the LV in short-axis views."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(batch: int, generator: torch.Generator, max_rotation_deg: float = 12.0,
                  scale_range: tuple[float, float] = (0.9, 1.1), max_shift: float = 0.08) -> torch.Tensor:
    """(B, 2, 3) affine matrices in normalised coordinates."""
    def uniform(low, high):
        return torch.rand(batch, generator=generator) * (high - low) + low

    angle = uniform(-max_rotation_deg, max_rotation_deg) * math.pi / 180
    scale = uniform(*scale_range)
    shift = torch.stack([uniform(-max_shift, max_shift), uniform(-max_shift, max_shift)], dim=1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Apply per-sample affines to (B, C, H, W); C may be frames (all warped alike) or one-hot masks."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def jitter_intensity(images: torch.Tensor, generator: torch.Generator, gamma_range=(0.7, 1.4),
                     noise_std: float = 0.02) -> torch.Tensor:
    """Random gamma, contrast and Gaussian noise per sample; output stays in [0, 1]."""
    b = images.shape[0]
    shape = (b,) + (1,) * (images.dim() - 1)
    gamma = torch.exp(torch.empty(b).uniform_(math.log(gamma_range[0]), math.log(gamma_range[1]), generator=generator))
    contrast = torch.empty(b).uniform_(0.85, 1.15, generator=generator)
    out = images.clamp(0, 1) ** gamma.view(shape)
    out = (out - 0.5) * contrast.view(shape) + 0.5
    out = out + noise_std * torch.randn(images.shape, generator=generator)
    return out.clamp(0, 1)
