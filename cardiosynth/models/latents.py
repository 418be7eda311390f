"""Batched round trips through an autoencoder's *scaled* latent space (the frame autoencoder and the 3D-VAE).

Both autoencoders expose ``encode(x) -> (mean, std)``, ``decode(z)`` and ``config.latent_scale`` /
``config.latent_shape``; the generators draw latents multiplied by ``latent_scale`` (unit variance over the
training set), so the scaling and the batching live here once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def encode_in_batches(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Checked images (N, ...) in [0, 1] -> scaled latents: posterior mean x latent_scale, on the CPU."""
    device = next(model.parameters()).device
    out = [model.encode(images[i:i + batch_size, None].to(device))[0].cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) * model.config.latent_scale


def decode_in_batches(model: nn.Module, latents, batch_size: int) -> torch.Tensor:
    """Scaled latents (N, *latent_shape) -> images (N, ...) float32 clipped to [0, 1], on the CPU."""
    latents = check_latents(latents, tuple(model.config.latent_shape))
    device = next(model.parameters()).device
    z = latents / model.config.latent_scale
    out = [model.decode(z[i:i + batch_size].to(device))[:, 0].cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(out).clamp(0, 1)


def check_latents(latents, expected: tuple[int, ...]) -> torch.Tensor:
    """A float tensor of shape (N, *expected) with finite values, or one clear ValueError."""
    if isinstance(latents, np.ndarray):
        latents = torch.from_numpy(np.asarray(latents, dtype=np.float32))
    if not torch.is_tensor(latents) or not latents.is_floating_point():
        raise ValueError("Latents must be a float numpy array or torch tensor")
    if latents.dim() != len(expected) + 1 or tuple(latents.shape[1:]) != expected:
        raise ValueError(f"Expected scaled latents (N, {', '.join(map(str, expected))}); got {tuple(latents.shape)}")
    if not torch.isfinite(latents).all():
        raise ValueError("Latents contain NaN or infinite values")
    return latents.float()
