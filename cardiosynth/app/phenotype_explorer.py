"""Logic behind the "Phenotype explorer" tab, free of Gradio so it can be tested and reused.

The explorer holds one phenotype set (all nine schema phenotypes). The five independent phenotypes (LVEDV,
LVESV, LVM, RVEDV, RVESV) are the state; SV and EF are always recomputed from them, so the set shown is
consistent by construction:

- editing an independent phenotype keeps the other independent ones and recomputes SV and EF, except that
  moving an EDV keeps that ventricle's EF (ESV follows) unless the user chose to keep its ESV; a lock ticked
  on EF or ESV decides it (:func:`held_when_edv_moves`): a user who has just set an EF does not see it move;
- editing an EF keeps that ventricle's EDV and sets ESV = EDV x (1 - EF / 100);
- editing an SV keeps that ventricle's EDV and sets ESV = EDV - SV.

Values are rounded to 0.01 (mL, g, %); derived values are computed from the rounded volumes, so
EF = 100 x SV / EDV holds to the rounding of EF (0.005 %).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cardiosynth import phenotypes as ph
from cardiosynth.phenotype_prior import (
    SAMPLED_POPULATION,
    PhenotypePrior,
    Plausibility,
)
from cardiosynth.phenotypes import PhenotypeError
from cardiosynth.pipelines.requests import CineRequest, checked_number, checked_whole
from cardiosynth.weights import REFERENCE_POPULATION, checked_reference_population

log = logging.getLogger("cardiosynth.app")

DECIMALS = 2
POPULATION_SIZE = 2000
POPULATION_SEED = 0
N_BINS = 40
TEMPERATURE_RANGE = (0.0, 2.0)  # the VAE's temperature slider and what a request may ask
STATUS_WORDS = {"green": "Plausible", "amber": "Unusual", "red": "Implausible"}
STATUS_COLOURS = {"green": "#1a7f37", "amber": "#b26b00", "red": "#c62828"}


def _round(x: float) -> float:
    return round(float(x), DECIMALS)


def consistent(values: Mapping[str, float], edited: str | Sequence[str] | None = None) -> dict[str, float]:
    """All nine phenotypes, derived ones recomputed from the volumes (see the module docstring).

    ``edited`` names the phenotype(s) the user just changed or locked; a derived one (SV or EF) moves that
    ventricle's ESV to honour it (EF first when both are named). Raises PhenotypeError for sets that
    cannot hold."""
    edited = {edited} if isinstance(edited, str) else set(edited or ())
    missing = [n for n in ph.INDEPENDENT if n not in values or values[n] is None]
    missing += [n for n in edited if n in ph.DERIVED and values.get(n) is None]
    if missing:
        raise PhenotypeError(f"Missing value(s): {', '.join(missing)}")
    out = {n: _round(values[n]) for n in ph.INDEPENDENT}
    for side in ("LV", "RV"):
        edv, esv = f"{side}EDV", f"{side}ESV"
        if f"{side}EF" in edited:
            ef = float(values[f"{side}EF"])
            if not 0 < ef < 100:
                raise PhenotypeError(f"{side}EF must be between 0 and 100 %, got {ef:g} %")
            out[esv] = _round(out[edv] * (1.0 - ef / 100.0))
        elif f"{side}SV" in edited:
            out[esv] = _round(out[edv] - float(values[f"{side}SV"]))
        if not 0 < out[esv] < out[edv]:
            raise PhenotypeError(
                f"{esv} {out[esv]:g} mL must be above 0 and below {edv} {out[edv]:g} mL, since a ventricle "
                f"cannot hold more blood at end-systole than at end-diastole: lower {esv} or raise {edv}")
        sv, ef = ph.derive(out[edv], out[esv])  # from the rounded volumes; SV and EF rounded after
        out[f"{side}SV"], out[f"{side}EF"] = _round(sv), _round(ef)
    ordered = {n: out[n] for n in ph.NAMES}
    problems = ph.out_of_range(ordered)
    if problems:
        raise PhenotypeError("; ".join(problems) + fix_hint(ordered))
    return ordered


class TypedOutOfRange(PhenotypeError):
    """A number typed beyond its slider: the box keeps it (the user may still be typing, "7" on the way to 70)
    and the app goes on with the set in use."""


def check_typed(values: Mapping[str, float], in_use: Mapping[str, float] | None = None) -> None:
    """Every value as typed lies on its slider (the phenotype's plausible range); else a TypedOutOfRange naming
    the value typed, the range and the value still in use, before anything is derived from it (an EDV of 700
    would otherwise be answered with the SV it implies)."""
    for name, value in values.items():
        p = ph.BY_NAME[name]
        low, high = p.plausible_range
        if value is not None and not low <= float(value) <= high:
            used = (f", so the app still uses {name} {in_use[name]:g} {p.unit}"
                    if in_use and in_use.get(name) is not None else "")
            raise TypedOutOfRange(f"{name} {float(value):g} {p.unit} is outside the range this app accepts for it, "
                                  f"{low:g} to {high:g} {p.unit}{used}")


def fix_hint(values: Mapping[str, float]) -> str:
    """What to change so that an out-of-range set holds; a derived value is fixed through its volumes."""
    hints = []
    for name, value in values.items():
        p = ph.BY_NAME[name]
        low, high = p.plausible_range
        if low <= value <= high:
            continue
        side, too_high = name[:2], value > high
        if name.endswith("SV"):
            hints.append(f"{name} = {side}EDV − {side}ESV: {'raise' if too_high else 'lower'} {side}ESV or "
                         f"{'lower' if too_high else 'raise'} {side}EDV")
        elif name.endswith("EF"):
            hints.append(f"{name} follows {side}ESV / {side}EDV: {'raise' if too_high else 'lower'} {side}ESV, or set "
                         f"{name} between {low:g} and {high:g} %")
        else:
            hints.append(f"set {name} between {low:g} and {high:g} {p.unit}")
    return " (to fix: " + "; ".join(hints) + ")" if hints else ""


KEEP_CHOICES = ("EF", "ESV")


def held_when_edv_moves(side: str, keep: str, locked: Sequence[str] = ()) -> str:
    """The phenotype held when ``side``'s EDV moves: a locked EF or ESV, else the user's choice ``keep``."""
    ef, esv = f"{side}EF", f"{side}ESV"
    if ef in locked and esv in locked:
        raise PhenotypeError(f"{ef} and {esv} are both locked, so {side}EDV cannot move without changing one of "
                             "them: untick one of the two locks.")
    if ef in locked or esv in locked:
        return ef if ef in locked else esv
    if keep not in KEEP_CHOICES:
        raise PhenotypeError(f"Choose what an EDV keeps when it moves: {' or '.join(KEEP_CHOICES)}.")
    return f"{side}{keep}"


@dataclass
class Scored:
    """One phenotype set with its plausibility, as the tab shows it."""

    values: dict[str, float]
    plausibility: Plausibility
    note: str = ""  # how the set came about, e.g. "Sampled at temperature 1.0, seed 3"

    def as_dict(self) -> dict:
        p = self.plausibility
        return {"phenotypes": self.values, "note": self.note,
                "plausibility": {"status": p.status, "percentile": round(p.percentile, 1),
                                 "reasons": list(p.reasons),
                                 "expected_given_others": {k: [round(x, 1) for x in v] for k, v in p.expected.items()},
                                 "z_given_others": {k: round(v, 2) for k, v in p.conditional_z.items()}}}


class PhenotypeExplorer:
    """The phenotype VAE plus what the tab needs around it (start set, population, plot, indicator)."""

    def __init__(self, prior: PhenotypePrior | None = None, population_size: int = POPULATION_SIZE):
        self.prior = prior if prior is not None else PhenotypePrior.from_pretrained()
        self.population = self.prior.sample(population_size, temperature=1.0, seed=POPULATION_SEED)
        self.population_label = f"VAE samples (temperature 1, n = {population_size})"
        self.real = _real_training_patients()
        self._bins = {name: self._histogram(name) for name in ph.NAMES}
        self._base = json.loads(self.figure(None).to_json())  # population only; figure_json adds this heart
        # the starting set: the typical healthy heart (the VAE's most likely heart given normal ejection fractions)
        self.start = consistent(self.prior.typical_heart())

    # ------------------------------------------------------------------ actions
    def score(self, values: Mapping[str, float], edited: str | Sequence[str] | None = None, note: str = "") -> Scored:
        values = consistent(values, edited)
        return Scored(values, self.prior.plausibility({n: values[n] for n in ph.INDEPENDENT}), note)

    def verdict(self, request: CineRequest) -> Scored:
        """The plausibility of a generation request's set, scored once, on the phenotypes as its request parsed
        them (nothing parsed again): what the panel shows beside the cine and above it after generating."""
        row = request.sets.iloc[0]
        return Scored({n: float(row[n]) for n in ph.NAMES}, self.prior.plausibility_checked(request.asked.rows[0]))

    def move_edv(self, values: Mapping[str, float], side: str, keep: str = "EF",
                 locked: Sequence[str] = ()) -> Scored:
        """``side``'s EDV moved to ``values[side + "EDV"]``; its EF or ESV held (:func:`held_when_edv_moves`)."""
        held = held_when_edv_moves(side, keep, locked)
        return self.score(values, edited=held if held.endswith("EF") else None,
                          note=f"Edited by hand ({side}EDV moved; {held} held).")

    def sample(self, temperature: float, seed: int) -> Scored:
        temperature, seed = _temperature(temperature), _seed(seed)
        row = self.prior.sample(1, temperature=temperature, seed=seed).iloc[0].to_dict()
        return self.score(row, note=f"Sampled from the phenotype VAE at temperature {temperature:g}, seed {seed}: a "
                                    f"random heart like {SAMPLED_POPULATION}, so not necessarily a healthy one.")

    def complete(self, values: Mapping[str, float], locked: Sequence[str], random: bool = False,
                 temperature: float = 1.0, seed: int = 0) -> Scored:
        locked = [n for n in ph.NAMES if n in set(locked)]
        if not locked:
            raise PhenotypeError("Nothing is locked: tick the lock box of the phenotypes to keep, "
                                 "then press \u201cComplete the rest\u201d.")
        if len(locked) == len(ph.NAMES):
            raise PhenotypeError("Every phenotype is locked, so there is nothing to complete: unlock some.")
        locks = {n: float(values[n]) for n in locked}
        t = _temperature(temperature) if random else 0.0
        s = _seed(seed)
        row = self.prior.complete(locks, n=1, temperature=t, seed=s).iloc[0].to_dict()
        # the VAE returns locked independent values exactly and locked SV / EF to float precision; let a locked
        # SV / EF set ESV after rounding (unless ESV itself is locked), so the lock survives the rounding to 0.01
        edited = [n for n in locked if n in ph.DERIVED and f"{n[:2]}ESV" not in locked]
        row.update({n: locks[n] for n in edited})
        how = (f"a random completion at temperature {t:g}, seed {s}" if random
               else "the most likely completion (temperature 0)")
        return self.score(row, edited=edited,
                          note=f"Completed by the phenotype VAE around {', '.join(locked)} locked: {how}.")

    # ------------------------------------------------------------------ views
    def status_html(self, scored: Scored) -> str:
        p, calibration = scored.plausibility, self.prior.config.calibration
        n_ref = len(calibration.log_density)
        colour = STATUS_COLOURS[p.status]
        key = ",".join(f"{scored.values[n]:.2f}" for n in ph.NAMES)
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in p.reasons) or "<li>No phenotype stands out given the others.</li>"
        note = f'<div class="cs-note-line">{html.escape(scored.note)}</div>' if scored.note else ""
        return (
            f'<div class="cs-plaus" data-status="{p.status}" data-key="{key}" style="border-color:{colour}">'
            f'<div class="cs-plaus-head"><span class="cs-light" style="background:{colour}"></span>'
            f'<span class="cs-plaus-word" style="color:{colour}">{STATUS_WORDS[p.status]} ({p.status})</span>'
            f'<span class="cs-plaus-pct">more likely than {p.percentile:.0f} % of the {n_ref} real reference '
            f'patients ({html.escape(calibration.source or "ACDC")})</span></div>'
            f'<ul class="cs-reasons">{reasons}</ul>{note}</div>')

    def legend_markdown(self) -> str:
        inference, calibration = self.prior.config.inference, self.prior.config.calibration
        return (f"**Green**: like the real patients. **Amber**: unusual: less likely than "
                f"{100 - inference.amber_percentile:g} % of the real reference patients, a phenotype more than "
                f"{inference.amber_z:g} SD from what the others predict, or beyond every training patient. **Red**: "
                f"values that contradict each other, more than {inference.red_z:g} SD off, or far less likely than "
                f"any real patient. The percentile is the share of real reference patients (ACDC "
                f"{calibration.source or ''}) whose phenotype set the VAE finds less likely than this one.")

    def figure(self, scored: Scored | None) -> go.Figure:
        """This set (red line) against the population: one histogram per phenotype."""
        fig = make_subplots(rows=3, cols=3, subplot_titles=[ph.BY_NAME[n].label for n in ph.NAMES],
                            horizontal_spacing=0.06, vertical_spacing=0.14)
        colour = STATUS_COLOURS[scored.plausibility.status] if scored else "#c62828"
        for k, name in enumerate(ph.NAMES):
            row, col = divmod(k, 3)
            centres, density, width = self._bins[name]
            fig.add_trace(go.Bar(x=centres, y=density, width=width, marker={"color": "#9db4d0"},
                                 name=self.population_label, legendgroup="pop", showlegend=k == 0,
                                 hovertemplate=f"{name} %{{x:.0f}}: %{{y:.3f}}<extra></extra>"),
                          row=row + 1, col=col + 1)
            top = float(density.max()) if density.size else 1.0
            if self.real is not None:
                fig.add_trace(go.Scatter(x=self.real[name], y=np.full(len(self.real), -0.06 * top), mode="markers",
                                         marker={"symbol": "line-ns-open", "size": 8, "color": "#37474f"},
                                         name=f"real ACDC training patients (n = {len(self.real)})",
                                         legendgroup="real", showlegend=k == 0,
                                         hovertemplate=f"{name} %{{x:.0f}} (real patient)<extra></extra>"),
                              row=row + 1, col=col + 1)
            if scored is not None:
                v = scored.values[name]
                fig.add_trace(go.Scatter(x=[v, v], y=[0, 1.08 * top], mode="lines", line={"color": colour, "width": 3},
                                         name="this heart", legendgroup="this", showlegend=k == 0,
                                         hovertemplate=f"this heart: {name} {v:.1f} {ph.BY_NAME[name].unit}<extra></extra>"),
                              row=row + 1, col=col + 1)
            fig.update_yaxes(showticklabels=False, row=row + 1, col=col + 1)
        fig.update_layout(height=580, template="plotly_white", bargap=0, margin={"l": 20, "r": 20, "t": 70, "b": 20},
                          legend={"orientation": "h", "y": -0.06, "yanchor": "top", "x": 0.5, "xanchor": "center"})
        return fig

    def figure_json(self, values: Mapping[str, float], status: str) -> str:
        """``figure(...)`` of this set as plotly JSON, built from a cached population figure (~100x faster than
        building the figure with plotly's validators on every slider move)."""
        colour = STATUS_COLOURS.get(status, "#c62828")
        lines = []
        for k, name in enumerate(ph.NAMES):
            v, top = float(values[name]), float(self._bins[name][1].max())
            axis = "" if k == 0 else str(k + 1)
            lines.append({"type": "scatter", "x": [v, v], "y": [0, 1.08 * top], "mode": "lines",
                          "line": {"color": colour, "width": 3}, "name": "this heart", "legendgroup": "this",
                          "showlegend": k == 0, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                          "hovertemplate": f"this heart: {name} {v:.1f} {ph.BY_NAME[name].unit}<extra></extra>"})
        return json.dumps({"data": self._base["data"] + lines, "layout": self._base["layout"]})

    def _histogram(self, name: str):
        x = self.population[name].to_numpy()
        low, high = np.percentile(x, [0.5, 99.5])
        edges = np.linspace(low, high, N_BINS + 1)
        counts, edges = np.histogram(x, bins=edges, density=True)
        return (edges[:-1] + edges[1:]) / 2, counts, float(edges[1] - edges[0])


def _temperature(value) -> float:
    return checked_number(value, "Temperature", *TEMPERATURE_RANGE)


def _seed(value) -> int:
    return checked_whole(value, "Seed", 0, 2 ** 31 - 1)


def _real_training_patients() -> pd.DataFrame | None:
    """The real ACDC training patients' phenotypes, from the bundled table (``REFERENCE_POPULATION``, written by
    ``python -m training.export_reference_population``); None when it is missing (no error)."""
    try:
        table = pd.read_csv(checked_reference_population(REFERENCE_POPULATION))
        return table[list(ph.NAMES)].dropna().reset_index(drop=True) if len(table) else None
    except Exception:  # optional overlay: never stop the app for it
        log.info("The reference population %s is not available; the population plot shows VAE samples only",
                 REFERENCE_POPULATION, exc_info=True)
        return None
