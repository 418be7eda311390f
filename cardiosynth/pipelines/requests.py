"""What crosses a pipeline: a request parsed and checked once, at the edge, and carried down as it is.

Phenotypes arrive as a dict (one set), a list of dicts or a table (one set per row) whose columns are schema
names, their aliases or UK Biobank field columns, with an optional ``slice_position`` column. They are parsed
once into :class:`PhenotypeRequest` (schema names, numbers within their plausible ranges, positions; clamped
when asked). The sampler settings (seed, steps, guidance, temperature) are checked once into :class:`Sampling`,
with the generator's defaults filled in. A pipeline's ``request(...)`` puts the two together (the phenotype VAE
completing the sets) into the request object it runs; nothing below it parses or checks them again, and the
models take the tensors made from them. Every check answers in one sentence a clinician can read, the same
words in the app and in code.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from cardiosynth import phenotypes as ph

ID_COLUMNS = ("subject", "patient", "eid", "group", "index", "sample")  # travel with a table, never a phenotype
NOT_PHENOTYPES = ("slice_position", "seed")
SEED_RANGE = (0, 2 ** 31 - 1)
GUIDANCE_RANGE = (1.0, 10.0)  # the guidance scale every generator accepts (and the app's slider spans)
SLICE_POSITION_RANGE = (0.0, 1.0)  # 0 base ... 1 apex
MAX_TEMPERATURE = 5.0


@dataclass(frozen=True)
class PhenotypeRequest:
    """The given phenotype values of each requested set, under schema names (a set may give only some; every
    value a number within its plausible range), and the slice position of each set (0 base ... 1 apex)."""

    given: pd.DataFrame
    slice_position: np.ndarray

    @property
    def missing(self) -> list[str]:
        """The schema phenotypes no set gave: what the phenotype VAE completes."""
        return [name for name in ph.NAMES if name not in self.given.columns]

    @property
    def rows(self) -> list[dict[str, float]]:
        """Each set as a dict of its given values (what the phenotype VAE locks)."""
        return [{name: float(value) for name, value in row.items()} for row in self.given.to_dict("records")]

    @classmethod
    def parse(cls, phenotypes, slice_position: float | None = 0.5, clamp: bool = False) -> "PhenotypeRequest":
        """Unknown columns, a phenotype given twice (e.g. by name and by UK Biobank field), values that are not
        numbers, empty (NaN) values and values outside a phenotype's plausible range are one PhenotypeError;
        with ``clamp=True`` out-of-range values are moved to the range's edge with a warning instead. A slice
        position outside [0, 1] is a ValueError. A table's ``slice_position`` column wins over the
        ``slice_position`` argument."""
        table = as_table(phenotypes)
        positions = slice_positions(table, slice_position)
        table = table.drop(columns=[c for c in table.columns if c in NOT_PHENOTYPES])
        mapping, unknown = ph.map_columns([str(c) for c in table.columns])
        if unknown:
            raise ph.PhenotypeError("Unknown phenotype columns: " + ", ".join(unknown)
                                    + f" (known: {', '.join(ph.NAMES)})")
        twice = sorted(name for name, count in Counter(mapping.values()).items() if count > 1)
        if twice:
            raise ph.PhenotypeError(f"{', '.join(twice)} is given twice: give each phenotype once")
        given = numbers(table[list(mapping)].rename(columns=mapping))
        empty = [(i, name) for name in given.columns for i in np.flatnonzero(given[name].isna())]
        if empty:
            raise ph.PhenotypeError("Missing (empty or NaN) phenotype values: " + ", ".join(
                f"{name} in set {i + 1}" for i, name in empty[:10]) + ". Give a number, or leave the phenotype "
                "out altogether to have the phenotype VAE complete it")
        given = clamped(given) if clamp else given
        check_ranges(given)
        return cls(given, positions)


def numbers(given: pd.DataFrame) -> pd.DataFrame:
    """Every value as a float (NaN where empty); a value that is not a number is a PhenotypeError naming it."""
    out = given.apply(pd.to_numeric, errors="coerce").astype(float)
    unreadable = given.notna() & out.isna()
    if unreadable.any(axis=None):
        name = unreadable.any().idxmax()
        raise ph.PhenotypeError(f"{name} must be a number, got {given[name][unreadable[name]].iloc[0]!r}")
    return out


def check_ranges(given: pd.DataFrame) -> None:
    """Every value within its phenotype's plausible range, else one PhenotypeError naming each (by set when
    the request has several)."""
    for i, row in enumerate(given.to_dict("records")):
        problems = ph.out_of_range(row)
        if problems:
            message = "; ".join(problems)
            raise ph.PhenotypeError(f"In set {i + 1}: {message}" if len(given) > 1 else message)


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
    """The table's ``slice_position`` column, else ``default`` for every set; each within [0, 1]."""
    if "slice_position" not in table:
        return np.full(len(table), checked_number(default, "Slice position", *SLICE_POSITION_RANGE))
    values = pd.to_numeric(table["slice_position"], errors="coerce").to_numpy(float)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError("Slice position must be a number from 0 (base) to 1 (apex) in every set; 0.5 is "
                         "mid-ventricle")
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


