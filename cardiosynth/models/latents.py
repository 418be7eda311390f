"""Batched round trips through an autoencoder's *scaled* latent space (the frame autoencoder and the 3D-VAE).

Both autoencoders expose ``encode(x) -> (mean, std)``, ``decode(z)``, ``config.latent_shape`` and their fitted
``config.stats`` (:class:`LatentStats`); the generators draw latents multiplied by ``stats.latent_scale`` (unit
variance over the training set), so the scaling and the batching live here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LatentStats:
    """Fitted statistics of an autoencoder's latent space, its config's ``stats``: its trainer computes them on
    the training split once the weights are final (training.train_frame_ae, training.train_vae3d) and every
    encode and decode applies them, so training and sampling cannot use different scales; never refit at load."""

    latent_scale: float = 1.0  # 1 / std of the training-set posterior means (the scaled latents have unit std)


def encode_in_batches(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Checked images (N, ...) in [0, 1] -> scaled latents: posterior mean x stats.latent_scale, on the CPU."""
    device = next(model.parameters()).device
    out = [model.encode(images[i:i + batch_size, None].to(device))[0].cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) * model.config.stats.latent_scale


def decode_in_batches(model: nn.Module, latents, batch_size: int) -> torch.Tensor:
    """Scaled latents (N, *latent_shape) -> images (N, ...) float32 clipped to [0, 1], on the CPU."""
    latents = check_latents(latents, tuple(model.config.latent_shape))
    device = next(model.parameters()).device
    z = latents / model.config.stats.latent_scale
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
