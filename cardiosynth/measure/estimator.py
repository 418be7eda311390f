"""Slice measurements -> subject phenotypes (LVEDV, LVEF, LVM, RVEDV, ...).

One cine shows one short-axis slice, so a subject's volumes can only be estimated: from the slice's areas
and fractional area changes together with its position between base and apex. A ridge regression per
phenotype (volumes and mass in log space) is fitted on the real training split and judged on real
validation cines; its accuracy there is the ceiling any generator's adherence can reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

from cardiosynth import phenotypes as ph
from cardiosynth.weights import load_state, write_weights

AREA_FEATURES = ("lv_area_ed_mm2", "lv_area_es_mm2", "myo_area_ed_mm2", "rv_area_ed_mm2", "rv_area_es_mm2")
LOG_TARGETS = ("LVEDV", "LVESV", "LVSV", "LVM", "RVEDV", "RVESV", "RVSV")  # positive, multiplicative errors
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def design_matrix(measurements: pd.DataFrame) -> np.ndarray:
    """Features: log areas, FACs, position (quadratic) and position x log area interactions."""
    p = measurements["slice_position"].to_numpy(float)[:, None]
    log_areas = np.log1p(measurements[list(AREA_FEATURES)].to_numpy(float) / 100.0)
    fac = np.nan_to_num(measurements[["lv_fac", "rv_fac"]].to_numpy(float), nan=0.0)
    return np.hstack([log_areas, fac, p, p**2, p * log_areas, p * fac])


@dataclass
class EstimatorConfig:
    targets: tuple[str, ...] = ph.NAMES
    alphas: tuple[float, ...] = ALPHAS
    cv_folds: int = 5


@dataclass
class PhenotypeEstimator:
    config: EstimatorConfig = field(default_factory=EstimatorConfig)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    coef: np.ndarray | None = None  # (targets, features)
    intercept: np.ndarray | None = None  # (targets,)
    chosen_alpha: dict[str, float] = field(default_factory=dict)

    def fit(self, measurements: pd.DataFrame, groups: np.ndarray) -> "PhenotypeEstimator":
        """Fit one ridge per phenotype; alpha by grouped (per-subject) cross-validation."""
        x = design_matrix(measurements)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-8
        z = (x - self.mean) / self.scale
        coefs, intercepts = [], []
        for name in self.config.targets:
            y = self._transform(name, measurements[name].to_numpy(float))
            alpha = min(self.config.alphas, key=lambda a: self._cv_error(z, y, groups, a))
            model = Ridge(alpha=alpha).fit(z, y)
            self.chosen_alpha[name] = alpha
            coefs.append(model.coef_)
            intercepts.append(model.intercept_)
        self.coef, self.intercept = np.array(coefs), np.array(intercepts)
        return self

    def _cv_error(self, z, y, groups, alpha) -> float:
        errors = []
        for train, test in GroupKFold(n_splits=self.config.cv_folds).split(z, y, groups):
            errors.append(np.mean((Ridge(alpha=alpha).fit(z[train], y[train]).predict(z[test]) - y[test]) ** 2))
        return float(np.mean(errors))

    @staticmethod
    def _transform(name: str, values: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(values, 1e-3)) if name in LOG_TARGETS else values

    @staticmethod
    def _inverse(name: str, values: np.ndarray) -> np.ndarray:
        return np.exp(values) if name in LOG_TARGETS else values

    def predict(self, measurements: pd.DataFrame) -> pd.DataFrame:
        if self.coef is None:
            raise RuntimeError("The phenotype estimator has not been fitted")
        z = (design_matrix(measurements) - self.mean) / self.scale
        raw = z @ self.coef.T + self.intercept
        return pd.DataFrame({name: self._inverse(name, raw[:, k]) for k, name in enumerate(self.config.targets)},
                            index=measurements.index)

    def save_pretrained(self, folder, card: str, extra: dict | None = None, depends_on: dict | None = None):
        """The same folder layout as every model (:class:`~cardiosynth.weights.Pretrained`): the fitted arrays as
        safetensors, the config and chosen alphas in config.json, a card."""
        tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.float64))
                   for name in ("mean", "scale", "coef", "intercept")}
        extra = {"chosen_alpha": self.chosen_alpha, **(extra or {})}
        return write_weights(folder, tensors, self.config, card, extra=extra, depends_on=depends_on)

    @classmethod
    def from_pretrained(cls, folder_or_name="phenotype_estimator") -> "PhenotypeEstimator":
        state, payload = load_state(folder_or_name)
        config = payload["config"]
        estimator = cls(EstimatorConfig(tuple(config["targets"]), tuple(config["alphas"]), config["cv_folds"]))
        for name in ("mean", "scale", "coef", "intercept"):
            setattr(estimator, name, state[name].numpy())
        estimator.chosen_alpha = payload["extra"].get("chosen_alpha", {})
        return estimator
