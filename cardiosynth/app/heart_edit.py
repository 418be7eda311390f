"""The "Edit a real heart" panel's logic (no Gradio here): a real short-axis cine file -> one prepared slice ->
the same heart's ED anatomy with the motion of a new LVEF, both measured, side by side.

What the heart's own values are: the file carries none, so the bundled measurer reads LVEDV, LVM and RVEDV off
the slice (its error on real validation cines is shown beside them); those fix the anatomy the edit keeps,
and the new LVEF sets the contraction the MAR draws (pipelines.PhenotypeToCine.edit).

The read-backs never contradict themselves: the estimator reads EDV, ESV and EF independently, so on a basal or
apical slice its ESV can exceed its EDV; the real slice's ESV and SV shown (and kept in its conditions) are
derived from the read EDV and EF instead. A read-back shown as "-" comes with one sentence saying why, and a
basal or apical slice with one sentence saying how far its readings went wrong on held-out patients
(``python -m evaluation.edit_read_backs``, reports/edit_read_backs/).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from cardiosynth import phenotypes as ph
from cardiosynth.pipelines.phenotype_to_cine import ANATOMY_PHENOTYPES
from cardiosynth.pipelines.real_cine import (
    RealCineError,
    prepare_real_slice,
    read_cine_file,
)
from cardiosynth.pipelines.requests import checked_number, checked_whole

from .cine_studio import CineResult, CineStudio
from .compute import on_compute_thread
from .studio import fresh_stem

#: slice positions (0 = base ... 1 = apex: the slice's place in the uploaded stack) below / above which one slice's
#: readings are flagged as unreliable
BASAL_END, APICAL_START = 0.15, 0.85
#: the measurer's mean absolute LVEF error (points) on held-out ACDC slices read as the editor reads them, by slice
#: region: ``python -m evaluation.edit_read_backs --split val test`` (reports/edit_read_backs/README.md)
#: (20 patients, 134 slices; 95 % CIs basal 7.6-13.6, mid 5.3-8.6, apical 11.0-19.4)
LVEF_MAE_BY_REGION = {"basal": 10.52, "mid": 6.84, "apical": 15.03}


def slice_region(position: float) -> str:
    """``basal``, ``mid`` or ``apical`` for a slice position (0 = base ... 1 = apex)."""
    return "basal" if position < BASAL_END else "apical" if position > APICAL_START else "mid"


def slice_warning(position: float) -> str | None:
    """One sentence when the slice is basal or apical, where one slice's readings are unreliable; else None."""
    region = slice_region(position)
    if region == "mid":
        return None
    return (f"This is {'a basal' if region == 'basal' else 'an apical'} slice (position {position:.2f}, "
            f"0 = base, 1 = apex), where a single slice gives unreliable readings: on held-out ACDC patients the "
            f"LVEF read off {region} slices was off by {LVEF_MAE_BY_REGION[region]:.0f} points on average, "
            f"against {LVEF_MAE_BY_REGION['mid']:.0f} on mid-ventricular slices.")


def missing_lvef_sentence(whose: str, measured: dict) -> str:
    """One sentence: why ``whose`` (``the real slice``, ``the edited cine``) shows "-" for its LVEF read-back.
    The measurer's regression always gives a number; the app withholds it (``CineStudio.measure``) when the
    segmenter lost the LV cavity in some frame or the number is outside 0-100 %."""
    if not measured:
        return f"No LVEF is read back from {whose} because the segmenter could not measure it at all."
    area = np.asarray(measured.get("lv_area_mm2", []), dtype=float)
    lost = int((~(np.isfinite(area) & (area > 0))).sum())
    if lost:
        return (f"No LVEF is read back from {whose} because the segmenter finds no LV cavity in {lost} of its "
                f"{area.size} frames, and an ejection fraction needs the cavity in every frame.")
    reason = measured.get("not_measurable", {}).get("est_LVEF", "")
    if "outside the physical range" in reason:
        side = "below 0 %" if "= -" in reason else "above 100 %"  # the reason reads "LVEF = -1 is outside ..."
        return (f"No LVEF is read back from {whose} because the measurer's estimate came out {side}, "
                "which is impossible.")
    return f"No LVEF is read back from {whose} because the measurer could not compute it."


def consistent_read(read) -> dict[str, float]:
    """The nine phenotypes read off one slice (a measurer row's ``est_*``), made to agree with each other: ESV and
    SV of each ventricle follow from its read EDV and EF (ESV = EDV x (1 - EF / 100)), so ESV <= EDV always;
    where the read EF is outside 0-100 % the EF, ESV and SV are unknown (NaN)."""
    values = {name: float(read.get(f"est_{name}", math.nan)) for name in ph.NAMES}
    for side in ("LV", "RV"):
        edv, ef = values[f"{side}EDV"], values[f"{side}EF"]
        if not (math.isfinite(ef) and 0.0 <= ef <= 100.0):
            ef = math.nan
        values[f"{side}EF"], values[f"{side}ESV"], values[f"{side}SV"] = ef, edv * (1 - ef / 100), edv * ef / 100
    return values


