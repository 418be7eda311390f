"""The phenotype VAE as a prior over phenotype *sets*: sample, complete and score them (CPGG stage 1).

:class:`PhenotypePrior` wraps the tensor model :class:`~cardiosynth.models.phenotype_vae.PhenotypeVAE`
and does what a request needs in schema units::

    prior = PhenotypePrior.from_pretrained()                # weights/phenotype_vae, sha256 checked
    hearts = prior.sample(8, temperature=1.0, seed=0)       # DataFrame, columns = schema names
    prior.plausibility({"LVEDV": 150, "LVESV": 60, ...})    # percentile among real patients + reasons
    prior.complete({"LVEDV": 150, "LVEF": 35}, seed=0)      # lock some, fill in the rest consistently
    prior.typical_heart()                                   # the typical healthy heart (all nine phenotypes)

Phenotypes travel as dicts or DataFrames keyed by schema names (aliases such as ``LVEDV_ml`` and UK Biobank
field columns are mapped in); unknown names, NaN, out-of-range or contradictory values raise
:class:`~cardiosynth.phenotypes.PhenotypeError` with a message a clinician can act on. Sets a request parser
has checked already (:mod:`cardiosynth.pipelines.requests`) go to :meth:`PhenotypePrior.complete_checked` and
:meth:`PhenotypePrior.plausibility_checked`, which take them as they are.

A statistical model over phenotypes, not a product: it sits in its own layer above the models (beside the
renderer), so the pipelines, the review and the app use one prior and it imports none of them.

Completion is exact Bayesian conditioning of the VAE, not a penalty fit: locked phenotypes fix (some of)
the coordinates ``u`` exactly (for example LVEDV + LVEF fix the LV block; a lone LVESV is the curve
``log LVEDV + log sigmoid(u_1) = log LVESV``, integrated on a grid), and the latent is integrated by
self-normalised importance sampling (a prior pass, then a Gaussian proposal refitted to the weighted
latents). ``temperature=0`` returns the posterior mean of the free coordinates (deterministic);
``temperature>0`` draws sets from the conditional of the tempered model. Every output is fixed by ``seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.models.phenotype_vae import LOG_2PI, LVM_COORD, SIDES, PhenotypeVAE
from cardiosynth.phenotypes import PhenotypeError

MAX_REDRAWS = 50
# tolerance when several locked / given values of one ventricle must agree (ACDC rounds to 0.01)
VOLUME_TOLERANCE_ML, VOLUME_TOLERANCE_REL, EF_TOLERANCE_PCT = 0.5, 0.005, 0.5
#: The typical healthy heart is the VAE's most likely heart (temperature 0) given these normal ejection fractions:
#: the phenotype explorer starts from it and an ECG -> cine request without phenotypes animates it.
TYPICAL_HEART_LOCKS = {"LVEF": 62.0, "RVEF": 55.0}
#: Whom a random draw resembles: said beside every random heart, since "plausible" means "like them", not healthy.
SAMPLED_POPULATION = "the ACDC patients the phenotype model learned from, most of them with heart disease"
TYPICAL_HEART = ("a typical healthy heart (the phenotype model's most likely heart with "
                 + ", ".join(f"{name} {value:g} %" for name, value in TYPICAL_HEART_LOCKS.items()) + ")")


# --------------------------------------------------------------------------------------------- coordinates
def to_coordinates(table: pd.DataFrame) -> np.ndarray:
    """(N, 5) coordinates ``u`` from a table with LVEDV, LVESV, LVM, RVEDV, RVESV (assumed valid)."""
    edv_l, esv_l, lvm, edv_r, esv_r = (table[n].to_numpy(np.float64) for n in ph.INDEPENDENT)
    ratio_l, ratio_r = esv_l / edv_l, esv_r / edv_r
    return np.stack([np.log(edv_l), np.log(ratio_l / (1 - ratio_l)), np.log(lvm),
                     np.log(edv_r), np.log(ratio_r / (1 - ratio_r))], axis=1)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def from_coordinates(u: np.ndarray, exact: Mapping[str, float] | None = None) -> pd.DataFrame:
    """All schema phenotypes from coordinates ``u`` (N, 5); derived ones computed exactly from the volumes.

    ``exact`` replaces independent phenotypes by given values (locked values are returned bit for bit)."""
    u = np.atleast_2d(np.asarray(u, np.float64))
    out = {"LVEDV": np.exp(u[:, 0]), "LVM": np.exp(u[:, 2]), "RVEDV": np.exp(u[:, 3])}
    out["LVESV"] = np.exp(u[:, 0] + _log_sigmoid(u[:, 1]))
    out["RVESV"] = np.exp(u[:, 3] + _log_sigmoid(u[:, 4]))
    for name, value in (exact or {}).items():
        if name in ph.INDEPENDENT:
            out[name] = np.full(len(u), float(value))
    for side in ("LV", "RV"):
        out[f"{side}SV"], out[f"{side}EF"] = ph.derive(out[f"{side}EDV"], out[f"{side}ESV"])
    return pd.DataFrame({name: out[name] for name in ph.NAMES})


def in_plausible_range(table: pd.DataFrame) -> np.ndarray:
    """(N,) bool: every phenotype of the row inside the schema's plausible range."""
    ok = np.ones(len(table), bool)
    for name in ph.NAMES:
        low, high = ph.BY_NAME[name].plausible_range
        ok &= table[name].between(low, high).to_numpy()
    return ok


