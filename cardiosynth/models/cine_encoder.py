"""A small spatio-temporal encoder whose features define the Fréchet distance between sets of cines.

Inception / I3D weights cannot be downloaded here and suit MRI poorly, so we train our own on real cines.
The features must see what matters in a cine: anatomy (diagnostic group, slice position, phenotypes) and
coherent motion. Hence four heads on one 3D-CNN trunk: group, slice position, standardised phenotypes,
and "were the frames shuffled?" (self-supervised; makes the features sensitive to temporal coherence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cardiosynth import phenotypes as ph
from cardiosynth.weights import Pretrained


@dataclass
class CineEncoderConfig:
    """The cines it reads and its architecture (heads included: the training targets it predicts); saved in
    ``config.json``, the training recipe (training.recipes) beside it. The training split's phenotype scaler (for
    the phenotype head's targets) is not read at inference and stays in ``extra``."""

    frames: int = 16
    size: int = 64
    channels: tuple[int, ...] = (16, 32, 64, 96)
    feature_dim: int = 32
    n_groups: int = 5
    phenotypes: tuple[str, ...] = ph.NAMES
    dropout: float = 0.2


GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
CONFIGS = {
    "default": CineEncoderConfig(),
    "paper": CineEncoderConfig(frames=50, size=96, channels=(32, 64, 128, 192), feature_dim=64),
}


def conv_block(c_in: int, c_out: int, stride) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(8, c_out), nn.SiLU(),
        nn.Conv3d(c_out, c_out, 3, padding=1, bias=False), nn.GroupNorm(8, c_out), nn.SiLU(),
    )


class CineEncoder(nn.Module, Pretrained):
    """3D-CNN trunk (B, 1, T, H, W) -> ``feature_dim`` features, with the four training heads (group, slice
    position, phenotypes, shuffled frames); only the features define the Fréchet distance."""

    config_class = CineEncoderConfig
    default_weights = "cine_encoder"

    def __init__(self, config: CineEncoderConfig):
        super().__init__()
        self.config = config
        stages, c_in = [], 1
        for k, c_out in enumerate(config.channels):
            stages.append(conv_block(c_in, c_out, (1, 2, 2) if k == 0 else 2))
            c_in = c_out
        self.trunk = nn.Sequential(*stages)
        self.to_feature = nn.Linear(c_in, config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.group_head = nn.Linear(config.feature_dim, config.n_groups)
        self.position_head = nn.Linear(config.feature_dim, 1)
        self.phenotype_head = nn.Linear(config.feature_dim, len(config.phenotypes))
        self.shuffle_head = nn.Linear(config.feature_dim, 1)

    def features(self, cines: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, H, W) in [0, 1] -> (B, feature_dim)."""
        x = self.trunk(cines * 2 - 1)
        return self.to_feature(x.mean(dim=(2, 3, 4)))

    def forward(self, cines: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(cines)
        h = self.dropout(F.silu(f))
        return {
            "features": f,
            "group": self.group_head(h),
            "position": self.position_head(h).squeeze(-1),
            "phenotypes": self.phenotype_head(h),
            "shuffled": self.shuffle_head(h).squeeze(-1),
        }


@torch.inference_mode()
def embed_cines(model: CineEncoder, cines: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, T, H, W) float in [0, 1] -> (N, feature_dim) features, in batches, deterministic."""
    cines = np.asarray(cines, dtype=np.float32)
    expected = (model.config.frames, model.config.size, model.config.size)
    if cines.ndim != 4 or cines.shape[1:] != expected:
        raise ValueError(f"The cine encoder expects cines of shape (N, {expected[0]}, {expected[1]}, {expected[2]}); "
                         f"got {cines.shape}")
    out = [model.features(torch.from_numpy(cines[i:i + batch_size])[:, None]) for i in range(0, len(cines), batch_size)]
    return torch.cat(out).numpy().astype(np.float64)