def checked_number(value, name: str, low: float, high: float) -> float:
    """``value`` as a float within [low, high], else a ValueError the app shows as it is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def checked_whole(value, name: str, low: int, high: int) -> int:
    """``value`` as a whole number within [low, high] (the app's number boxes send floats), else a ValueError
    that writes the bounds out in full (2147483647, not 2.14748e+09)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number == int(number) and low <= number <= high):
        shown = int(number) if math.isfinite(number) and number == int(number) else value
        raise ValueError(f"{name} must be a whole number between {low} and {high}, got {shown!r}")
    return int(number)


@dataclass(frozen=True)
class Sampling:
    """A call's sampler settings, checked, with the generator's own defaults in place of what was not given:
    ``seed`` seeds every draw of the call, ``steps`` (the MAR's decoding steps or the flow's sampling steps),
    ``cfg`` the guidance scale, ``temperature`` the MAR's (None for a generator without one)."""

    seed: int
    steps: int
    cfg: float
    temperature: float | None = None

    @classmethod
    def parse(cls, seed, steps, cfg, temperature=None, *, defaults: "Sampling", max_steps: int,
              steps_name: str = "Steps") -> "Sampling":
        """``steps`` / ``cfg`` / ``temperature`` None take ``defaults``'; each bad value is a ValueError that
        names it (``steps_name``: what the generator calls its steps)."""
        temperature = defaults.temperature if temperature is None else temperature
        if temperature is not None:
            try:
                temperature = float(temperature)
            except (TypeError, ValueError):
                temperature = math.nan
            if not (math.isfinite(temperature) and 0.0 < temperature <= MAX_TEMPERATURE):
                raise ValueError(f"Temperature must be above 0 and at most {MAX_TEMPERATURE:g}, got {temperature!r}")
        return cls(checked_whole(seed, "Seed", *SEED_RANGE),
                   checked_whole(defaults.steps if steps is None else steps, steps_name, 1, max_steps),
                   checked_number(defaults.cfg if cfg is None else cfg, "Guidance scale", *GUIDANCE_RANGE),
                   temperature)


@dataclass(frozen=True)
class CineRequest:
    """One phenotype -> cine call, parsed and checked once (:meth:`PhenotypeToCine.request`): the full,
    consistent phenotype sets the generator conditions on (one row per set: the nine phenotypes,
    ``slice_position`` and ``completed``, the phenotypes the VAE filled in), ``n`` cines per set, the sampler
    settings, the motion (``exemplar`` or ``mar``), whether the re-identification filter redraws, and the
    phenotypes as asked (``asked``: what a plausibility score judges)."""

    sets: pd.DataFrame
    n: int
    sampling: Sampling
    motion: str
    privacy_filter: bool = False
    asked: PhenotypeRequest | None = None

    def conditions(self) -> pd.DataFrame:
        """One row per cine (each set ``n`` times, ``sample`` 0..n-1): what each cine is made for."""
        rows = self.sets.loc[self.sets.index.repeat(self.n)].reset_index(drop=True)
        rows["sample"] = np.tile(np.arange(self.n), len(self.sets))
        return rows