def draw_plausible(draw) -> pd.DataFrame | None:
    """Call ``draw()`` (a table of n sets) until every set lies in the schema's plausible ranges, keeping the
    sets already plausible and replacing only the others from each new draw; None after MAX_REDRAWS draws."""
    out = draw()
    for _ in range(MAX_REDRAWS - 1):
        bad = ~in_plausible_range(out)
        if not bad.any():
            return out
        out = out.where(np.repeat(~bad[:, None], out.shape[1], 1), draw())
    return out if in_plausible_range(out).all() else None


# --------------------------------------------------------------------------------------------- input checks
def _fmt(name: str, value: float) -> str:
    p = ph.BY_NAME[name]
    return f"{name} {value:.3g} {p.unit}" if p.unit == "%" else f"{name} {value:.4g} {p.unit}"


def _canonical_dict(values: Mapping[str, float], allow_missing: bool = False) -> dict[str, float]:
    """Schema names -> float; unknown names, NaN and out-of-range values raise one PhenotypeError."""
    if not isinstance(values, Mapping):
        raise PhenotypeError(f"Phenotypes must be a dict or a DataFrame keyed by schema names, not {type(values).__name__}")
    mapping, ignored = ph.map_columns([str(k) for k in values])
    problems = [f"{k} is not a known phenotype (known: {', '.join(ph.NAMES)})" for k in ignored]
    out: dict[str, float] = {}
    for key, value in values.items():
        name = mapping.get(str(key))
        if name is None:
            continue
        if name in out:
            problems.append(f"{name} is given twice")
            continue
        try:
            number = float(value) if value is not None else float("nan")
        except (TypeError, ValueError):
            problems.append(f"{name} = {value!r} is not a number")
            continue
        if allow_missing and not np.isfinite(number) and not np.isinf(number):
            continue
        out[name] = number
    problems += ph.out_of_range(out)
    if problems:
        raise PhenotypeError("; ".join(problems))
    return out


def _table_rows(table: pd.DataFrame, allow_missing: bool = False) -> list[dict[str, float]]:
    mapping, ignored = ph.map_columns(table.columns.astype(str))
    if ignored:
        raise PhenotypeError("Unknown phenotype columns: " + ", ".join(ignored) + f" (known: {', '.join(ph.NAMES)})")
    renamed = table[list(mapping)].rename(columns=mapping)
    rows = []
    for i, (_, row) in enumerate(renamed.iterrows()):
        try:
            rows.append(_canonical_dict(row.to_dict(), allow_missing=allow_missing))
        except PhenotypeError as err:
            raise PhenotypeError(f"Row {i}: {err}" if len(renamed) > 1 else str(err)) from None
    return rows


def _tolerance(name: str, value: float) -> float:
    return EF_TOLERANCE_PCT if name.endswith("EF") else max(VOLUME_TOLERANCE_ML, VOLUME_TOLERANCE_REL * abs(value))


