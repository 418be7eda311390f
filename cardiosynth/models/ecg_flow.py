"""Anatomy-motion disentangled rectified flow (ECGFlowCMR): a DiT that moves a noisy template to a cine's motion
code under the guidance of one ECG cycle, for a given anatomy.

    model = EcgFlow.from_pretrained("ecg_flow")
    codes = model.sample(ecg_frames, slice_position, steps=25, cfg=2.0, generator=g, known=anatomy_codes)
    # packed anatomy + motion codes (cardiosynth.models.anatomy_motion): the anatomy channels as given

- What it draws: the packed anatomy + motion code of a cine (the ED frame's latent and the motion code on one
  16 x 16 grid). The first ``known_channels`` (the anatomy) are a condition, not drawn: they are held at the
  given values along the whole path, in training and sampling, and the loss is on the motion channels only.
  So the ECG drives what it can (the cycle's contraction pattern) and the anatomy comes from elsewhere (the
  phenotype VAE + MAR, or a real heart). ``known_channels = 0`` draws everything (the 3D-VAE latents of the
  first rounds, reports/ecg_flow/README.md).
- Template: the mean packed code of the training cines (the mean motion), stored with the weights (a buffer),
  so the flow starts from "an average heartbeat" and learns the motion the ECG implies.
- Path: z0 = template + alpha * eps, z1 = the cine's latent, z_t = (1 - t) z0 + t z1, velocity v = z1 - z0;
  sampling integrates dz/dt = v with Euler steps from t = 0 to 1. The network predicts either v directly
  (rectified-flow loss) or, by default, the clean latent x1 with v = (x1 - z_t) / (1 - t): with a few thousand
  CPU steps a velocity network left visible noise in every sample (it must cancel the noise token by token),
  while an x1 network's errors are blur, and its last Euler step lands exactly on its prediction.
- Sampling: Euler steps on the ODE, or (default, see ``sampler.method``) re-noising each step's clean estimate.
- alpha: 0.5 by default. With 319 training cines and ~1,200 CPU steps, samples from alpha = 1 kept the noise's
  structure as blotchy pseudo-anatomy; starting closer to the template trades diversity for realism. The
  paper config keeps the paper's 1.0.
- Network: latent frames cut into p x p patches; each block does spatial attention (within a latent frame),
  temporal attention (across frames at one place), cross-attention to the per-frame ECG features and an MLP,
  modulated by AdaLN-Zero on (flow time + slice position). The ECG features are also pooled to the latent
  frames and added to that frame's tokens, a direct path for timing.
- Classifier-free guidance: the ECG features are replaced by a learned null sequence for a share
  ``condition_dropout`` (the trainer's recipe) of the training examples; at sampling
  v = v_null + cfg * (v_ecg - v_null).

Every choice (alpha, steps, cfg, sizes) lives in :class:`EcgFlowConfig` (steps and cfg in its ``sampler``), saved
with the weights and read by both training and sampling (ECGFlowCMR's published code trained with noise 0.8 and
sampled with 0.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from cardiosynth.models.embeddings import position_table, timestep_embedding
from cardiosynth.weights import Pretrained, WeightsError

SAMPLERS = ("euler", "renoise")  # EcgFlowSampler.method


@dataclass(frozen=True)
class EcgFlowSampler:
    """Sampler defaults: what :meth:`EcgFlow.sample` (and the pipeline, the app's controls) use when a call does
    not say (chosen on the validation split)."""

    # 25 chosen on the validation split: at 10 steps the segmenter lost the LV in a median 8 of 16 frames of every
    # val cine, at 25 only 4 of 25 cines had such a frame (README, ECG -> cine)
    sampling_steps: int = 25
    # "euler" (the ODE) or "renoise" (x1 estimate, fresh template noise at the next time). The bundled model uses
    # renoise, chosen on the validation split: Frechet ratio 9.9 vs 20.2 with Euler (whose samples keep blotchy
    # noise), at 10 steps.
    method: str = "renoise"
    cfg: float = 2.0

    def __post_init__(self):
        if self.method not in SAMPLERS:
            raise ValueError(f"sampler method must be 'euler' or 'renoise'; got {self.method!r}")


@dataclass(frozen=True)
class EcgFlowConfig:
    """The architecture and representation (what the model outputs, its re-timing included), then the sampler
    defaults as their own dataclass; saved, nested the same way, in ``config.json``, the training recipe
    (training.recipes) beside it."""

    latent_channels: int = 18  # packed code: 8 anatomy + 5 x 2 motion channels
    latent_frames: int = 1
    latent_size: int = 16
    known_channels: int = 8  # the anatomy: given, not drawn
    patch: int = 2
    width: int = 128
    depth: int = 5
    heads: int = 4
    mlp_ratio: float = 4.0
    ecg_dim: int = 128  # the ECG MAE's width
    ecg_frames: int = 16  # the cine's frames: one ECG feature vector per frame
    alpha: float = 0.5  # template noise scale (ECGFlowCMR found 1.0 best at UK Biobank scale; see the module doc)
    prediction: str = "x1"  # network output: "x1" (the clean latent; v = (x1 - z_t) / (1 - t)) or "velocity"
    # Timing made explicit (cardiosynth.retime): the training cines are re-timed so that end-systole falls at this
    # fraction of the cycle, and samples are re-timed from it to the input ECG's QT / RR. None: no re-timing (the
    # flow must learn timing from the ECG features, which 47 pseudo-paired subjects did not teach it).
    canonical_es_fraction: float | None = None
    # pixel size (mm) of the cines it was trained on: the trainer records the prepared dataset's; from_pretrained
    # refuses weights without it (None only before training)
    spacing_mm: float | None = None
    sampler: EcgFlowSampler = field(default_factory=EcgFlowSampler)

    def __post_init__(self):
        if self.prediction not in ("x1", "velocity"):
            raise ValueError(f"prediction must be 'x1' or 'velocity'; got {self.prediction!r}")
        if not 0 <= self.known_channels < self.latent_channels:
            raise ValueError(f"known_channels must be from 0 to {self.latent_channels - 1}; got {self.known_channels}")
        if self.canonical_es_fraction is not None and not 0.0 < self.canonical_es_fraction < 1.0:
            raise ValueError(f"canonical_es_fraction must be inside the cycle (0-1); got {self.canonical_es_fraction!r}")

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        return (self.latent_channels, self.latent_frames, self.latent_size, self.latent_size)

    @property
    def spatial_tokens(self) -> int:
        return (self.latent_size // self.patch) ** 2


CONFIGS = {
    "default": EcgFlowConfig(canonical_es_fraction=0.38),  # 0.38: the ACDC training cines' mean ES fraction
    # ECGFlowCMR's paper setting (a GPU) on the paper representation (packed code (8 + 6 x 2) x 1 x 24 x 24)
    "paper": EcgFlowConfig(latent_channels=20, latent_frames=1, latent_size=24, patch=2, width=768, depth=12, heads=12,
                           ecg_dim=384, ecg_frames=50, alpha=1.0, canonical_es_fraction=0.38,
                           sampler=EcgFlowSampler(sampling_steps=25, method="euler")),
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, kv_width: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(kv_width or width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        context = x if context is None else context
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Spatial attention, temporal attention, cross-attention to the ECG, MLP; AdaLN-Zero on the condition."""

    def __init__(self, config: EcgFlowConfig):
        super().__init__()
        d = config.width
        self.norm_s, self.norm_t, self.norm_x, self.norm_m = (nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
                                                              for _ in range(4))
        self.spatial, self.temporal = Attention(d, config.heads), Attention(d, config.heads)
        self.cross = Attention(d, config.heads)
        self.mlp = nn.Sequential(nn.Linear(d, int(d * config.mlp_ratio)), nn.GELU(approximate="tanh"),
                                 nn.Linear(int(d * config.mlp_ratio), d))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 12 * d))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, ecg: torch.Tensor) -> torch.Tensor:
        """x (B, F, S, D), c (B, D), ecg (B, E, D)."""
        b, f, s, d = x.shape
        mods = self.ada(c).chunk(12, dim=-1)

        def branch(h, k):  # AdaLN-modulated input of branch k, and its gate
            return modulate(h, mods[3 * k], mods[3 * k + 1]), mods[3 * k + 2][:, None]

        h, gate = branch(self.norm_s(x.reshape(b, f * s, d)), 0)
        x = x + (gate * self.spatial(h.reshape(b * f, s, d)).reshape(b, f * s, d)).reshape(b, f, s, d)
        h, gate = branch(self.norm_t(x.reshape(b, f * s, d)), 1)
        h = h.reshape(b, f, s, d).transpose(1, 2).reshape(b * s, f, d)
        x = x + (gate * self.temporal(h).reshape(b, s, f, d).transpose(1, 2).reshape(b, f * s, d)).reshape(b, f, s, d)
        h, gate = branch(self.norm_x(x.reshape(b, f * s, d)), 2)
        x = x + (gate * self.cross(h, ecg)).reshape(b, f, s, d)
        h, gate = branch(self.norm_m(x.reshape(b, f * s, d)), 3)
        return x + (gate * self.mlp(h)).reshape(b, f, s, d)


