"""Phase-aware ECG masked autoencoder (ECGFlowCMR's ECG encoder), and finding one cardiac cycle with it.

    model = EcgMAE.from_pretrained("ecg_mae")
    features, phase = model.encode(normalise_leads(signals))      # (B, 625, D), (B, 625) radians
    cycle = select_cycle(find_cycles(phase[0], valid_tokens=625)) # (start, end) in tokens, R peak to R peak
    per_frame = resample_cycle(features[0], *cycle, frames=16)    # (16, D): frame 0 = R peak ~ end-diastole

A 12 x 5000 ECG (10 s at 500 Hz) is cut into tokens of ``patch`` samples (8 -> 625 tokens of 16 ms). Training
hides ``mask_ratio`` of the tokens (their embeddings replaced by a learned mask token, SimMIM-style, so the same
encoder runs unmasked at inference) and minimises the masked tokens' reconstruction MSE plus the MSE of a phase
head that predicts (sin phi, cos phi) for every token, phi rising 0 -> 2 pi from one R peak to the next
(neurokit2 R peaks, :mod:`cardiosynth.ecg.phase`). Leads are normalised at the input (median removed, divided by
their SD), so uncalibrated LUDB amplitudes and clinical millivolts look alike to the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from cardiosynth.models.embeddings import position_table
from cardiosynth.weights import Pretrained

TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class EcgMAEConfig:
    """The architecture (what inference runs); saved in ``config.json``, the training recipe (training.recipes:
    the masking, the loss weights, the augmentation and the optimiser) beside it."""

    leads: int = 12
    samples: int = 5000
    fs: int = 500
    patch: int = 8  # samples per token (8x temporal downsampling)
    stem: int = 64  # channels of the convolutional stem (QRS-scale filters at 500 and 250 Hz)
    stem_kernel: int = 15
    position_scale: float = 1.0  # sinusoidal positions x this, added to the token embeddings
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0

    @property
    def tokens(self) -> int:
        return self.samples // self.patch

    @property
    def token_seconds(self) -> float:
        return self.patch / self.fs


CONFIGS = {
    "default": EcgMAEConfig(),
    # paper scale (ViT-S-like encoder); sized for a GPU
    "paper": EcgMAEConfig(width=384, depth=8, heads=6),
}


def normalise_leads(signals: torch.Tensor | np.ndarray, valid_samples: int | None = None,
                    clip: float = 8.0) -> torch.Tensor:
    """(B, 12, S) or (12, S) -> same shape, each lead minus its median and over its SD on the valid samples;
    flat leads become zeros, padding stays zero."""
    x = torch.as_tensor(np.asarray(signals, dtype=np.float32) if isinstance(signals, np.ndarray) else signals).float()
    squeeze = x.dim() == 2
    x = x[None] if squeeze else x
    n = x.shape[-1] if valid_samples is None else int(valid_samples)
    part = x[..., :n]
    centred = part - part.median(dim=-1, keepdim=True).values
    sd = centred.std(dim=-1, keepdim=True)
    out = torch.zeros_like(x)
    out[..., :n] = torch.where(sd > 1e-6, centred / sd.clamp_min(1e-6), torch.zeros_like(centred)).clamp(-clip, clip)
    return out[0] if squeeze else out


class EcgMAE(nn.Module, Pretrained):
    """Transformer encoder over 12-lead ECG tokens with a reconstruction head (masked tokens) and a phase head
    ((sin phi, cos phi) per token); ``encode`` returns the features and the phase that finds the cycles."""

    config_class = EcgMAEConfig
    default_weights = "ecg_mae"

    def __init__(self, config: EcgMAEConfig):
        super().__init__()
        self.config = c = config
        pad = c.stem_kernel // 2
        self.patch_embed = nn.Sequential(  # 500 Hz -> 250 Hz -> one token per `patch` samples
            nn.Conv1d(c.leads, c.stem, c.stem_kernel, padding=pad), nn.GELU(),
            nn.Conv1d(c.stem, c.stem, c.stem_kernel, stride=2, padding=pad), nn.GELU(),
            nn.Conv1d(c.stem, c.width, c.patch // 2, stride=c.patch // 2))
        self.register_buffer("positions", c.position_scale * position_table(c.tokens, c.width), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(c.width))
        nn.init.normal_(self.mask_token, std=0.02)
        layer = nn.TransformerEncoderLayer(c.width, c.heads, int(c.width * c.mlp_ratio), c.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.width)
        self.recon_head = nn.Linear(c.width, c.leads * c.patch)
        self.phase_head = nn.Linear(c.width, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Normalised (B, 12, S) and an optional token mask (B, N) bool -> features (B, N, D), reconstruction
        (B, N, 12 * patch) and (sin, cos) phase (B, N, 2)."""
        tokens = self.patch_embed(x).transpose(1, 2)  # (B, N, D)
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        features = self.norm(self.blocks(tokens + self.positions))
        return features, self.recon_head(features), self.phase_head(features)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 12, S) -> (B, N, 12 * patch), in the recon head's layout."""
        b, leads, _ = x.shape
        return x.reshape(b, leads, self.config.tokens, self.config.patch).permute(0, 2, 1, 3).reshape(b, self.config.tokens, -1)

    def loss(self, x: torch.Tensor, phase: torch.Tensor, phase_valid: torch.Tensor,
             generator: torch.Generator | None = None, mask_ratio: float = 0.5,
             phase_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Normalised signals (B, 12, S), token phase (B, N) radians and its mask (B, N) -> the losses: the
        reconstruction of a random ``mask_ratio`` of the tokens + ``phase_weight`` x the phase loss (the
        trainer passes its recipe's)."""
        c = self.config
        b, n = x.shape[0], c.tokens
        order = torch.rand(b, n, generator=generator).argsort(dim=1)
        mask = torch.zeros(b, n, dtype=torch.bool)
        mask.scatter_(1, order[:, :int(round(mask_ratio * n))], True)
        mask = mask.to(x.device)
        _, recon, phase_pred = self(x, mask)
        recon_loss = ((recon - self.patches(x)) ** 2).mean(-1)[mask].mean()
        target = torch.stack([torch.sin(phase), torch.cos(phase)], -1)
        valid = phase_valid & torch.isfinite(phase)
        per_token = ((phase_pred - torch.nan_to_num(target)) ** 2).sum(-1)
        phase_loss = (per_token * valid).sum() / valid.sum().clamp_min(1)
        return {"loss": recon_loss + phase_weight * phase_loss, "recon": recon_loss, "phase": phase_loss}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (B, 12, S) -> features (B, N, D) and predicted phase (B, N) in [0, 2 pi)."""
        features, _, phase = self(x)
        return features, torch.remainder(torch.atan2(phase[..., 0], phase[..., 1]), TWO_PI)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def token_phase(phase: np.ndarray, valid: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample phase (..., S) -> phase and validity at each token's centre sample (..., S / patch)."""
    centre = patch // 2
    return phase[..., centre::patch], valid[..., centre::patch]


# --------------------------------------------------------------------------------------------- cycles
def find_cycles(phase: np.ndarray | torch.Tensor, valid_tokens: int | None = None, token_seconds: float = 0.016,
                rr_range_s: tuple[float, float] = (0.25, 2.5), min_monotone: float = 0.9) -> list[tuple[float, float]]:
    """Complete cycles in a predicted token phase, as (start, end) in fractional tokens (centres), R peak to R
    peak: between two consecutive wraps (2 pi -> 0) the phase must rise on at least ``min_monotone`` of the steps,
    and the cycle must last a plausible RR interval."""
    phi = np.asarray(phase.detach().cpu() if torch.is_tensor(phase) else phase, dtype=np.float64)
    n = len(phi) if valid_tokens is None else min(len(phi), int(valid_tokens))
    phi = phi[:n]
    step = np.diff(phi)
    wraps = []
    for k in np.flatnonzero(step < -math.pi):  # phi[k] near 2 pi, phi[k + 1] near 0
        rise = phi[k + 1] + TWO_PI - phi[k]
        wraps.append(k + float(np.clip((TWO_PI - phi[k]) / max(rise, 1e-6), 0.0, 1.0)))
    cycles = []
    for a, b in zip(wraps[:-1], wraps[1:]):
        seconds = (b - a) * token_seconds
        inside = step[int(math.ceil(a)):int(math.floor(b))]
        if rr_range_s[0] <= seconds <= rr_range_s[1] and inside.size and np.mean(inside > 0) >= min_monotone:
            cycles.append((a, b))
    return cycles


def select_cycle(cycles: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The typical beat: the complete cycle whose length is closest to the median (earliest on ties)."""
    if not cycles:
        return None
    lengths = np.array([b - a for a, b in cycles])
    return cycles[int(np.argmin(np.abs(lengths - np.median(lengths))))]


def resample_cycle(features: torch.Tensor, start: float, end: float, frames: int) -> torch.Tensor:
    """(N, D) token features -> (frames, D) by linear interpolation at start + (end - start) * k / frames
    (ROI-Align in time): frame 0 sits on the R peak, the last frame just before the next one."""
    n = features.shape[0]
    t = start + (end - start) * torch.arange(frames, dtype=torch.float64) / frames
    lo = t.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    w = (t - lo.double()).clamp(0, 1).to(features.dtype)[:, None]
    return features[lo] * (1 - w) + features[hi] * w


def shift_batch(x: torch.Tensor, phase: torch.Tensor, valid: torch.Tensor, shifts: torch.Tensor, patch: int):
    """Move each record by ``shifts`` tokens (positive = later), zero-padding the signal and marking padded
    tokens' phase invalid: training sees R peaks anywhere in the window."""
    out_x, out_p, out_v = torch.zeros_like(x), torch.zeros_like(phase), torch.zeros_like(valid)
    n = phase.shape[1]
    for i, s in enumerate(shifts.tolist()):
        if s >= 0:
            out_x[i, :, s * patch:] = x[i, :, :x.shape[-1] - s * patch]
            out_p[i, s:], out_v[i, s:] = phase[i, :n - s], valid[i, :n - s]
        else:
            out_x[i, :, :s * patch] = x[i, :, -s * patch:]
            out_p[i, :s], out_v[i, :s] = phase[i, -s:], valid[i, -s:]
    return out_x, out_p, out_v


def augment_ecg(x: torch.Tensor, config: EcgMAEConfig, generator: torch.Generator, noise_std: float = 0.05,
                wander_max: float = 0.3, lead_dropout: float = 0.1) -> torch.Tensor:
    """Noise (SD ``noise_std``), baseline wander (amplitude up to ``wander_max``) and dropped leads (each with
    probability ``lead_dropout``) on normalised signals (B, 12, S); the trainer passes its recipe's."""
    b, leads, s = x.shape
    t = torch.arange(s, dtype=torch.float32) / config.fs
    freq = 0.05 + 0.45 * torch.rand(b, leads, 1, generator=generator)
    phase = TWO_PI * torch.rand(b, leads, 1, generator=generator)
    amplitude = wander_max * torch.rand(b, leads, 1, generator=generator)
    x = x + amplitude * torch.sin(TWO_PI * freq * t + phase) + noise_std * torch.randn(x.shape, generator=generator)
    keep = (torch.rand(b, leads, 1, generator=generator) >= lead_dropout).float()
    return x * keep


def phase_error(predicted: np.ndarray, target: np.ndarray, valid: np.ndarray) -> float:
    """Mean absolute circular difference (radians) over valid tokens."""
    d = np.angle(np.exp(1j * (np.asarray(predicted) - np.nan_to_num(np.asarray(target)))))
    return float(np.abs(d)[np.asarray(valid, bool)].mean())