@dataclass(frozen=True)
class _SideState:
    """What the given values say about one ventricle's coordinate pair (u_edv, u_ratio)."""

    kind: str  # "free" | "fixed" | "EDV" | "EF" | "ESV" | "SV"
    u: tuple[float, float] = (math.nan, math.nan)  # fixed coordinates ("fixed"; u[0] for EDV, u[1] for EF)
    log_value: float = math.nan  # log ESV or log SV for the one-constraint curves
    edv: float = math.nan  # resolved volumes when "fixed"
    esv: float = math.nan
    inconsistency: str = ""  # when given values disagree (plausibility reports it instead of raising)


def _resolve_side(side: str, given: Mapping[str, float], strict: bool) -> _SideState:
    """Turn the given EDV / ESV / SV / EF of one ventricle into coordinates, checking they agree."""
    names = {k: f"{side}{k}" for k in ("EDV", "ESV", "SV", "EF")}
    have = {k: given[n] for k, n in names.items() if n in given}
    if not have:
        return _SideState("free")
    if len(have) == 1:
        (kind, value), = have.items()
        if kind == "EDV":
            return _SideState("EDV", u=(math.log(value), math.nan))
        if kind == "EF":
            ratio = 1 - value / 100.0
            return _SideState("EF", u=(math.nan, math.log(ratio / (1 - ratio))))
        return _SideState(kind, log_value=math.log(value))
    # two or more: resolve from the most direct pair, then check the others against it
    for a, b in (("EDV", "ESV"), ("EDV", "EF"), ("EDV", "SV"), ("ESV", "EF"), ("SV", "EF"), ("ESV", "SV")):
        if a in have and b in have:
            pair = (a, b)
            break
    x = have
    if pair == ("EDV", "ESV"):
        edv, esv = x["EDV"], x["ESV"]
    elif pair == ("EDV", "EF"):
        edv, esv = x["EDV"], x["EDV"] * (1 - x["EF"] / 100.0)
    elif pair == ("EDV", "SV"):
        edv, esv = x["EDV"], x["EDV"] - x["SV"]
    elif pair == ("ESV", "EF"):
        edv, esv = x["ESV"] / (1 - x["EF"] / 100.0), x["ESV"]
    elif pair == ("SV", "EF"):
        edv = 100.0 * x["SV"] / x["EF"]
        edv, esv = edv, edv - x["SV"]
    else:
        edv, esv = x["ESV"] + x["SV"], x["ESV"]
    given_text = ", ".join(_fmt(names[k], v) for k, v in have.items())
    if not esv < edv or not esv > 0:
        raise PhenotypeError(
            f"{given_text} cannot all hold, since they would need {side}ESV ({esv:.4g} mL) to be positive and smaller "
            f"than {side}EDV ({edv:.4g} mL): change or unlock one of them.")
    sv, ef = ph.derive(edv, esv)
    implied = {"EDV": edv, "ESV": esv, "SV": sv, "EF": ef}
    problems = []
    for k, value in implied.items():
        if k not in have:
            rng = ph.BY_NAME[names[k]].plausible_range
            if not rng[0] <= value <= rng[1]:
                problems.append(f"{given_text} imply {_fmt(names[k], value)}, outside the plausible range "
                                f"{rng[0]:g}-{rng[1]:g} {ph.BY_NAME[names[k]].unit}")
    if problems:
        raise PhenotypeError("; ".join(problems))
    disagree = [k for k in have if k not in pair and abs(have[k] - implied[k]) > _tolerance(names[k], implied[k])]
    inconsistency = ""
    if disagree:
        basis = " and ".join(_fmt(names[k], have[k]) for k in pair)
        inconsistency = "; ".join(
            f"{_fmt(names[k], have[k])} is inconsistent with {basis} (which give {_fmt(names[k], implied[k])})"
            for k in disagree)
        if strict:
            raise PhenotypeError(f"The values given for the {side} disagree: {inconsistency} "
                                 f"({side}SV = {side}EDV - {side}ESV, {side}EF = 100 x {side}SV / {side}EDV): "
                                 "change or unlock one of them.")
    ratio = esv / edv
    return _SideState("fixed", u=(math.log(edv), math.log(ratio / (1 - ratio))), edv=edv, esv=esv,
                      inconsistency=inconsistency)