class EcgFlow(nn.Module, Pretrained):
    """The DiT velocity model v(z_t, t | ECG cycle, slice position, anatomy) and its sampler, with the
    template (mean training code) it starts from stored as a buffer in the weights."""

    config_class = EcgFlowConfig
    default_weights = "ecg_flow"

    def _check_loaded(self, folder_or_name, **options) -> "EcgFlow":
        if self.config.spacing_mm is None:
            raise WeightsError(f"{folder_or_name}: config.json does not record the pixel size (spacing_mm) of the "
                               "cines it was trained on")
        return super()._check_loaded(folder_or_name, **options)

    def __init__(self, config: EcgFlowConfig):
        super().__init__()
        self.config = c = config
        d, p = c.width, c.patch
        self.register_buffer("template", torch.zeros(c.latent_shape))  # set from the training latents
        self.patch_in = nn.Linear(c.latent_channels * p * p, d)
        side = c.latent_size // p
        spatial = position_table(side * side, d)  # fixed; index = row * side + col
        self.register_buffer("spatial_pos", spatial, persistent=False)
        self.register_buffer("frame_pos", position_table(c.latent_frames, d), persistent=False)
        self.register_buffer("ecg_pos", position_table(c.ecg_frames, d), persistent=False)
        self.ecg_in = nn.Sequential(nn.LayerNorm(c.ecg_dim), nn.Linear(c.ecg_dim, d))
        self.null_ecg = nn.Parameter(torch.zeros(c.ecg_frames, c.ecg_dim))
        self.ecg_to_frame = nn.Linear(d, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.slice_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.patch_out = nn.Linear(d, c.latent_channels * p * p)
        for layer in (self.ada_out[1], self.patch_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.null_ecg, std=0.02)

    # ------------------------------------------------------------------------------------------ layout
    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) -> (B, F, S, C * p * p)."""
        b, ch, f, h, w = z.shape
        p = self.config.patch
        z = z.reshape(b, ch, f, h // p, p, w // p, p).permute(0, 2, 3, 5, 1, 4, 6)
        return z.reshape(b, f, (h // p) * (w // p), ch * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b, f, s, _ = x.shape
        c, p = self.config.latent_channels, self.config.patch
        side = int(math.isqrt(s))
        x = x.reshape(b, f, side, side, c, p, p).permute(0, 4, 1, 2, 5, 3, 6)
        return x.reshape(b, c, f, side * p, side * p)

    # ------------------------------------------------------------------------------------------ network
    def forward(self, z: torch.Tensor, t: torch.Tensor, ecg: torch.Tensor | None, slice_position: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity for latents z (B, C, F, H, W) at flow times t (B,), per-frame ECG features (B, E, ecg_dim) (None
        = unconditional), slice positions (B,); ``drop`` (B,) bool replaces those rows' ECG by the null sequence."""
        c = self.config
        b = z.shape[0]
        null = self.null_ecg.expand(b, -1, -1)
        if ecg is None:
            ecg = null
        elif drop is not None:
            ecg = torch.where(drop[:, None, None], null, ecg)
        e = self.ecg_in(ecg) + self.ecg_pos  # (B, E, D)
        per_frame = F.adaptive_avg_pool1d(e.transpose(1, 2), c.latent_frames).transpose(1, 2)  # (B, F, D)
        x = self.patch_in(self.patchify(z)) + self.spatial_pos + self.frame_pos[:, None] + self.ecg_to_frame(per_frame)[:, :, None]
        # times and slice positions in [0, 1], scaled by 1000 as DiT's timesteps
        cond = (self.time_mlp(timestep_embedding(t, c.width, scale=1000.0))
                + self.slice_mlp(timestep_embedding(slice_position, c.width, scale=1000.0)))
        for block in self.blocks:
            x = block(x, cond, e)
        shift, scale = self.ada_out(cond).chunk(2, dim=-1)
        b, f, s, d = x.shape
        x = modulate(self.norm_out(x.reshape(b, f * s, d)), shift, scale).reshape(b, f, s, d)
        return self.unpatchify(self.patch_out(x))

    def velocity(self, z: torch.Tensor, t: torch.Tensor, ecg: torch.Tensor | None, slice_position: torch.Tensor,
                 drop: torch.Tensor | None = None) -> torch.Tensor:
        """dz/dt at (z, t): the network's output read as a velocity or as the clean latent x1 (see the module doc)."""
        out = self(z, t, ecg, slice_position, drop)
        if self.config.prediction == "velocity":
            return out
        return (out - z) / (1 - t).clamp_min(1e-3)[:, None, None, None, None]

    def hold_known(self, z: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
        """``z`` with its first ``known_channels`` channels set to ``known``'s (a copy; ``z`` when none)."""
        k = self.config.known_channels
        if not k:
            return z
        if known is None or known.shape[0] != z.shape[0] or known.shape[1] < k:
            raise ValueError(f"this flow draws motion for a given anatomy: pass known codes with at least {k} "
                             f"channels for each of the {z.shape[0]} samples")
        return torch.cat([known[:, :k].to(z), z[:, k:]], dim=1)

    def loss(self, z1: torch.Tensor, ecg: torch.Tensor, slice_position: torch.Tensor,
             generator: torch.Generator | None = None, condition_dropout: float = 0.1) -> torch.Tensor:
        """Flow-matching loss on the straight path from z0 = template + alpha * eps to z1: MSE of the predicted
        velocity against z1 - z0, or of the predicted x1 against z1, on the drawn (not the known) channels; the
        null ECG for a ``condition_dropout`` share of the examples (the trainer passes its recipe's)."""
        b, k = z1.shape[0], self.config.known_channels
        device = z1.device
        eps = torch.randn(z1.shape, generator=generator).to(device)
        t = torch.rand(b, generator=generator).to(device)
        drop = (torch.rand(b, generator=generator) < condition_dropout).to(device)
        z0 = self.template + self.config.alpha * eps
        zt = self.hold_known((1 - t)[:, None, None, None, None] * z0 + t[:, None, None, None, None] * z1, z1)
        target = z1 - z0 if self.config.prediction == "velocity" else z1
        return F.mse_loss(self(zt, t, ecg, slice_position, drop)[:, k:], target[:, k:])

    @torch.no_grad()
    def sample(self, ecg: torch.Tensor, slice_position: torch.Tensor, steps: int | None = None, cfg: float | None = None,
               generator: torch.Generator | None = None, known: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, C, F, H, W) from the noisy template in ``steps`` steps of the config's sampler, the first
        ``known_channels`` held at ``known``'s (B, >= known_channels, F, H, W) throughout:
        ``euler`` integrates dz/dt = v; ``renoise`` turns each step's velocity into a clean estimate
        x1 = z + (1 - t) v and puts it back on the training path at the next time with fresh template noise,
        z = (1 - t') (template + alpha eps') + t' x1, so the network always sees inputs of the kind it was
        trained on (the multistep sampler of consistency models)."""
        c = self.config
        steps, cfg = steps or c.sampler.sampling_steps, c.sampler.cfg if cfg is None else cfg
        b = ecg.shape[0]
        device = self.template.device
        ecg, slice_position = ecg.to(device).float(), slice_position.to(device).float()

        def noisy_template():
            return self.template + c.alpha * torch.randn((b, *c.latent_shape), generator=generator).to(device)

        known = None if known is None else known.to(device).float()
        z = self.hold_known(noisy_template(), known)
        for i in range(steps):
            t = torch.full((b,), i / steps, device=device)
            if cfg != 1.0:  # one batch: ECG rows then null rows
                both = self.velocity(torch.cat([z, z]), torch.cat([t, t]), torch.cat([ecg, ecg]),
                                     torch.cat([slice_position, slice_position]),
                                     torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(device))
                v_ecg, v_null = both.chunk(2)
                v = v_null + cfg * (v_ecg - v_null)
            else:
                v = self.velocity(z, t, ecg, slice_position)
            if c.sampler.method == "euler":
                z = self.hold_known(z + v / steps, known)
                continue
            x1 = z + (1 - i / steps) * v  # the clean estimate: the output at the last step, re-noised before
            following = (i + 1) / steps
            z = self.hold_known(x1 if i == steps - 1 else (1 - following) * noisy_template() + following * x1, known)
        return z

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
