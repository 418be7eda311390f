"""Lead names and the limb-lead arithmetic.

Every format spells leads differently ("Lead I (Einthoven)", "MDC_ECG_LEAD_AVR", "avr", "DII", "C1"), so
readers map labels to the standard names here and never rely on column order. Many devices store only
8 independent leads (I, II, V1-V6); the other four follow from Einthoven's and Goldberger's definitions.
"""

from __future__ import annotations

import re

import numpy as np

from .types import LEADS

_CANONICAL = {name.lower(): name for name in LEADS}
_ALIASES = {
    # Roman-numeral "D" spelling (DI, DII, DIII) used in French/Spanish/Portuguese exports.
    "di": "I", "dii": "II", "diii": "III", "d1": "I", "d2": "II", "d3": "III",
    # European chest-lead spelling C1..C6.
    **{f"c{k}": f"V{k}" for k in range(1, 7)},
}
# Arabic numerals for the Einthoven leads, only when written with a "lead" prefix ("Lead 2"): a bare "2"
# is more likely a channel number.
_NUMBERED = {"1": "I", "2": "II", "3": "III"}


def standard_lead_name(label: object) -> str | None:
    """The standard name for a lead label, or None if it is not one of the 12 standard leads."""
    text = str(label).strip().lower()
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text)  # "Lead I (Einthoven)", "II [mV]"
    prefixed = re.match(r"^\s*(mdc_ecg_lead_|ecg_lead_|lead[\s_-]*|ecg[\s_-]+)", text)
    if prefixed:
        text = text[prefixed.end():]
    text = re.sub(r"[\s_\-.:]+", "", text)
    return _CANONICAL.get(text) or _ALIASES.get(text) or (_NUMBERED.get(text) if prefixed else None)


def derive_limb_leads(leads: dict[str, np.ndarray]) -> list[str]:
    """Fill in missing limb leads from any two of I, II, III (in place); returns the names derived.

    III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2 (Einthoven/Goldberger).
    """
    derived: list[str] = []
    if "I" not in leads and "II" in leads and "III" in leads:
        leads["I"] = leads["II"] - leads["III"]
        derived.append("I")
    if "II" not in leads and "I" in leads and "III" in leads:
        leads["II"] = leads["I"] + leads["III"]
        derived.append("II")
    if "I" not in leads or "II" not in leads:
        return derived
    lead_i, lead_ii = leads["I"], leads["II"]
    formulas = {
        "III": lambda: lead_ii - lead_i,
        "aVR": lambda: -(lead_i + lead_ii) / 2,
        "aVL": lambda: lead_i - lead_ii / 2,
        "aVF": lambda: lead_ii - lead_i / 2,
    }
    for name, formula in formulas.items():
        if name not in leads:
            leads[name] = formula()
            derived.append(name)
    return derived