def _full_coordinates(values: Mapping[str, float], strict: bool) -> tuple[np.ndarray, list[str]]:
    """Coordinates of one complete set (each ventricle determined, LVM given) and any inconsistencies."""
    u = np.empty(5)
    notes = []
    for side, (i, j) in SIDES.items():
        state = _resolve_side(side, values, strict)
        if state.kind != "fixed":
            have = [n for n in (f"{side}EDV", f"{side}ESV", f"{side}SV", f"{side}EF") if n in values]
            raise PhenotypeError(f"The {side} needs two of {side}EDV, {side}ESV, {side}SV, {side}EF "
                                 f"(ideally {side}EDV and {side}ESV); got {', '.join(have) or 'none'}")
        u[i], u[j] = state.u
        if state.inconsistency:
            notes.append(state.inconsistency)
    if "LVM" not in values:
        raise PhenotypeError("LVM (left ventricular mass, g) is missing")
    u[LVM_COORD] = math.log(values["LVM"])
    return u, notes


def _set_direct_locks(u: np.ndarray, state, i: int, j: int) -> bool:
    """Write locks that fix coordinates directly (both volumes, EDV alone, EF alone); False for other kinds."""
    if state.kind == "fixed":
        u[i], u[j] = state.u
    elif state.kind == "EDV":
        u[i] = state.u[0]
    elif state.kind == "EF":
        u[j] = state.u[1]
    else:
        return False
    return True


