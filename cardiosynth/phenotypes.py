"""The one phenotype schema every model, slider and request uses.

Each phenotype carries its UK Biobank field id, so a UK Biobank extract (columns such as ``24100-2.0``,
``f.24100.2.0`` or ``p24100_i2``) maps in without code changes. Five phenotypes are independent
(LVEDV, LVESV, LVM, RVEDV, RVESV); the others are derived from them (SV = EDV - ESV, EF = 100 SV / EDV).
Plausible ranges are wide on purpose: they reject typing errors, never real patients (ACDC has RVEF < 5 %).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, TypeVar

import numpy as np
import pandas as pd


class PhenotypeError(ValueError):
    """A phenotype table or request does not fit the schema; the message names the offending entries."""


@dataclass(frozen=True)
class Phenotype:
    name: str
    unit: str
    ukb_field: int
    plausible_range: tuple[float, float]
    description: str
    derived_from: tuple[str, ...] = ()  # empty for independent phenotypes
    aliases: tuple[str, ...] = ()  # other column names seen in the wild (e.g. ACDC's ``LVEDV_ml``)

    @property
    def independent(self) -> bool:
        return not self.derived_from

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})"


SCHEMA: tuple[Phenotype, ...] = (
    Phenotype("LVEDV", "mL", 24100, (20.0, 600.0), "Left ventricular end-diastolic volume",
              aliases=("LVEDV_ml",)),
    Phenotype("LVESV", "mL", 24101, (3.0, 550.0), "Left ventricular end-systolic volume",
              aliases=("LVESV_ml",)),
    Phenotype("LVSV", "mL", 24102, (2.0, 250.0), "Left ventricular stroke volume (LVEDV - LVESV)",
              derived_from=("LVEDV", "LVESV"), aliases=("LVSV_ml",)),
    Phenotype("LVEF", "%", 24103, (2.0, 95.0), "Left ventricular ejection fraction (100 x LVSV / LVEDV)",
              derived_from=("LVEDV", "LVESV"), aliases=("LVEF_pct",)),
    Phenotype("LVM", "g", 24105, (25.0, 500.0), "Left ventricular myocardial mass at end-diastole (1.05 g/mL)",
              aliases=("LVM_g",)),
    Phenotype("RVEDV", "mL", 24106, (20.0, 600.0), "Right ventricular end-diastolic volume",
              aliases=("RVEDV_ml",)),
    Phenotype("RVESV", "mL", 24107, (3.0, 550.0), "Right ventricular end-systolic volume",
              aliases=("RVESV_ml",)),
    Phenotype("RVSV", "mL", 24108, (1.0, 250.0), "Right ventricular stroke volume (RVEDV - RVESV)",
              derived_from=("RVEDV", "RVESV"), aliases=("RVSV_ml",)),
    Phenotype("RVEF", "%", 24109, (1.0, 95.0), "Right ventricular ejection fraction (100 x RVSV / RVEDV)",
              derived_from=("RVEDV", "RVESV"), aliases=("RVEF_pct",)),
)

BY_NAME: dict[str, Phenotype] = {p.name: p for p in SCHEMA}
NAMES: tuple[str, ...] = tuple(p.name for p in SCHEMA)
INDEPENDENT: tuple[str, ...] = tuple(p.name for p in SCHEMA if p.independent)
DERIVED: tuple[str, ...] = tuple(p.name for p in SCHEMA if not p.independent)
BY_UKB_FIELD: dict[int, Phenotype] = {p.ukb_field: p for p in SCHEMA}
# Volumes and mass grow with the square of an in-plane scaling of the heart (slice spacing fixed); EF does not.
AREA_SCALED: tuple[str, ...] = tuple(p.name for p in SCHEMA if p.unit in ("mL", "g"))

#: A volume or a set of them: a float, a numpy array or a pandas Series (the rules below work element-wise).
Volumes = TypeVar("Volumes", float, np.ndarray, pd.Series)


def derive(edv: Volumes, esv: Volumes) -> tuple[Volumes, Volumes]:
    """``(SV, EF)`` of a ventricle from its volumes: ``SV = EDV - ESV`` (mL), ``EF = 100 x SV / EDV`` (%).

    The one place the derived phenotypes are computed; floats, arrays and Series alike, in their own dtype.
    A single EDV that is not positive (an empty mask) gives EF NaN, not a ZeroDivisionError; arrays and Series
    divide element-wise as numpy and pandas do. Where a caller rounds, it rounds the results, not EDV - ESV."""
    sv = edv - esv
    if np.ndim(edv) == 0 and not edv > 0:
        return sv, math.nan
    return sv, ejection_fraction(edv, sv)


def ejection_fraction(edv: Volumes, sv: Volumes) -> Volumes:
    """``EF = 100 x SV / EDV`` (%) from a stroke volume (a given one, or :func:`derive`'s ``EDV - ESV``)."""
    return 100.0 * sv / edv


# Non-phenotype columns a table may carry and that we keep as they are (ids, diagnostic group, ...).
_ID_COLUMNS = ("eid", "patient", "subject", "group")

# UK Biobank column spellings: showcase/ukbconv ``24100-2.0``, R ``f.24100.2.0``, RAP ``p24100_i2(_a0)``.
_UKB_PATTERNS = (
    re.compile(r"^(?P<field>\d+)-(?P<instance>\d+)\.(?P<array>\d+)$"),
    re.compile(r"^f\.(?P<field>\d+)\.(?P<instance>\d+)\.(?P<array>\d+)$"),
    re.compile(r"^p(?P<field>\d+)_i(?P<instance>\d+)(?:_a(?P<array>\d+))?$"),
    re.compile(r"^(?P<field>\d+)$"),
)


def parse_ukb_column(column: str) -> tuple[int, int | None] | None:
    """``'24100-2.0'`` -> ``(24100, 2)``; ``None`` when the column is not a UK Biobank field column."""
    for pattern in _UKB_PATTERNS:
        match = pattern.match(column.strip())
        if match:
            instance = match.groupdict().get("instance")
            return int(match["field"]), (int(instance) if instance is not None else None)
    return None


def _canonical_name(column: str) -> str | None:
    """Map a column to a schema name (exact, case-insensitive, alias) or ``None``."""
    lowered = column.strip().lower()
    for p in SCHEMA:
        if lowered == p.name.lower() or lowered in (a.lower() for a in p.aliases):
            return p.name
    return None


def map_columns(columns: Iterable[str], instance: int | None = None) -> tuple[dict[str, str], list[str]]:
    """Decide which column feeds which phenotype.

    Returns ``(mapping column -> schema name, ignored columns)``. For UK Biobank columns with several
    instances (imaging visit 2 and repeat visit 3), ``instance`` picks one; by default the lowest present.
    """
    columns = list(columns)
    mapping: dict[str, str] = {}
    ukb_candidates: dict[str, list[tuple[int, str]]] = {}
    ignored: list[str] = []
    for column in columns:
        name = _canonical_name(column)
        if name is not None:
            mapping[column] = name
            continue
        parsed = parse_ukb_column(column)
        if parsed is not None and parsed[0] in BY_UKB_FIELD:
            field, inst = parsed
            if instance is None or inst is None or inst == instance:
                ukb_candidates.setdefault(BY_UKB_FIELD[field].name, []).append((inst or 0, column))
                continue
        if column.strip().lower() not in _ID_COLUMNS:
            ignored.append(column)
    for name, candidates in ukb_candidates.items():
        if name in mapping.values():
            ignored.extend(column for _, column in candidates)
            continue
        candidates.sort()
        mapping[candidates[0][1]] = name
        ignored.extend(column for _, column in candidates[1:])
    return mapping, ignored


def complete_derived(table: pd.DataFrame) -> pd.DataFrame:
    """Fill derived phenotypes (SV, EF) from volumes where they are missing; keep given values."""
    table = table.copy()
    for side in ("LV", "RV"):
        edv, esv, sv, ef = (f"{side}{s}" for s in ("EDV", "ESV", "SV", "EF"))
        if edv in table and esv in table:
            computed_sv, _ = derive(table[edv], table[esv])
            table[sv] = table[sv].fillna(computed_sv) if sv in table else computed_sv
            computed_ef = ejection_fraction(table[edv], table[sv])  # from the SV given, where one is
            table[ef] = table[ef].fillna(computed_ef) if ef in table else computed_ef
    return table


def read_phenotype_table(
    source: str | Path | pd.DataFrame,
    required: Iterable[str] = INDEPENDENT,
    instance: int | None = None,
) -> pd.DataFrame:
    """Read a phenotype table (CSV path or DataFrame) whose columns are schema names or UK Biobank ids.

    Returns a DataFrame with identifier columns (eid/patient/subject/group, when present) followed by the
    schema phenotypes in schema order, derived ones completed. Unknown columns are ignored with one
    warning; missing required columns raise :class:`PhenotypeError` naming them.
    """
    if isinstance(source, pd.DataFrame):
        raw = source
    else:
        path = Path(source)
        if not path.is_file():
            raise PhenotypeError(f"Phenotype table not found: {path}")
        try:
            raw = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise PhenotypeError(f"Could not read the phenotype table {path} as CSV: {err}") from err
    mapping, ignored = map_columns(raw.columns.astype(str), instance=instance)
    if ignored:
        warnings.warn(f"Ignoring columns that are not in the phenotype schema: {', '.join(ignored)}",
                      stacklevel=2)
    table = raw[list(mapping)].rename(columns=mapping)
    for column in table.columns:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    table = complete_derived(table)
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise PhenotypeError(
            "The phenotype table lacks required columns: "
            + ", ".join(f"{n} (UK Biobank field {BY_NAME[n].ukb_field})" for n in missing)
        )
    ids = [c for c in raw.columns if str(c).strip().lower() in _ID_COLUMNS]
    ordered = [n for n in NAMES if n in table.columns]
    return pd.concat([raw[ids].reset_index(drop=True), table[ordered].reset_index(drop=True)], axis=1)


def out_of_range(values: Mapping[str, float]) -> list[str]:
    """Human-readable problems with one phenotype set: unknown names, NaN, values outside the range."""
    problems = []
    for name, value in values.items():
        if name not in BY_NAME:
            problems.append(f"{name} is not a known phenotype (known: {', '.join(NAMES)})")
            continue
        p = BY_NAME[name]
        low, high = p.plausible_range
        if value is None or not np.isfinite(value):
            problems.append(f"{p.name} is missing or not a number")
        elif not low <= value <= high:
            problems.append(f"{p.name} = {value:g} {p.unit} is outside the plausible range {low:g}-{high:g} {p.unit}")
    return problems


def validate(values: Mapping[str, float]) -> None:
    """Raise :class:`PhenotypeError` listing every problem with a phenotype set."""
    problems = out_of_range(values)
    if problems:
        raise PhenotypeError("; ".join(problems))
