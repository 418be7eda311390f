"""Realism, control adherence, diversity and memorisation metrics, each with a bootstrap 95 % interval.

Bootstraps resample subjects (clusters) when subject ids are given: slices of one patient are not
independent, and treating them as such would make the intervals too narrow.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, stats


def _check_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"{name}: need at least two feature vectors (N, D); got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return features


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (as in FID / FVD)."""
    a, b = _check_features(a, "first set"), _check_features(b, "second set")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as the FID reference code does
        offset = np.eye(a.shape[1]) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(max(0.0, np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)))


def bootstrap_indices(n: int, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one bootstrap sample, resampling whole groups when groups are given."""
    if groups is None:
        return rng.integers(0, n, n)
    unique = np.unique(groups)
    chosen = rng.choice(unique, len(unique), replace=True)
    return np.concatenate([np.flatnonzero(groups == g) for g in chosen])


def bootstrap_ci(statistic, n: int, groups=None, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of ``statistic(indices)`` over bootstrap samples."""
    rng = np.random.default_rng(seed)
    groups = None if groups is None else np.asarray(groups)
    values = [statistic(bootstrap_indices(n, groups, rng)) for _ in range(n_boot)]
    values = np.asarray([v for v in values if np.isfinite(v)])
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))) if len(values) else (np.nan, np.nan)


def frechet_with_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 200, seed: int = 0) -> dict:
    """Fréchet distance of ``a`` to a fixed reference ``b``, with a bootstrap interval over ``a``."""
    value = frechet_distance(a, b)
    low, high = bootstrap_ci(lambda idx: frechet_distance(a[idx], b), len(a), n_boot=n_boot, seed=seed)
    return {"value": value, "ci95": [low, high]}


def adherence(requested: np.ndarray, measured: np.ndarray, groups=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Requested vs measured values of one phenotype: Pearson r and MAE with bootstrap intervals."""
    requested, measured = np.asarray(requested, float), np.asarray(measured, float)
    if requested.shape != measured.shape or requested.ndim != 1:
        raise ValueError(f"requested and measured must be 1-D of one length; got {requested.shape}, {measured.shape}")
    ok = np.isfinite(requested) & np.isfinite(measured)
    requested, measured = requested[ok], measured[ok]
    groups = None if groups is None else np.asarray(groups)[ok]
    if len(requested) < 3:
        raise ValueError("Adherence needs at least three finite requested/measured pairs")

    def pearson(idx):
        r, m = requested[idx], measured[idx]
        return stats.pearsonr(r, m)[0] if r.std() > 0 and m.std() > 0 else np.nan

    def mae(idx):
        return float(np.mean(np.abs(requested[idx] - measured[idx])))

    all_idx = np.arange(len(requested))
    return {
        "n": int(len(requested)),
        "pearson_r": float(pearson(all_idx)),
        "pearson_r_ci95": list(bootstrap_ci(pearson, len(requested), groups, n_boot, seed)),
        "mae": mae(all_idx),
        "mae_ci95": list(bootstrap_ci(mae, len(requested), groups, n_boot, seed)),
        "bias": float(np.mean(measured - requested)),
    }


def nearest_neighbour_rmse(queries: np.ndarray, reference: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per query cine: RMSE to its nearest reference cine and that cine's index (pixel space, all frames)."""
    q = torch.from_numpy(np.asarray(queries, np.float32).reshape(len(queries), -1))
    r = torch.from_numpy(np.asarray(reference, np.float32).reshape(len(reference), -1))
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"Cine sizes differ: {tuple(queries.shape[1:])} vs {tuple(reference.shape[1:])}")
    distances = torch.cdist(q, r) / np.sqrt(q.shape[1])
    if exclude_self:
        distances.fill_diagonal_(float("inf"))
    best = distances.min(dim=1)
    return best.values.numpy(), best.indices.numpy()


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Diversity: mean Euclidean distance between all pairs of feature vectors."""
    features = _check_features(features, "features")
    d = torch.cdist(torch.from_numpy(features), torch.from_numpy(features)).numpy()
    return float(d[np.triu_indices(len(features), 1)].mean())
