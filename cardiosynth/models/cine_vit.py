"""A small ViT on a cine with time as channels, pretrained as a masked autoencoder, fine-tuned for diagnosis.

This is the downstream model of the papers' pretraining study (CPGG Table 2, ECGFlowCMR Tables 2-4): a cine
(T, H, W) is read as a T-channel image, cut into P x P patches, and

* :class:`CineMAE` hides ``mask_ratio`` of the patches, encodes the rest and reconstructs the hidden ones
  (He et al. 2022: per-patch normalised pixel targets, loss on hidden patches only);
* :class:`CineDiagnosisModel` reuses the encoder (mean of its tokens, plus the slice position) for the 5-class
  ACDC diagnosis and the phenotype regression of one slice cine; a patient's prediction is the mean over its
  slices (the caller does that).

It is sized for 2 CPU cores (the study is pretrained and fine-tuned dozens of times); it is a measuring
instrument, not part of the product, and bundles no weights. Models take tensors: (B, T, H, W) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cardiosynth.models.embeddings import grid_position_table


@dataclass(frozen=True)
class CineViTConfig:
    frames: int = 16  # T: the input channels
    size: int = 64  # H = W
    patch: int = 8
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    decoder_width: int = 96
    decoder_depth: int = 2
    mask_ratio: float = 0.75
    classes: int = 5
    regression_targets: int = 5
    dropout: float = 0.1  # before the heads, in fine-tuning

    @property
    def tokens(self) -> int:
        return (self.size // self.patch) ** 2


def _blocks(width: int, depth: int, heads: int, mlp_ratio: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, int(width * mlp_ratio), dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)


class CineViTEncoder(nn.Module):
    def __init__(self, config: CineViTConfig):
        super().__init__()
        if config.size % config.patch or config.width % 4:
            raise ValueError("size must be a multiple of patch and width a multiple of 4")
        self.config = config
        self.embed = nn.Conv2d(config.frames, config.width, config.patch, stride=config.patch)
        # fixed 2D sine-cosine positions, as in MAE: nothing to learn from 319 cines
        self.register_buffer("positions", grid_position_table(config.size // config.patch, config.width),
                             persistent=False)
        self.blocks = _blocks(config.width, config.depth, config.heads, config.mlp_ratio)

    def check(self, cines: torch.Tensor) -> None:
        c = self.config
        if cines.ndim != 4 or tuple(cines.shape[1:]) != (c.frames, c.size, c.size):
            raise ValueError(f"expected cines (B, {c.frames}, {c.size}, {c.size}); got {tuple(cines.shape)}")

    def forward(self, cines: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Token features (B, N, width); with ``keep`` (B, n) only those patches are encoded (MAE)."""
        self.check(cines)
        tokens = self.embed(cines).flatten(2).transpose(1, 2) + self.positions
        if keep is not None:
            tokens = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
        return self.blocks(tokens)


def patchify_image(cines: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, T, H, W) -> (B, N, T * patch * patch), patches in row-major order (matching the conv embedding)."""
    b, t, h, w = cines.shape
    x = cines.reshape(b, t, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), t * patch * patch)


class CineMAE(nn.Module):
    """Masked autoencoder: the encoder above and a light decoder that rebuilds the hidden patches."""

    def __init__(self, config: CineViTConfig = CineViTConfig()):
        super().__init__()
        self.config = config
        self.encoder = CineViTEncoder(config)
        self.to_decoder = nn.Linear(config.width, config.decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(config.decoder_width))
        self.register_buffer("decoder_positions",
                             grid_position_table(config.size // config.patch, config.decoder_width), persistent=False)
        self.decoder = _blocks(config.decoder_width, config.decoder_depth, max(1, config.decoder_width // 32),
                               config.mlp_ratio)
        self.to_pixels = nn.Linear(config.decoder_width, config.frames * config.patch ** 2)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, cines: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The loss: mean squared error of the normalised pixels of the hidden patches."""
        c = self.config
        b, n = cines.shape[0], c.tokens
        kept = max(1, int(round(n * (1 - c.mask_ratio))))
        order = torch.rand(b, n, generator=generator).argsort(dim=1).to(cines.device)
        keep, hidden = order[:, :kept], order[:, kept:]
        encoded = self.to_decoder(self.encoder(cines, keep))
        tokens = self.mask_token.expand(b, n, -1).clone()
        tokens.scatter_(1, keep[..., None].expand(-1, -1, tokens.shape[-1]), encoded)
        predicted = self.to_pixels(self.decoder(tokens + self.decoder_positions))
        target = patchify_image(cines, c.patch)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        pick = hidden[..., None].expand(-1, -1, target.shape[-1])
        return F.mse_loss(torch.gather(predicted, 1, pick), torch.gather(target, 1, pick))


class CineDiagnosisModel(nn.Module):
    """Encoder + heads: diagnosis logits (B, classes) and standardised phenotypes (B, regression_targets)."""

    def __init__(self, config: CineViTConfig = CineViTConfig()):
        super().__init__()
        self.config = config
        self.encoder = CineViTEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.diagnosis = nn.Linear(config.width + 1, config.classes)
        self.phenotypes = nn.Linear(config.width + 1, config.regression_targets)

    def forward(self, cines: torch.Tensor, slice_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.encoder(cines).mean(dim=1)
        features = self.dropout(torch.cat([pooled, slice_position.reshape(-1, 1).to(pooled.dtype)], dim=1))
        return self.diagnosis(features), self.phenotypes(features)
