"""Re-identification network: says whether two cardiac MR frames show the same patient.

A small CNN embeds one frame (64 x 64, normalised per frame) as a unit vector; it is trained as a classifier of
the training patients (softmax over patients on the embedding, with augmentation: shifts, smooth random
deformations like the renderer's, intensity changes, noise, other slices and frames of the same patient), so
frames of one patient embed close together whatever slice, phase or deformation they show. Two frames' cosine
similarity is the same-patient score. ``cardiosynth.measure.reidentification`` turns it into the privacy test
of rendered cines (how often a synthetic cine is matched to a training patient above what held-out patients
reach), as EchoNet-Synthetic does for echocardiography.

    reid = ReidNet.from_pretrained()                      # weights/reid, sha256 checked
    embeddings = reid.embed(frames)                       # (N, H, W) in [0, 1] -> (N, D) unit vectors
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cardiosynth.weights import Pretrained, config_from_dict


@dataclass(frozen=True)
class ReidConfig:
    size: int = 64
    width: int = 16
    embedding: int = 64
    patients: int = 0  # training patients the classifier head was trained on

    @classmethod
    def from_dict(cls, values: dict) -> "ReidConfig":
        return config_from_dict(cls, values)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, stride=2), nn.GroupNorm(8, cout), nn.SiLU())


class ReidNet(nn.Module, Pretrained):
    """Frame -> unit embedding; a cosine classifier head over the training patients (training only)."""

    config_class = ReidConfig
    default_weights = "reid"

    def __init__(self, config: ReidConfig = ReidConfig()):
        super().__init__()
        self.config = config
        w = config.width
        stem = nn.Sequential(nn.Conv2d(1, w, 4, stride=2, padding=1), nn.GroupNorm(8, w), nn.SiLU())  # 64 -> 32 px
        self.features = nn.Sequential(stem, _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 4 * w))
        self.project = nn.Linear(4 * w, config.embedding)
        self.head = nn.Parameter(torch.randn(max(config.patients, 1), config.embedding) * 0.1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, H, W) frames in [0, 1] -> (N, D) unit embeddings (each frame standardised first)."""
        x = frames.float()[:, None]
        x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-3)
        return F.normalize(self.project(self.features(x).mean(dim=(2, 3))), dim=-1)

    def logits(self, embeddings: torch.Tensor, scale: float = 16.0) -> torch.Tensor:
        return scale * embeddings @ F.normalize(self.head, dim=-1).T

    @torch.no_grad()
    def embed(self, frames, batch: int = 512) -> torch.Tensor:
        frames = torch.as_tensor(frames, dtype=torch.float32)
        if frames.dim() != 3 or frames.shape[-1] != self.config.size or frames.shape[-2] != self.config.size:
            raise ValueError(f"frames must be (N, {self.config.size}, {self.config.size}); got {tuple(frames.shape)}")
        return torch.cat([self(frames[i:i + batch]) for i in range(0, len(frames), batch)]) if len(frames) else \
            torch.zeros(0, self.config.embedding)


def best_match(reid: ReidNet, ed_frames, reference: torch.Tensor, patients) -> tuple:
    """Each query frame's highest similarity to any reference embedding (M, D), and that reference's patient:
    (scores (N,), patients (N,)) as numpy arrays."""
    query = reid.embed(torch.as_tensor(ed_frames, dtype=torch.float32))
    similarity = (query @ reference.T).numpy()
    best = similarity.argmax(1)
    return similarity[range(len(query)), best], [patients[i] for i in best]
