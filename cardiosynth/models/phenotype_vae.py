"""Phenotype VAE (stage 1 of CPGG): the network, over the coordinates of the five independent phenotypes.

The model only sees the five independent phenotypes, in coordinates where every decoded set is internally
consistent by construction::

    u = (log LVEDV, logit(LVESV / LVEDV), log LVM, log RVEDV, logit(RVESV / RVEDV))

standardised with a scaler fitted on the training split and saved in ``config.json`` (``scaler``). Decoding
any ``u`` gives volumes > 0 with 0 < ESV < EDV, and the derived phenotypes are computed exactly from them
(``SV = EDV - ESV``, ``EF = 100 * SV / EDV``), so a sampled or completed set never contradicts itself.

Network: MLP encoder and decoder with LeakyReLU, a small latent (``latent_dim``), and a Gaussian decoder with
one learned noise scale per coordinate. Sampling draws ``z ~ N(0, T^2 I)`` and ``u = mu(z) + T sigma eps``.

The model takes and returns tensors of standardised coordinates (N, 5) and latents (N, latent_dim); it knows
nothing of tables or phenotype names. Sampling, completing and scoring phenotype *sets* (dicts and tables
keyed by schema names, locks, plausibility in words) is
:class:`cardiosynth.phenotype_prior.PhenotypePrior`, which wraps it::

    prior = PhenotypePrior.from_pretrained()              # weights/phenotype_vae, sha256 checked
    hearts = prior.sample(8, temperature=1.0, seed=0)     # DataFrame, columns = schema names
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cardiosynth import phenotypes as ph
from cardiosynth.weights import Pretrained, WeightsError, config_from_dict

COORDINATES = ("log LVEDV", "logit(LVESV/LVEDV)", "log LVM", "log RVEDV", "logit(RVESV/RVEDV)")
SIDES = {"LV": (0, 1), "RV": (3, 4)}  # the coordinate pair of each ventricle; LVM is coordinate 2
LVM_COORD = 2
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class CoordinateScaler:
    """Fitted statistics: the mean and SD of each coordinate ``u`` over the training split (filled by
    training.train_phenotype_vae before it fits the network, never refit at load). The network only ever sees
    coordinates standardised with these, so they are as much a part of the trained model as its weights."""

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlausibilityCalibration:
    """Fitted statistics of the plausibility score, measured with the trained network on real patients (filled by
    training.train_phenotype_vae after the fit): what a percentile and a "beyond the training range" are read
    against. Refitting them changes every plausibility verdict, not the network."""

    # log p(u) of each real reference patient: a set's percentile is the share of these below its own
    log_density: tuple[float, ...] = ()
    source: str = ""  # which patients ``log_density`` holds, in words ("train + val")
    training_range: tuple[tuple[float, float], ...] = ()  # (min, max) per phenotype over the training split only


@dataclass(frozen=True)
class PhenotypeVAEInference:
    """Inference settings of :class:`cardiosynth.phenotype_prior.PhenotypePrior`: the Monte Carlo sizes
    of its estimates and the thresholds of the plausibility light. Chosen, not fitted: changing one changes the
    prior's answers, not the network (the calibration's log-densities were estimated with ``importance_samples``,
    so a percentile compares like with like only at that value)."""

    importance_samples: int = 4096  # plausibility and completion
    completion_grid: int = 121  # grid points for a lone locked ESV or SV
    # plausibility: percentile among real reference patients (``PlausibilityCalibration``)
    amber_percentile: float = 2.0  # below this percentile of real patients: amber
    red_nats_below_reference: float = 3.0  # this far below the least likely real patient: red
    amber_z: float = 3.0  # a phenotype this many SDs from its expectation given the others: amber
    red_z: float = 4.5
    range_margin: float = 0.1  # beyond the training range by this share of its width: amber


@dataclass(frozen=True)
class PhenotypeVAEConfig:
    """The architecture (what the network is and what it reads), then (one dataclass each) the fitted coordinate
    scaler, the fitted plausibility calibration and the inference settings; saved, nested the same way, in
    ``config.json`` beside the weights (the training recipe, training.recipes, beside it there)."""

    name: str = "default"
    phenotypes: tuple[str, ...] = ph.NAMES  # every phenotype the model reads and returns, in this order
    modelled: tuple[str, ...] = ph.INDEPENDENT  # what the network models (the rest is derived exactly)
    coordinates: tuple[str, ...] = COORDINATES
    # architecture
    latent_dim: int = 3
    hidden: int = 32
    layers: int = 2  # hidden layers in the encoder and in the decoder
    negative_slope: float = 0.1  # LeakyReLU
    min_sigma: float = 0.03  # floor of the decoder noise scale (standardised units)
    scaler: CoordinateScaler = field(default_factory=CoordinateScaler)
    calibration: PlausibilityCalibration = field(default_factory=PlausibilityCalibration)
    inference: PhenotypeVAEInference = field(default_factory=PhenotypeVAEInference)

    def __post_init__(self):
        if tuple(self.modelled) != ph.INDEPENDENT:
            raise ValueError(f"modelled must be the schema's independent phenotypes {ph.INDEPENDENT}")
        if self.latent_dim < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("latent_dim, hidden and layers must be positive")
        for name in ("mean", "std"):
            if len(getattr(self.scaler, name)) not in (0, len(self.coordinates)):
                raise ValueError(f"The scaler's {name} needs one value per coordinate ({len(self.coordinates)})")
        if len(self.calibration.training_range) not in (0, len(self.phenotypes)):
            raise ValueError(f"The calibration's training_range needs one (min, max) per phenotype "
                             f"({len(self.phenotypes)})")

    @classmethod
    def from_dict(cls, values: dict) -> "PhenotypeVAEConfig":
        return config_from_dict(cls, values)


# --------------------------------------------------------------------------------------------- network
def _mlp(n_in: int, n_out: int, hidden: int, layers: int, slope: float) -> nn.Sequential:
    modules, width = [], n_in
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
        width = hidden
    modules.append(nn.Linear(width, n_out))
    return nn.Sequential(*modules)


class PhenotypeVAE(nn.Module, Pretrained):
    """MLP VAE over the standardised coordinates ``u`` of the five independent phenotypes."""

    config_class = PhenotypeVAEConfig
    default_weights = "phenotype_vae"

    def __init__(self, config: PhenotypeVAEConfig = PhenotypeVAEConfig()):
        super().__init__()
        self.config = config
        d, h, n = len(config.coordinates), config.hidden, config.layers
        self.encoder = _mlp(d, 2 * config.latent_dim, h, n, config.negative_slope)
        self.decoder = _mlp(config.latent_dim, d, h, n, config.negative_slope)
        self.decoder_log_sigma = nn.Parameter(torch.full((d,), math.log(0.3)))
        mean = config.scaler.mean or (0.0,) * d
        std = config.scaler.std or (1.0,) * d
        self.register_buffer("scaler_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("scaler_std", torch.tensor(std, dtype=torch.float32), persistent=False)

    # ---------------------------------------------------------------- tensors (standardised coordinates)
    def encode_tensor(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 5) standardised coordinates -> posterior mean and log-variance, each (N, latent_dim)."""
        mu, logvar = self.encoder(s).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode_tensor(self, z: torch.Tensor) -> torch.Tensor:
        """(..., latent_dim) -> decoder mean (..., 5) in standardised coordinates."""
        return self.decoder(z)

    def sigma(self) -> torch.Tensor:
        """Decoder noise scale per coordinate (standardised units)."""
        return self.config.min_sigma + nn.functional.softplus(self.decoder_log_sigma)

    def log_likelihood(self, s: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Per-coordinate Gaussian log-likelihood log N(s; mean, sigma), shape broadcast(s, mean)."""
        sigma = self.sigma()
        return -0.5 * ((s - mean) / sigma) ** 2 - torch.log(sigma) - 0.5 * LOG_2PI

    def loss(self, s: torch.Tensor, beta: float, samples: int = 1, generator: torch.Generator | None = None) -> dict:
        """Negative beta-ELBO per patient, averaged (reconstruction and KL reported separately)."""
        mu, logvar = self.encode_tensor(s)
        eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = -self.log_likelihood(s, self.decode_tensor(z)).sum(-1).mean(0)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
        return {"loss": (recon + beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean()}

    def log_density_tensor(self, s: torch.Tensor, samples: int, generator: torch.Generator,
                           mask: torch.Tensor | None = None) -> torch.Tensor:
        """Importance-weighted log p(s) (N,) with a defensive proposal (half encoder, half prior); ``mask``
        (5,) bool drops coordinates (their marginal is then exact: the decoder factorises)."""
        ll, log_iw, _ = self.importance(s, samples, generator)
        if mask is not None:
            ll = ll[..., mask]
        return torch.logsumexp(ll.sum(-1) + log_iw, dim=1) - math.log(ll.shape[1])

    def importance(self, s: torch.Tensor, samples: int, generator: torch.Generator):
        """Samples from 0.5 q(z|s) (widened 1.5x) + 0.5 N(0, I), stratified. Returns per-coordinate
        log-likelihoods (N, K, 5), log prior - log proposal (N, K) and decoder means (N, K, 5)."""
        n, dim = s.shape[0], self.config.latent_dim
        mu, logvar = self.encode_tensor(s)
        std = 1.5 * torch.exp(0.5 * logvar)
        half = samples // 2
        eps = torch.randn((n, samples, dim), generator=generator, dtype=s.dtype)
        z = torch.cat([mu[:, None] + std[:, None] * eps[:, :half], eps[:, half:]], dim=1)
        log_prior = (-0.5 * z ** 2 - 0.5 * LOG_2PI).sum(-1)
        log_q = (-0.5 * ((z - mu[:, None]) / std[:, None]) ** 2 - torch.log(std[:, None]) - 0.5 * LOG_2PI).sum(-1)
        log_mix = torch.logaddexp(log_q, log_prior) - math.log(2.0)
        mean = self.decode_tensor(z)
        return self.log_likelihood(s[:, None], mean), log_prior - log_mix, mean

    # ---------------------------------------------------------------- loading
    def _check_loaded(self, folder_or_name: str | Path) -> "PhenotypeVAE":
        """Refuse weights without their scaler and calibration, or trained on another phenotype schema; run in
        float64 (inference is tiny; float64 keeps sums exact)."""
        config = self.config
        if not config.scaler.mean or not config.calibration.log_density:
            raise WeightsError(f"{folder_or_name}: config.json lacks the scaler or the plausibility calibration")
        if tuple(config.phenotypes) != ph.NAMES:
            raise WeightsError(f"{folder_or_name} was trained on phenotypes {config.phenotypes}, "
                               f"but the schema is {ph.NAMES}")
        return self.double().eval()