def edit_real_cine(studio: CineStudio, path: str | Path | None, slice_index, lvef,
                   seed) -> tuple[CineResult, CineResult]:
    """(the real slice, the edited one) as CineResults; every problem is one readable ValueError."""
    studio.require_pipeline()
    if studio.measurer is None:
        raise RuntimeError("Editing needs the bundled segmenter and phenotype estimator, which could not be loaded")
    if not path:
        raise ValueError("Upload a short-axis cine first: NIfTI 4D (.nii / .nii.gz) or a CardioSynth .npz")
    lvef = checked_number(lvef, "New LVEF", 10.0, 85.0)
    seed = checked_whole(seed, "Seed", 0, 2 ** 31 - 1)
    blank = slice_index is None or str(slice_index).strip() == ""
    index = None if blank else checked_whole(str(slice_index).strip(), "Slice", 0, 10_000)
    return on_compute_thread(_edit, studio, Path(path), index, lvef, seed)


def _edit(studio: CineStudio, path: Path, index: int | None, lvef: float, seed: int) -> tuple[CineResult, CineResult]:
    volume = read_cine_file(path)
    cine = prepare_real_slice(volume, index, segmenter=studio.measurer.segmenter)
    table, _ = studio.measurer.measure([cine])
    read = table.iloc[0]
    estimates = {name: float(read.get(f"est_{name}", math.nan)) for name in ANATOMY_PHENOTYPES}
    known = {name: value for name, value in estimates.items() if math.isfinite(value)}
    if "LVEDV" not in known:
        raise RealCineError("The LV could not be measured on this slice, so its volume is unknown: choose a slice "
                            "nearer the mid-ventricle")
    own_lvef = float(read.get("est_LVEF", math.nan))
    if math.isfinite(own_lvef):
        known["LVEF"] = own_lvef  # its own motion is scaled from this contraction to the one asked
    result = studio.pipeline.edit(cine, {"LVEF": lvef}, phenotypes=known, seed=seed,
                                  motion="own" if "LVEF" in known else "mar")
    row = result.conditions.iloc[0]
    stem = fresh_stem(seed, "edit_")
    real = CineResult(cine, {**{n: round(v, 2) for n, v in consistent_read(read).items()},
                             "slice_position": round(cine.slice_position, 2), "seed": seed,
                             "model": cine.source}, files={"stem": stem + "_real"})
    edited = CineResult(result.cines[0], {**{n: round(float(row[n]), 2) for n in ph.NAMES},
                                          "slice_position": round(cine.slice_position, 2), "seed": seed,
                                          **{k: cast(row[k]) for k, cast in (("steps", int), ("cfg", float),
                                                                             ("temperature", float)) if k in row},
                                          "motion": str(row["motion"]),
                                          "model": result.cines[0].source, "edited_from": cine.source},
                        files={"stem": stem})
    real.measured, edited.measured = studio.measure(real.cine), studio.measure(edited.cine)
    return real, edited


def edit_markdown(real: CineResult, edited: CineResult) -> str:
    """The values: what was read off the real slice, what the edit asked for, what is read back; above them one
    sentence for each thing the reader must know (a read-back shown as "-", a basal or apical slice)."""
    def fmt(value):
        return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.0f}"

    readable = real.measured.get("est_LVEF") is not None  # else "-", with the reason above the table
    real_lvef, real_lvesv = (real.conditions["LVEF"], real.conditions["LVESV"]) if readable else (None, None)
    read_back = [fmt(result.measured.get("est_LVEF")) for result in (real, edited)]
    position = float(real.conditions["slice_position"])
    lines = ["| | real slice | edited |", "|---|---:|---:|",
             f"| LVEDV (mL), kept | {fmt(real.conditions['LVEDV'])} (read) | {fmt(edited.conditions['LVEDV'])} |",
             f"| LVEF (%) | {fmt(real_lvef)} (read) | {fmt(edited.conditions['LVEF'])} (asked) |",
             f"| LVESV (mL) | {fmt(real_lvesv)} (from EDV and EF) | {fmt(edited.conditions['LVESV'])} |",
             f"| **read back** LVEF (%) | {read_back[0]} | {read_back[1]} |",
             f"| slice position | {position:.2f} | {float(edited.conditions['slice_position']):.2f} |"]
    sentences = [missing_lvef_sentence(whose, result.measured)
                 for whose, result in (("the real slice", real), ("the edited cine", edited))
                 if result.measured.get("est_LVEF") is None]
    warning = slice_warning(position)
    sentences += [warning] if warning else []
    block = ('<div class="cs-warning" role="status" id="edit-warnings">'
             + "".join(f"<p>{html.escape(text)}</p>" for text in sentences) + "</div>\n\n") if sentences else ""
    return (block + "\n".join(lines) + "\n\n*Kept*: the heart's own real ED frame (every edited frame is its pixels, "
            "warped by the newly drawn motion; nothing is decoded) and the "
            "volumes the measurer reads off the slice (LVEDV, LVM, RVEDV); only contraction is drawn anew. "
            "*Read*: the bundled segmenter and phenotype estimator on one slice (their error on real validation "
            "cines: LVEDV MAE ~44 mL, LVEF MAE ~8 points), so the real slice's own values are estimates too; its "
            "LVESV is the read LVEDV x (1 - read LVEF), so that the three agree.")
