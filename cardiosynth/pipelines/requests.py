"""What crosses a pipeline: a phenotype request parsed once, and the sampler settings every pipeline checks
with one wording for every generator.

A request arrives as a dict (one set), a list of dicts or a table (one set per row) whose columns are schema
names, their aliases or UK Biobank field columns, with an optional ``slice_position`` column. It is parsed
once into :class:`PhenotypeRequest` (schema names, numbers, positions, clamped when asked); the phenotype
VAE completes it and the generator standardises it from there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from cardiosynth import phenotypes as ph

ID_COLUMNS = ("subject", "patient", "eid", "group", "index", "sample")  # travel with a table, never a phenotype
NOT_PHENOTYPES = ("slice_position", "seed")


@dataclass(frozen=True)
class PhenotypeRequest:
    """The given phenotype values of each requested set, under schema names (a set may give only some), and the
    slice position of each set (0 base ... 1 apex)."""

    given: pd.DataFrame
    slice_position: np.ndarray

    @property
    def missing(self) -> list[str]:
        """The schema phenotypes no set gave: what the phenotype VAE completes."""
        return [name for name in ph.NAMES if name not in self.given.columns]

    @classmethod
    def parse(cls, phenotypes, slice_position: float | None = 0.5, clamp: bool = False) -> "PhenotypeRequest":
        """Out-of-range values are left for the phenotype VAE to refuse by name, or with ``clamp=True`` moved to
        the plausible range's edge with a warning. Empty (NaN) values and unknown columns are a PhenotypeError;
        a slice position outside [0, 1] is a ValueError. A table's ``slice_position`` column wins over the
        ``slice_position`` argument."""
        table = as_table(phenotypes)
        positions = slice_positions(table, slice_position)
        table = table.drop(columns=[c for c in table.columns if c in NOT_PHENOTYPES])
        mapping, unknown = ph.map_columns([str(c) for c in table.columns])
        given = table[list(mapping)].rename(columns=mapping)
        if clamp:
            given = clamped(given)
        empty = [(i, name) for name in given.columns for i in np.flatnonzero(given[name].isna())]
        if empty:
            raise ph.PhenotypeError("Missing (empty or NaN) phenotype values: " + ", ".join(
                f"{name} in set {i + 1}" for i, name in empty[:10]) + ". Give a number, or leave the phenotype "
                "out altogether to have the phenotype VAE complete it")
        if unknown:
            raise ph.PhenotypeError("Unknown phenotype columns: " + ", ".join(unknown)
                                    + f" (known: {', '.join(ph.NAMES)})")
        return cls(given, positions)


def as_table(phenotypes) -> pd.DataFrame:
    """A dict, a list of dicts or a table -> one row per set, without identifier columns."""
    if isinstance(phenotypes, pd.DataFrame):
        table = phenotypes.reset_index(drop=True)
    elif isinstance(phenotypes, Mapping):
        table = pd.DataFrame([dict(phenotypes)])
    elif isinstance(phenotypes, (list, tuple)) and phenotypes and all(isinstance(r, Mapping) for r in phenotypes):
        table = pd.DataFrame([dict(r) for r in phenotypes])
    else:
        raise ph.PhenotypeError("Phenotypes must be a dict (one set), a list of dicts or a table (one set per row) "
                                f"keyed by phenotype names such as LVEDV, LVEF; got {type(phenotypes).__name__}")
    if len(table) == 0:
        raise ph.PhenotypeError("No phenotype sets given")
    return table.drop(columns=[c for c in table.columns if str(c).lower() in ID_COLUMNS])


def slice_positions(table: pd.DataFrame, default: float | None) -> np.ndarray:
    position = table["slice_position"] if "slice_position" in table else pd.Series([default] * len(table))
    values = pd.to_numeric(position, errors="coerce").to_numpy(float)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError("slice_position must be a number from 0 (base) to 1 (apex); 0.5 is mid-ventricle")
    return values


def clamped(given: pd.DataFrame) -> pd.DataFrame:
    """Numeric values outside a phenotype's plausible range moved to its edge, warning once per phenotype."""
    given = given.copy()
    for name in given.columns:
        low, high = ph.BY_NAME[name].plausible_range
        values = pd.to_numeric(given[name], errors="coerce")
        outside = (values < low) | (values > high)
        if outside.any():
            warnings.warn(f"{name} clamped to its plausible range {low:g}-{high:g} {ph.BY_NAME[name].unit} "
                          f"in {int(outside.sum())} set(s)", stacklevel=5)
            given[name] = values.clip(low, high)
    return given


def check_sampling(seed, steps, cfg, max_steps: int) -> None:
    """``seed`` a whole number >= 0, ``steps`` a whole number in 1..max_steps, ``cfg`` (guidance) in 1..20."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number; got {seed!r}")
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= max_steps:
        raise ValueError(f"steps must be a whole number from 1 to {max_steps}; got {steps!r}")
    if not (np.isfinite(cfg) and 1.0 <= cfg <= 20.0):
        raise ValueError(f"cfg (guidance scale) must be between 1 and 20; got {cfg!r}")