@dataclass
class Plausibility:
    """How likely a phenotype set is under the model, in words a clinician can use."""

    percentile: float  # % of real reference patients whose set is less likely than this one
    log_density: float  # log p(u) in standardised coordinates (importance-weighted estimate)
    status: str  # "green" | "amber" | "red"
    reasons: list[str] = field(default_factory=list)
    conditional_z: dict[str, float] = field(default_factory=dict)  # each phenotype vs the others, in SDs
    expected: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # (low, expected, high), units

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class PhenotypePrior:
    """Sample, complete and score phenotype sets with a :class:`PhenotypeVAE` (which stays tensors only)."""

    def __init__(self, vae: PhenotypeVAE):
        self.vae = vae

    @classmethod
    def from_pretrained(cls, folder_or_name: str | Path | None = None) -> PhenotypePrior:
        """The bundled ``weights/phenotype_vae`` (or the given folder), sha256 checked."""
        return cls(PhenotypeVAE.from_pretrained(folder_or_name))

    @property
    def config(self):
        return self.vae.config

    # ---------------------------------------------------------------- helpers in numpy / units
    @property
    def _dtype(self) -> torch.dtype:
        return self.vae.decoder_log_sigma.dtype

    def _standardise(self, u: np.ndarray) -> torch.Tensor:
        mean, std = self.vae.scaler_mean.double().numpy(), self.vae.scaler_std.double().numpy()
        return torch.as_tensor((u - mean) / std, dtype=self._dtype)

    def _unstandardise(self, s: torch.Tensor | np.ndarray) -> np.ndarray:
        s = s.detach().double().numpy() if isinstance(s, torch.Tensor) else np.asarray(s, np.float64)
        return s * self.vae.scaler_std.double().numpy() + self.vae.scaler_mean.double().numpy()

    def _rows(self, values) -> tuple[list[dict[str, float]], bool]:
        if isinstance(values, pd.DataFrame):
            return _table_rows(values), True
        return [_canonical_dict(values)], False

    def coordinates_of(self, values) -> np.ndarray:
        """Raw coordinates ``u`` (N, 5) of complete sets (dict or DataFrame); contradictions raise."""
        rows, _ = self._rows(values)
        return np.stack([_full_coordinates(r, strict=True)[0] for r in rows])

    # ---------------------------------------------------------------- public API
    @torch.no_grad()
    def encode(self, values, return_std: bool = False):
        """Posterior mean of z (N, latent_dim) for complete phenotype sets (dict or DataFrame)."""
        mu, logvar = self.vae.encode_tensor(self._standardise(self.coordinates_of(values)))
        mu = mu.double().numpy()
        return (mu, np.exp(0.5 * logvar.double().numpy())) if return_std else mu

    @torch.no_grad()
    def decode(self, z) -> pd.DataFrame:
        """Decoder mean for latents (N, latent_dim) -> consistent phenotype sets (DataFrame, schema units)."""
        z = np.atleast_2d(np.asarray(z, np.float64))
        if z.shape[1] != self.config.latent_dim or not np.isfinite(z).all():
            raise ValueError(f"z must be finite with shape (N, {self.config.latent_dim}); got {z.shape}")
        return from_coordinates(self._unstandardise(self.vae.decode_tensor(torch.as_tensor(z, dtype=self._dtype))))

    def reconstruct(self, values) -> pd.DataFrame:
        """decode(encode(values)): the model's reading of each set."""
        return self.decode(self.encode(values))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, seed: int = 0) -> pd.DataFrame:
        """``n`` new phenotype sets: z ~ N(0, T^2 I), u = mu(z) + T sigma eps. T = 0 gives the mean heart."""
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not (np.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        g = torch.Generator().manual_seed(int(seed))

        def draw() -> pd.DataFrame:
            z = temperature * torch.randn((int(n), self.config.latent_dim), generator=g, dtype=self._dtype)
            eps = torch.randn((int(n), len(self.config.coordinates)), generator=g, dtype=self._dtype)
            return from_coordinates(self._unstandardise(self.vae.decode_tensor(z) + temperature * self.vae.sigma() * eps))

        out = draw_plausible(draw)
        if out is None:
            raise RuntimeError(f"Could not draw {n} phenotype sets inside the plausible ranges at temperature "
                               f"{temperature}; lower the temperature")
        return out

    @torch.no_grad()
    def log_density(self, values, seed: int = 0) -> np.ndarray:
        """Importance-weighted log p(u) (standardised coordinates) of complete sets; contradictions raise."""
        s = self._standardise(self.coordinates_of(values))
        g = torch.Generator().manual_seed(int(seed))
        return self.vae.log_density_tensor(s, self.config.inference.importance_samples, g).double().numpy()

    def percentile(self, log_density: np.ndarray | float) -> np.ndarray:
        """% of the real reference patients (the config's ``calibration``) whose log-density is lower."""
        ref = np.asarray(self.config.calibration.log_density)
        x = np.atleast_1d(np.asarray(log_density, np.float64))
        below = (ref[None, :] < x[:, None]).mean(1)
        ties = (ref[None, :] == x[:, None]).mean(1)
        return 100.0 * (below + 0.5 * ties)

    @torch.no_grad()
    def plausibility(self, values, seed: int = 0):
        """Percentile among real patients, traffic-light status and reasons, for one set (dict ->
        :class:`Plausibility`) or many (DataFrame -> DataFrame with percentile, log_density, status, reasons).

        Given derived values (SV, EF) that contradict the volumes are reported as a red reason, not raised."""
        rows, is_table = self._rows(values)
        coords, notes = zip(*[_full_coordinates(r, strict=False) for r in rows])
        results = self._plausibility(np.stack(coords), rows, list(notes), seed)
        if not is_table:
            return results[0]
        out = pd.DataFrame([{"percentile": r.percentile, "log_density": r.log_density, "status": r.status,
                             "reasons": r.reasons} for r in results])
        out.index = values.index
        return out

    def _plausibility(self, u: np.ndarray, rows: list[dict], notes: list[list[str]], seed: int) -> list[Plausibility]:
        inference, calibration = self.config.inference, self.config.calibration
        s = self._standardise(u)
        g = torch.Generator().manual_seed(int(seed))
        ll, log_iw, mean = self.vae.importance(s, inference.importance_samples, g)
        total = ll.sum(-1)
        log_p = (torch.logsumexp(total + log_iw, 1) - math.log(ll.shape[1])).double().numpy()
        pct = self.percentile(log_p)
        std_raw = self.vae.scaler_std.double().numpy()
        mean_raw = self._unstandardise(mean)  # (N, K, 5)
        sigma_raw = self.vae.sigma().double().numpy() * std_raw
        # each coordinate given the others: weights drop that coordinate's likelihood (exact marginal)
        cond_mean, cond_sd = np.empty_like(u), np.empty_like(u)
        for i in range(5):
            w = torch.softmax(total - ll[..., i] + log_iw, dim=1).double().numpy()  # (N, K)
            m = (w * mean_raw[..., i]).sum(1)
            second = (w * (mean_raw[..., i] ** 2 + sigma_raw[i] ** 2)).sum(1)
            cond_mean[:, i], cond_sd[:, i] = m, np.sqrt(np.maximum(second - m ** 2, 1e-12))
        z = (u - cond_mean) / cond_sd
        ref_min = min(calibration.log_density)
        results = []
        for k in range(len(u)):
            reasons, red, amber = [], False, False
            for note in notes[k]:
                reasons.append(note)
                red = True
            expected, zs = {}, {}
            phrases = self._coordinate_phrases(u[k], cond_mean[k], cond_sd[k], z[k])
            for i in np.argsort(-np.abs(z[k])):  # the most surprising phenotype first
                name, (sentence, rng) = phrases[i]
                if abs(z[k, i]) > inference.amber_z:
                    reasons.append(sentence)
                    red |= abs(z[k, i]) > inference.red_z
                    amber = True
            for i, (name, (_, rng)) in enumerate(phrases):
                zs[name], expected[name] = float(z[k, i]), rng
            values = from_coordinates(u[k:k + 1]).iloc[0]
            for j, name in enumerate(ph.NAMES):
                low, high = calibration.training_range[j]
                v, margin = float(values[name]), inference.range_margin * (high - low)
                if v < low - margin or v > high + margin:
                    amber = True
                    reasons.append(f"{_fmt(name, v)} is well {'below' if v < low else 'above'} every training patient "
                                   f"(range {low:.3g}-{high:.3g} {ph.BY_NAME[name].unit})")
            n_ref = len(calibration.log_density)
            if log_p[k] < ref_min - inference.red_nats_below_reference:
                red = True
                reasons.append(f"This combination is far less likely than any of the {n_ref} real reference patients")
            elif pct[k] < inference.amber_percentile:
                amber = True
                reasons.append(f"This combination is less likely than {100 - pct[k]:.0f} % of the {n_ref} real reference patients"
                               if pct[k] > 0 else
                               f"This combination is less likely than any of the {n_ref} real reference patients "
                               "(though close to the least likely of them)")
            status = "red" if red else "amber" if amber else "green"
            results.append(Plausibility(float(pct[k]), float(log_p[k]), status, reasons, zs, expected))
        return results

    @staticmethod
    def _coordinate_phrases(u, m, sd, z):
        """For each coordinate: (schema name, (reason sentence, (low, expected, high) in units))."""
        others = lambda skip: ", ".join(n for n in ("LVEDV", "LVEF", "LVM", "RVEDV", "RVEF") if n != skip)
        out = []
        for i, name in enumerate(("LVEDV", "LVEF", "LVM", "RVEDV", "RVEF")):
            lo, mid, hi = m[i] - 2 * sd[i], m[i], m[i] + 2 * sd[i]
            if name.endswith("EF"):  # coordinate = logit(ESV/EDV): EF = 100 sigmoid(-u), decreasing in u
                conv = lambda x: 100.0 / (1.0 + math.exp(x))
                value, rng = conv(u[i]), (conv(hi), conv(mid), conv(lo))
                direction = "low" if z[i] > 0 else "high"
                side = name[:2]
                sentence = (f"{_fmt(name, value)} is unusually {direction} for this heart's other values "
                            f"({others(name)}): expected about {rng[1]:.0f} % (typical {rng[0]:.0f}-{rng[2]:.0f} %), "
                            f"i.e. {side}ESV is {'large' if z[i] > 0 else 'small'} for this {side}EDV")
            else:
                value, rng = math.exp(u[i]), (math.exp(lo), math.exp(mid), math.exp(hi))
                direction = "high" if z[i] > 0 else "low"
                unit = ph.BY_NAME[name].unit
                sentence = (f"{_fmt(name, value)} is unusually {direction} for this heart's other values "
                            f"({others(name)}): expected about {rng[1]:.0f} {unit} (typical {rng[0]:.0f}-{rng[2]:.0f} {unit})")
            out.append((name, (sentence, tuple(float(x) for x in rng))))
        return out

    def typical_heart(self) -> dict[str, float]:
        """The typical healthy heart (all nine phenotypes, unrounded): the most likely completion (temperature 0,
        seed 0) around :data:`TYPICAL_HEART_LOCKS`. One rule for every place that needs a default heart."""
        return self.complete_checked([TYPICAL_HEART_LOCKS]).iloc[0].to_dict()  # schema names: nothing to parse

    # ---------------------------------------------------------------- completion
    @torch.no_grad()
    def complete(self, locked, n: int = 1, temperature: float = 0.0, seed: int = 0) -> pd.DataFrame:
        """Complete phenotype sets around locked values, consistently.

        ``locked``: a dict of schema names -> values (any of the nine, e.g. ``{"LVEDV": 180, "LVEF": 35}``) ->
        DataFrame of ``n`` rows; or a DataFrame whose NaN cells are free -> one completed row per input row.
        ``temperature=0``: the posterior mean of the free coordinates (``n`` identical rows); ``> 0``: ``n``
        draws from the conditional of the tempered model. Locked independent phenotypes are returned exactly,
        locked SV / EF to floating-point precision. Contradictory or impossible locks raise PhenotypeError."""
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not (np.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if isinstance(locked, pd.DataFrame):
            result = self.complete_checked(_table_rows(locked, allow_missing=True), temperature, seed)
            result.index = locked.index
            return result
        return self._complete_one(_canonical_dict(locked), int(n), float(temperature), int(seed))

    @torch.no_grad()
    def complete_checked(self, sets: list[dict[str, float]], temperature: float = 0.0,
                         seed: int = 0) -> pd.DataFrame:
        """:meth:`complete` for sets a request parser has checked already (schema names, numbers within their
        plausible ranges: ``cardiosynth.pipelines.requests.PhenotypeRequest.rows``), taken as they are: one
        completed row per set. Contradictory locks still raise PhenotypeError."""
        out = [self._complete_one(dict(locks), 1, float(temperature), int(seed)) for locks in sets]
        return pd.concat(out, ignore_index=True)

    @torch.no_grad()
    def plausibility_checked(self, values: dict[str, float], seed: int = 0) -> Plausibility:
        """:meth:`plausibility` of one set a request parser has checked already, taken as it is."""
        coords, notes = _full_coordinates(values, strict=False)
        return self._plausibility(coords[None], [values], [notes], seed)[0]

    def _complete_one(self, locks: dict[str, float], n: int, temperature: float, seed: int) -> pd.DataFrame:
        states = {side: _resolve_side(side, locks, strict=True) for side in SIDES}
        lvm = locks.get("LVM")
        exact = {f"{s}{k}": getattr(st, k.lower()) for s, st in states.items() if st.kind == "fixed"
                 for k in ("EDV", "ESV")}
        exact.update({k: v for k, v in locks.items() if k in ph.INDEPENDENT})
        if all(st.kind == "fixed" for st in states.values()) and lvm is not None:
            u = np.array([states["LV"].u[0], states["LV"].u[1], math.log(lvm), states["RV"].u[0], states["RV"].u[1]])
            return from_coordinates(np.repeat(u[None], n, 0), exact)
        cfg = self.config
        t_model = temperature if temperature > 0 else 1.0
        g = torch.Generator().manual_seed(int(seed))
        K, dim = cfg.inference.importance_samples, cfg.latent_dim
        std_raw, mean_raw = self.vae.scaler_std.double().numpy(), self.vae.scaler_mean.double().numpy()
        sigma = self.vae.sigma().double().numpy() * std_raw * t_model
        grid_t = np.linspace(-6.0, 6.0, cfg.inference.completion_grid)
        log_phi = -0.5 * grid_t ** 2 - 0.5 * LOG_2PI + math.log(grid_t[1] - grid_t[0])

        def lognorm(x, m, sd):
            return -0.5 * ((x - m) / sd) ** 2 - math.log(sd) - 0.5 * LOG_2PI

        def evaluate(z: torch.Tensor):
            """Log-likelihood of the locks given each z (K,), and per-z conditional grids."""
            mu = self.vae.decode_tensor(z.to(self._dtype)).double().numpy() * std_raw + mean_raw  # (K, 5)
            lw = np.zeros(len(mu))
            grids = {}
            for side, (i, j) in SIDES.items():
                st = states[side]
                if st.kind == "fixed":
                    lw += lognorm(st.u[0], mu[:, i], sigma[i]) + lognorm(st.u[1], mu[:, j], sigma[j])
                elif st.kind == "EDV":
                    lw += lognorm(st.u[0], mu[:, i], sigma[i])
                elif st.kind == "EF":
                    lw += lognorm(st.u[1], mu[:, j], sigma[j])
                elif st.kind in ("ESV", "SV"):
                    u_ratio = mu[:, j:j + 1] + sigma[j] * grid_t[None]  # (K, G)
                    f = _log_sigmoid(u_ratio) if st.kind == "ESV" else _log_sigmoid(-u_ratio)
                    log_cell = lognorm(st.log_value - f, mu[:, i:i + 1], sigma[i]) + log_phi[None]
                    norm = np.logaddexp.reduce(log_cell, axis=1)
                    lw += norm
                    grids[side] = (u_ratio, np.exp(log_cell - norm[:, None]))
            if lvm is not None:
                lw += lognorm(math.log(lvm), mu[:, LVM_COORD], sigma[LVM_COORD])
            return lw, mu, grids

        # pass 1: the tempered prior as proposal; pass 2: a Gaussian fitted to the weighted latents (widened),
        # mixed 80/20 with the prior so the weights stay bounded
        z1 = t_model * torch.randn((K, dim), generator=g, dtype=torch.float64)
        lw1, _, _ = evaluate(z1)
        w1 = np.exp(lw1 - lw1.max())
        w1 /= w1.sum()
        zn = z1.numpy()
        m = (w1[:, None] * zn).sum(0)
        cov = ((zn - m).T * w1) @ (zn - m) * 1.5 ** 2 + 1e-4 * np.eye(dim)
        chol = np.linalg.cholesky(cov)
        n_fit = int(0.8 * K)
        eps = torch.randn((K, dim), generator=g, dtype=torch.float64).numpy()
        z2 = np.concatenate([m + eps[:n_fit] @ chol.T, t_model * eps[n_fit:]])
        log_prior = (-0.5 * (z2 / t_model) ** 2 - math.log(t_model) - 0.5 * LOG_2PI).sum(1)
        diff = np.linalg.solve(chol, (z2 - m).T).T
        log_fit = (-0.5 * diff ** 2 - 0.5 * LOG_2PI).sum(1) - np.log(np.diag(chol)).sum()
        log_q = np.logaddexp(math.log(0.8) + log_fit, math.log(0.2) + log_prior)
        lw2, mu, grids = evaluate(torch.from_numpy(z2))
        logw = lw2 + log_prior - log_q
        w = np.exp(logw - logw.max())
        w /= w.sum()

        if temperature == 0:
            u = self._posterior_mean(states, lvm, mu, grids, w)
            return from_coordinates(np.repeat(u[None], n, 0), exact)
        rng = np.random.default_rng(int(seed))
        out = draw_plausible(lambda: self._draw(states, lvm, exact, mu, grids, w, sigma, grid_t, n, rng))
        if out is not None:
            return out
        raise PhenotypeError("These locked values leave almost no plausible completion; lower the temperature "
                             "or change the locks")

    @staticmethod
    def _draw(states, lvm, exact, mu, grids, w, sigma, grid_t, n, rng) -> pd.DataFrame:
        idx = rng.choice(len(w), size=n, p=w)
        noise = rng.standard_normal((n, 5))
        rows = []
        for r, k in enumerate(idx):
            u = mu[k] + sigma * noise[r]  # free coordinates drawn from the decoder given z_k
            for side, (i, j) in SIDES.items():
                st = states[side]
                if not _set_direct_locks(u, st, i, j) and st.kind in ("ESV", "SV"):
                    u_ratio, p = grids[side]
                    cell = rng.choice(p.shape[1], p=p[k])
                    u[j] = u_ratio[k, cell] + sigma[j] * (grid_t[1] - grid_t[0]) * (rng.random() - 0.5)
                    u[i] = st.log_value - (_log_sigmoid(u[j]) if st.kind == "ESV" else _log_sigmoid(-u[j]))
            if lvm is not None:
                u[LVM_COORD] = math.log(lvm)
            rows.append(u)
        return from_coordinates(np.stack(rows), exact)

    @staticmethod
    def _posterior_mean(states, lvm, mu, grids, w) -> np.ndarray:
        """Posterior mean of the free coordinates; locked ones fixed; curves (lone ESV / SV) solved exactly."""
        u = (w[:, None] * mu).sum(0)
        for side, (i, j) in SIDES.items():
            st = states[side]
            if not _set_direct_locks(u, st, i, j) and st.kind in ("ESV", "SV"):
                u_ratio, p = grids[side]
                u[j] = float((w * (p * u_ratio).sum(1)).sum())
                u[i] = st.log_value - float(_log_sigmoid(np.array(u[j] if st.kind == "ESV" else -u[j])))
        if lvm is not None:
            u[LVM_COORD] = math.log(lvm)
        return u
