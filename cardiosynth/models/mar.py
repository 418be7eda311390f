"""Masked autoregressive transformer with a per-token diffusion loss (MAR, Li et al. 2024), as used by CPGG.

A cine's packed anatomy + motion code (C, 1, g, g; :mod:`cardiosynth.models.anatomy_motion`: the ED frame's
autoencoder latent and the motion code on one 16 x 16 grid) is cut into p_s x p_s tokens, so each token holds
one patch's anatomy *and* its motion. An MAE-style encoder sees the visible tokens plus ``buffer_size``
condition tokens (the phenotype vector and slice position through an MLP: CPGG's [CLS]-like token); a decoder
fills the masked positions with a mask token and returns, for every token, a vector z_i. A small MLP denoiser
(AdaLN on z_i and the noise level) models p(token_i | z_i) with a diffusion loss on the masked tokens only --
no vector quantisation. Generation starts fully masked and unmasks the tokens over K steps on a cosine
schedule, sampling each newly unmasked token with the denoiser; classifier-free guidance uses a learned null
condition. With ``known`` channels (a real heart's anatomy), only the others are drawn: editing.

    model = MAR.from_pretrained("mar")                                   # EMA weights, sha256-checked
    codes = model.generate(phenotypes, slice_position, num_iter=8, cfg=3.0, seed=0)  # (B, C, 1, g, g) codes
    # cines = codec.decode_codes(codes)                       # with the representation it was trained on

The model knows nothing about the representation: it takes and returns latent tensors (C, t, h, w) whose
shape is in the config (the 3D-VAE latents of the first rounds had t = 8; reports/mar/README.md).
Conditions are tensors: the schema phenotypes (B, P) in the config's order (standardised by a scaler fitted
once on the training split and stored in the config, never refit at load: :func:`standardise_phenotypes`) plus
slice position (B,) (0 base ... 1 apex). Tables and requests are the pipeline's business.

Departures from LTH14/mar (each for a reason):
- the denoiser predicts v (Salimans & Ho 2022) instead of epsilon with learned variances: the cosine
  schedule ends at alpha_bar ~ 1e-9, where turning a predicted epsilon into x0 amplifies its error ~10^4x;
  LTH14 offsets this with learned variances and 100 steps, we sample in 25 on a CPU. Sampling is DDPM with
  the posterior ("fixed small") variance, whose noise the temperature scales.
- the denoiser runs on the masked tokens only (LTH14 runs it on all and masks the loss): same loss, less work.
- conditions are continuous (an MLP instead of a class embedding); the null condition is a learned vector.
- guidance is constant, not LTH14's linear ramp (chosen on the validation split). Decoding orders by latent
  time step ("temporal", "reverse") remain for latents with more than one token in time.
- editing fixes the known channels of every token by replacing them, at each denoising step, with the known
  values noised to that step's level (RePaint-style inpainting inside the token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cardiosynth import phenotypes as ph
from cardiosynth.models.embeddings import timestep_embedding
from cardiosynth.weights import Pretrained, WeightsError, check_dependency

TRAIN_COMMAND = "python -m training.train_mar --config vae3d (weights/mar) or --config default (weights/mar_motion)"


DECODING_ORDERS = ("random", "temporal", "reverse")
REPRESENTATIONS = ("anatomy_motion", "vae3d")


@dataclass(frozen=True)
class PhenotypeScaler:
    """Fitted statistics: the mean and SD of each conditioning phenotype over the training split (filled by
    training.train_mar, never refit at load)."""

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class MARSampler:
    """Sampler defaults: what :meth:`MAR.generate` uses when a call does not say (chosen on val)."""

    num_iter: int = 8  # K decoding steps
    cfg: float = 3.0
    cfg_schedule: str = "constant"  # chosen on val over "linear" (LTH14's), see reports/mar/README.md
    temperature: float = 0.25  # chosen on val (reports/mar/README.md)
    decoding_order: str = "random"  # LTH14's; or "temporal" (by latent time step, first one (ED) first), "reverse"
    sampling_steps: int = 25  # respaced DDPM steps of the per-token denoiser (sized for a CPU)

    def __post_init__(self):
        if self.cfg_schedule not in ("linear", "constant"):
            raise ValueError("cfg_schedule must be 'linear' or 'constant'")
        if self.decoding_order not in DECODING_ORDERS:
            raise ValueError(f"decoding_order must be one of {DECODING_ORDERS}")


@dataclass
class MARConfig:
    """The architecture and its conditions, then (one dataclass each) the fitted phenotype scaler and the sampler
    defaults; saved, nested the same way, in ``config.json``, the training recipe (training.recipes) beside it."""

    # what the latents are: "anatomy_motion" (packed codes, cardiosynth.models.anatomy_motion) or "vae3d" (the
    # first rounds' 3D-VAE latents, 4 x 8 x 16 x 16, still bundled for de novo generation; reports/mar/README.md)
    representation: str = "anatomy_motion"
    # pixel size (mm) of the cines it was trained on, and so of the cines its codes decode to: the trainer records
    # the prepared dataset's; from_pretrained refuses weights without it (None only before training)
    spacing_mm: float | None = None
    # packed anatomy + motion code of one cine: channels x t x h x w (8 anatomy + 5 x 2 motion channels)
    latent_channels: int = 18
    latent_frames: int = 1
    latent_size: int = 16
    patch_t: int = 1
    patch_s: int = 2  # a token is one 2x2 patch of the grid: 72 values (the 3D-VAE rounds' tokens held 128)
    # transformer
    width: int = 256
    encoder_depth: int = 6
    decoder_depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1  # attention and projection dropout (LTH14 uses 0.1); we have ~300 training cines
    buffer_size: int = 4  # condition tokens prepended to the sequence (LTH14: 64 copies of the class token)
    # conditions: exactly these schema phenotypes (standardised by ``scaler``) + slice position
    phenotypes: tuple[str, ...] = ph.NAMES
    # per-token denoiser (SimpleMLPAdaLN) and its diffusion
    denoiser_width: int = 512  # 4x the token (128 values)
    denoiser_blocks: int = 3
    diffusion_steps: int = 1000  # training timesteps, cosine schedule
    scaler: PhenotypeScaler = field(default_factory=PhenotypeScaler)
    sampler: MARSampler = field(default_factory=MARSampler)

    def __post_init__(self):
        if self.latent_frames % self.patch_t or self.latent_size % self.patch_s:
            raise ValueError(f"Latent {self.latent_frames}x{self.latent_size}x{self.latent_size} is not divisible "
                             f"by the patch {self.patch_t}x{self.patch_s}x{self.patch_s}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        unknown = [n for n in self.phenotypes if n not in ph.NAMES]
        if unknown:
            raise ValueError(f"Unknown phenotypes {unknown}; the schema names are {ph.NAMES}")
        for name in ("mean", "std"):
            if len(getattr(self.scaler, name)) not in (0, len(self.phenotypes)):
                raise ValueError(f"The scaler's {name} needs one value per phenotype ({len(self.phenotypes)})")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}; got {self.representation!r}")

    @property
    def grid(self) -> tuple[int, int, int]:
        return (self.latent_frames // self.patch_t, self.latent_size // self.patch_s, self.latent_size // self.patch_s)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    @property
    def token_dim(self) -> int:
        return self.latent_channels * self.patch_t * self.patch_s ** 2

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        return (self.latent_channels, self.latent_frames, self.latent_size, self.latent_size)


CONFIGS = {
    # 16x64x64 cine -> packed code 18x1x16x16 -> 64 tokens of 72 (2x2 patches); ~15 M parameters,
    # ~1.3 s per training step on 2 CPU cores
    "default": MARConfig(),
    # the first rounds' representation, still the bundled de novo generator: 3D-VAE latent 4x8x16x16 -> 64 tokens
    # of 128 (2x2 latent patches over all 8 time steps: with 2 time steps per token the motion of neighbouring
    # tokens in time did not join up, reports/mar/README.md)
    "vae3d": MARConfig(representation="vae3d", latent_channels=4, latent_frames=8, latent_size=16, patch_t=8),
    # CPGG paper scale: 50x96x96 cines -> packed code (8 + 6 x 2) x 1 x 24 x 24 (frame_ae / motion "paper"),
    # patch 2 -> 144 tokens of 80; 12 + 12 layers of width 768, denoiser 3 x 1024, K = 16 (its recipe: AdamW lr
    # 8e-4, 400 epochs); MAR-B's 64 buffer tokens and 100 sampling steps.
    "paper": MARConfig(latent_channels=20, latent_frames=1, latent_size=24, patch_t=1, patch_s=2, width=768,
                       encoder_depth=12, decoder_depth=12, heads=12, buffer_size=64, denoiser_width=1024,
                       denoiser_blocks=3,
                       # temperature: LTH14's; choose the sampler on val once trained, as for the default
                       sampler=MARSampler(sampling_steps=100, num_iter=16, temperature=1.0)),
}


# ---------------------------------------------------------------------------------------------------------
# Tokens, masks and schedules


def patchify(latents: torch.Tensor, patch_t: int, patch_s: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, L, C*p_t*p_s*p_s), tokens in (t, h, w) raster order."""
    b, c, t, h, w = latents.shape
    x = latents.reshape(b, c, t // patch_t, patch_t, h // patch_s, patch_s, w // patch_s, patch_s)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)
    return x.reshape(b, (t // patch_t) * (h // patch_s) * (w // patch_s), c * patch_t * patch_s * patch_s)


def unpatchify(tokens: torch.Tensor, channels: int, grid: tuple[int, int, int], patch_t: int, patch_s: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, L, D) -> (B, C, T, H, W)."""
    b = tokens.shape[0]
    gt, gh, gw = grid
    x = tokens.reshape(b, gt, gh, gw, channels, patch_t, patch_s, patch_s)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return x.reshape(b, channels, gt * patch_t, gh * patch_s, gw * patch_s)


def sample_mask_ratio(n: int, generator: torch.Generator | None = None, minimum: float = 0.7,
                      std: float = 0.25) -> torch.Tensor:
    """(n,) training mask ratios: a normal of mean 1 and SD ``std`` truncated to [minimum, 1] (LTH14), drawn by
    inverting the CDF so one generator makes it reproducible. Mostly-masked sequences match generation's start."""
    normal = torch.distributions.Normal(0.0, 1.0)
    low = normal.cdf(torch.tensor((minimum - 1.0) / std))
    device = generator.device if generator is not None else "cpu"
    u = low + (0.5 - low) * torch.rand(n, generator=generator, device=device).cpu()
    return (1.0 + std * torch.special.ndtri(u)).clamp(minimum, 1.0)


def decoding_schedule(num_tokens: int, num_iter: int) -> list[int]:
    """Tokens still masked after each of the K decoding steps: floor(L cos(pi/2 (k+1)/K)), but every step
    unmasks at least one token and at least one stays masked until the last step, which unmasks all (LTH14)."""
    masked, out = num_tokens, []
    for k in range(num_iter):
        if k == num_iter - 1:
            masked = 0
        else:
            target = math.floor(num_tokens * math.cos(math.pi / 2 * (k + 1) / num_iter))
            masked = max(1, min(masked - 1, target))
        out.append(masked)
    return out


def mask_by_order(num_masked: int, orders: torch.Tensor) -> torch.Tensor:
    """(B, L) bool mask with the first ``num_masked`` tokens of each row's random order masked."""
    mask = torch.zeros(orders.shape, dtype=torch.bool, device=orders.device)
    return mask.scatter(1, orders[:, :num_masked], True)


def cosine_alphas_cumprod(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """alpha_bar_t of the cosine schedule (Nichol & Dhariwal 2021), float64, t = 0 .. steps-1."""
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f((i + 1) / steps) / f(i / steps), max_beta) for i in range(steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def _randn(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Normal noise from ``generator`` (on its own device), moved to ``device``: same seed, same numbers."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _rand(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


# ---------------------------------------------------------------------------------------------------------
# Transformer (nanoGPT-style pre-norm blocks, bidirectional attention)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ---------------------------------------------------------------------------------------------------------
# Per-token denoiser (LTH14's SimpleMLPAdaLN)


class AdaLNResBlock(nn.Module):
    """LayerNorm -> shift/scale from (z_i, t) -> MLP -> gated residual."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class Denoiser(nn.Module):
    """Predicts v for one noisy token x_t given its transformer output z_i and the timestep t."""

    def __init__(self, token_dim: int, z_dim: int, width: int, blocks: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.input_proj = nn.Linear(token_dim, width)
        self.time_embed = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.cond_embed = nn.Linear(z_dim, width)
        self.blocks = nn.ModuleList(AdaLNResBlock(width) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.final = nn.Linear(width, token_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, self.time_embed(timestep_embedding(t, self.frequency_dim)) + self.cond_embed(z))

    def denoise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x_t (N, D) and the summed time + condition embedding y (N or 1, width) -> predicted v (N, D).
        Sampling embeds z once and t once per step (the same t for every token), then calls this."""
        h = self.input_proj(x)
        for block in self.blocks:
            h = block(h, y)
        shift, scale = self.final_modulation(y).chunk(2, dim=-1)
        return self.final(self.final_norm(h) * (1 + scale) + shift)


# ---------------------------------------------------------------------------------------------------------
# MAR


def standardise_phenotypes(values: np.ndarray, config: MARConfig) -> np.ndarray:
    """Phenotypes (..., P) in schema units, in ``config.phenotypes`` order -> standardised by the scaler fitted
    on the training split (float64). The one place the scaler is applied: training, generation, warnings."""
    return (np.asarray(values, np.float64) - np.asarray(config.scaler.mean)) / np.asarray(config.scaler.std)


class MAR(nn.Module, Pretrained):
    """The masked autoregressive transformer with a per-token diffusion head. Loaded with its EMA weights and
    the phenotype scaler from ``config.json``; ``MAR.from_pretrained(folder, frame_ae=..., motion=...)`` also
    refuses a representation other than the one it was trained on."""

    config_class = MARConfig
    default_weights = "mar"

    @classmethod
    def from_pretrained(cls, folder_or_name: str | Path | None = None, **representation: str | Path) -> "MAR":
        folder_or_name = cls.default_weights if folder_or_name is None else folder_or_name
        try:
            return super().from_pretrained(folder_or_name, **representation)
        except WeightsError as error:
            if "No weights found" in str(error):
                raise WeightsError(f"No MAR weights at {folder_or_name} (nor bundled as weights/{folder_or_name}). "
                                   f"Train them (after frame_ae and motion) with: {TRAIN_COMMAND}") from None
            raise

    def _check_loaded(self, folder_or_name: str | Path, **representation: str | Path) -> "MAR":
        if not self.config.scaler.mean:
            raise WeightsError(f"{folder_or_name}: config.json lacks the phenotype scaler")
        if self.config.spacing_mm is None:
            raise WeightsError(f"{folder_or_name}: config.json does not record the pixel size (spacing_mm) of the "
                               "cines it was trained on")
        for name, folder in representation.items():
            check_dependency({"depends_on": self.depends_on}, name, folder)
        return self

    def __init__(self, config: MARConfig):
        super().__init__()
        self.config = c = config
        n, w, seq = c.num_tokens, c.width, c.buffer_size + c.num_tokens
        # condition: standardised phenotypes + slice position -> one vector, copied into the buffer tokens
        self.condition_mlp = nn.Sequential(nn.Linear(len(c.phenotypes) + 1, w), nn.SiLU(), nn.Linear(w, w))
        self.null_condition = nn.Parameter(torch.zeros(1, w))
        # MAE encoder: visible tokens + buffer
        self.token_embed = nn.Linear(c.token_dim, w)
        self.encoder_pos = nn.Parameter(torch.zeros(1, seq, w))
        self.embed_norm = nn.LayerNorm(w, eps=1e-6)
        self.encoder = nn.ModuleList(Block(w, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.encoder_depth))
        self.encoder_norm = nn.LayerNorm(w, eps=1e-6)
        # MAE decoder: encoder output scattered back, mask tokens elsewhere
        self.decoder_embed = nn.Linear(w, w)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, w))
        self.decoder_pos = nn.Parameter(torch.zeros(1, seq, w))
        self.decoder = nn.ModuleList(Block(w, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.decoder_depth))
        self.decoder_norm = nn.LayerNorm(w, eps=1e-6)
        self.diffusion_pos = nn.Parameter(torch.zeros(1, n, w))
        self.denoiser = Denoiser(c.token_dim, w, c.denoiser_width, c.denoiser_blocks)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(c.diffusion_steps).float(), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.null_condition, self.mask_token, self.encoder_pos, self.decoder_pos, self.diffusion_pos):
            nn.init.normal_(p, std=0.02)
        d = self.denoiser  # DiT/LTH14: small time MLP, zero AdaLN and output so each block starts as identity
        for layer in (d.time_embed[0], d.time_embed[2]):
            nn.init.normal_(layer.weight, std=0.02)
        for layer in [b.modulation[-1] for b in d.blocks] + [d.final_modulation[-1], d.final]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- tokens and conditions ----------------------------------------------------------------------

    def patchify(self, latents: torch.Tensor) -> torch.Tensor:
        expected = self.config.latent_shape
        if latents.dim() != 5 or tuple(latents.shape[1:]) != expected:
            raise ValueError(f"MAR expects scaled latents (B, {', '.join(map(str, expected))}); got {tuple(latents.shape)}")
        return patchify(latents, self.config.patch_t, self.config.patch_s)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        c = self.config
        return unpatchify(tokens, c.latent_channels, c.grid, c.patch_t, c.patch_s)

    def embed_condition(self, phenotypes_std: torch.Tensor, slice_position: torch.Tensor) -> torch.Tensor:
        """(B, P) standardised phenotypes + (B,) slice position in [0, 1] -> (B, width)."""
        p = len(self.config.phenotypes)
        if phenotypes_std.dim() != 2 or phenotypes_std.shape[1] != p:
            raise ValueError(f"Expected standardised phenotypes (B, {p}) in the order {self.config.phenotypes}; "
                             f"got {tuple(phenotypes_std.shape)}")
        slice_position = slice_position.reshape(-1)
        if len(slice_position) != len(phenotypes_std):
            raise ValueError(f"{len(phenotypes_std)} phenotype rows but {len(slice_position)} slice positions")
        if not torch.isfinite(phenotypes_std).all():  # a training table's gap; requests are checked before
            raise ValueError("Conditions contain NaN or infinite values: every phenotype is required (use "
                             "unconditional generation, conditions=None, for none)")
        x = torch.cat([phenotypes_std, (2 * slice_position - 1)[:, None]], dim=1).to(self.null_condition.dtype)
        return self.condition_mlp(x)

    def standardise(self, phenotypes, slice_position=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Phenotypes (N, P) in schema units, columns in the config's ``phenotypes`` order, and slice positions
        (N,) in [0, 1] (default 0.5 = mid-ventricle) -> (phenotypes_std, slice_position) float32 tensors, with
        the scaler stored in the config. Wrong shapes and NaN phenotypes are a ValueError; the positions are taken
        as given (a request is checked once, where it is parsed: cardiosynth.pipelines.requests)."""
        c = self.config
        if not c.scaler.mean:
            raise ValueError("This MAR config has no phenotype scaler (scaler.mean/std): it was not trained by "
                             f"training.train_mar. Train it with: {TRAIN_COMMAND}")
        values = np.asarray(phenotypes.cpu() if isinstance(phenotypes, torch.Tensor) else phenotypes, np.float64)
        if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] != len(c.phenotypes):
            raise ValueError(f"Expected phenotypes (N, {len(c.phenotypes)}) in schema units, in the order "
                             f"{c.phenotypes}; got shape {values.shape}")
        position = (np.full(len(values), 0.5) if slice_position is None else
                    np.asarray(slice_position.cpu() if isinstance(slice_position, torch.Tensor) else slice_position,
                               np.float64).reshape(-1))
        if len(position) != len(values):
            raise ValueError(f"{len(values)} phenotype rows but {len(position)} slice positions")
        bad = [(int(i), c.phenotypes[j]) for i, j in zip(*np.nonzero(~np.isfinite(values)))]
        if bad:
            raise ValueError(f"Missing (NaN) or infinite phenotype values at (row, name): {bad[:10]}")
        return (torch.tensor(standardise_phenotypes(values, c), dtype=torch.float32),
                torch.tensor(position, dtype=torch.float32))

    # --- MAE encoder / decoder ----------------------------------------------------------------------

    def _keep(self, mask: torch.Tensor) -> torch.Tensor:
        buffer = torch.ones(mask.shape[0], self.config.buffer_size, dtype=torch.bool, device=mask.device)
        return torch.cat([buffer, ~mask], dim=1)

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Visible tokens + condition buffer -> encoder states (B, buffer + visible, width). Every row has the
        same number of masked tokens, so dropping them keeps a rectangular batch."""
        b, w = tokens.shape[0], self.config.width
        x = torch.cat([condition[:, None].expand(b, self.config.buffer_size, w), self.token_embed(tokens)], dim=1)
        x = self.embed_norm(x + self.encoder_pos)
        x = x[self._keep(mask)].reshape(b, -1, w)
        for block in self.encoder:
            x = block(x)
        return self.encoder_norm(x)

    def decode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder states -> z (B, L, width): one vector per token position that conditions the denoiser."""
        b, w = x.shape[0], self.config.width
        keep = self._keep(mask)
        full = self.mask_token.to(x.dtype).repeat(b, keep.shape[1], 1)
        full[keep] = self.decoder_embed(x).reshape(-1, w)
        full = full + self.decoder_pos
        for block in self.decoder:
            full = block(full)
        return self.decoder_norm(full)[:, self.config.buffer_size:] + self.diffusion_pos

    # --- training -----------------------------------------------------------------------------------

    def loss(self, latents: torch.Tensor, phenotypes_std: torch.Tensor, slice_position: torch.Tensor,
             generator: torch.Generator | None = None, condition_dropout: float = 0.1, mask_ratio_min: float = 0.7,
             mask_ratio_std: float = 0.25, diffusion_batch_mul: int = 4) -> torch.Tensor:
        """Diffusion loss (v-prediction MSE) on the masked tokens of scaled latents (B, C, t, h, w).

        One mask ratio per batch (LTH14: truncated normal, mean 1, SD ``mask_ratio_std``, on [``mask_ratio_min``,
        1]), a random order per example, the null condition for a ``condition_dropout`` share of examples
        (training mode only), ``diffusion_batch_mul`` noise levels per masked token; the trainer passes its
        recipe's. All randomness comes from ``generator`` when given (a fixed one makes validation exact)."""
        c, device = self.config, latents.device
        tokens = self.patchify(latents)
        b, n, _ = tokens.shape
        condition = self.embed_condition(phenotypes_std.to(device), slice_position.to(device))
        if self.training and condition_dropout > 0:
            drop = _rand((b, 1), generator, device) < condition_dropout
            condition = torch.where(drop, self.null_condition.to(condition.dtype), condition)
        ratio = float(sample_mask_ratio(1, generator, mask_ratio_min, mask_ratio_std))
        orders = torch.argsort(_rand((b, n), generator, device), dim=1)
        mask = mask_by_order(min(n, max(1, math.ceil(n * ratio))), orders)
        z = self.decode(self.encode(tokens, mask, condition), mask)
        target = tokens[mask].repeat(diffusion_batch_mul, 1)
        z = z[mask].repeat(diffusion_batch_mul, 1)
        t = (_rand(len(target), generator, device) * c.diffusion_steps).long().clamp(max=c.diffusion_steps - 1)
        noise = _randn(target.shape, generator, device)
        a = self.alphas_cumprod[t][:, None]
        x_t = a.sqrt() * target + (1 - a).sqrt() * noise
        v = a.sqrt() * noise - (1 - a).sqrt() * target
        return F.mse_loss(self.denoiser(x_t, t, z), v)

    # --- generation ---------------------------------------------------------------------------------

    def _sample_tokens(self, z: torch.Tensor, cfg: float, temperature: float, steps: int,
                       generator: torch.Generator | None, known: torch.Tensor | None = None,
                       known_dims: int = 0) -> torch.Tensor:
        """DDPM over ``steps`` respaced timesteps for N tokens given z (N, width), or (2N, width) = [cond; null]
        when ``cfg`` != 1 (both halves share the noise; v is guided as uncond + cfg (cond - uncond)). With
        ``known`` (N, D), the first ``known_dims`` values of every token are held to it: after each step they
        are replaced by the known values noised to that step's level, and end exactly equal to them."""
        guided = cfg != 1.0
        n = len(z) // 2 if guided else len(z)
        device = z.device
        timesteps = torch.linspace(0, self.config.diffusion_steps - 1, steps).round().long()
        acp = cosine_alphas_cumprod(self.config.diffusion_steps)[timesteps]
        acp_prev = torch.cat([torch.ones(1, dtype=torch.float64), acp[:-1]])
        x = _randn((n, self.config.token_dim), generator, device)
        d = self.denoiser
        z_embedded = d.cond_embed(z)
        for i in reversed(range(steps)):
            a, a_prev = float(acp[i]), float(acp_prev[i])
            t = timesteps[i:i + 1].to(device)
            y = z_embedded + d.time_embed(timestep_embedding(t, d.frequency_dim))
            v = d.denoise(torch.cat([x, x]) if guided else x, y)
            if guided:
                v_cond, v_null = v.chunk(2)
                v = v_null + cfg * (v_cond - v_null)
            x0 = math.sqrt(a) * x - math.sqrt(1 - a) * v
            beta = 1 - a / a_prev
            mean = (math.sqrt(a_prev) * beta / (1 - a)) * x0 + (math.sqrt(1 - beta) * (1 - a_prev) / (1 - a)) * x
            if i > 0:
                variance = beta * (1 - a_prev) / (1 - a)
                x = mean + math.sqrt(variance) * temperature * _randn(x.shape, generator, device)
            else:
                x = mean
            if known_dims:
                noise = _randn((n, known_dims), generator, device) if i > 0 else 0.0
                x[:, :known_dims] = math.sqrt(a_prev) * known[:, :known_dims] + math.sqrt(1 - a_prev) * noise
        return x

    @torch.no_grad()
    def generate(self, phenotypes=None, slice_position=None, num_samples: int | None = None, num_iter: int | None = None,
                 cfg: float | None = None, cfg_schedule: str | None = None, temperature: float | None = None,
                 seed: int | None = 0, generator: torch.Generator | None = None,
                 sampling_steps: int | None = None, known: torch.Tensor | None = None,
                 known_channels: int = 0, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Scaled latents (B, C, t, h, w) for phenotypes (B, P) in schema units and slice positions (B,) (see
        :meth:`standardise`), or ``num_samples`` unconditional ones when ``phenotypes`` is None. With ``known`` latents (B, C, t, h, w)
        and ``known_channels`` > 0, their first ``known_channels`` channels are kept exactly and only the
        others drawn (a real heart's anatomy with motion for new conditions). ``on_step(k, K)`` is called after
        each decoding step (progress for a user who waits; it does not touch the draws).

        Starts fully masked; step k predicts z for all positions, then samples the tokens that leave the mask
        at this step (cosine schedule; order from the config's ``decoding_order``). CFG "constant" guides every
        step by ``cfg``; "linear" raises it from 1 to ``cfg`` as tokens are decoded (early tokens stay diverse).
        Deterministic on CPU for a given ``seed`` (or ``generator``); defaults come from the config."""
        c, defaults = self.config, self.config.sampler
        num_iter = num_iter or defaults.num_iter
        cfg = defaults.cfg if cfg is None else float(cfg)
        cfg_schedule = cfg_schedule or defaults.cfg_schedule
        temperature = defaults.temperature if temperature is None else float(temperature)
        steps = sampling_steps or defaults.sampling_steps
        if cfg_schedule not in ("linear", "constant"):
            raise ValueError("cfg_schedule must be 'linear' or 'constant'")
        device = self.null_condition.device
        if generator is None and seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        if phenotypes is None:
            if not num_samples:
                raise ValueError("Give phenotypes, or num_samples for unconditional generation")
            condition = self.null_condition.expand(num_samples, -1)
            cfg = 1.0  # nothing to guide towards
        else:
            phenotypes_std, position = self.standardise(phenotypes, slice_position)
            condition = self.embed_condition(phenotypes_std.to(device), position.to(device))
        guided = cfg != 1.0
        b, n = len(condition), c.num_tokens
        if guided:
            condition = torch.cat([condition, self.null_condition.expand(b, -1)])
        known_dims = int(known_channels) * c.patch_t * c.patch_s ** 2
        if known_dims:
            if not 0 < known_channels < c.latent_channels or known is None or len(known) != b:
                raise ValueError(f"known needs {b} latents and 0 < known_channels < {c.latent_channels}")
            known = self.patchify(known.to(device, torch.float32))
        tokens = torch.zeros(b, n, c.token_dim, device=device)
        mask = torch.ones(b, n, dtype=torch.bool, device=device)
        keys = _rand((b, n), generator, device)
        if defaults.decoding_order != "random":  # the tail of an order is decoded first; tokens are in (t, h, w) order
            time_step = torch.arange(n, device=device) // (c.grid[1] * c.grid[2])
            keys = keys + (time_step if defaults.decoding_order == "reverse" else -time_step)
        orders = torch.argsort(keys, dim=1)
        pair = (lambda x: torch.cat([x, x])) if guided else (lambda x: x)  # [conditional; null] halves for CFG
        schedule = decoding_schedule(n, num_iter)
        for step, num_masked in enumerate(schedule, start=1):
            z = self.decode(self.encode(pair(tokens), pair(mask), condition), pair(mask))
            next_mask = mask_by_order(num_masked, orders)
            to_predict = mask & ~next_mask
            if to_predict.any():
                z = torch.cat([z[:b][to_predict], z[b:][to_predict]]) if guided else z[to_predict]
                scale = 1 + (cfg - 1) * (n - num_masked) / n if cfg_schedule == "linear" else cfg
                tokens[to_predict] = self._sample_tokens(z, scale, temperature, steps, generator,
                                                         known[to_predict] if known_dims else None, known_dims)
            mask = next_mask
            if on_step is not None:
                on_step(step, len(schedule))
        return self.unpatchify(tokens)
