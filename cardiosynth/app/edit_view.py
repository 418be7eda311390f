"""The "Edit a real heart" panel's logic (no Gradio here): a real short-axis cine file -> one prepared slice ->
the same heart's ED anatomy with the motion of a new LVEF, both measured, side by side.

What the heart's own values are: the file carries none, so the bundled measurer reads LVEDV, LVM and RVEDV off
the slice (its error on real validation cines is shown beside them); those fix the anatomy the edit keeps,
and the new LVEF sets the contraction the MAR draws (pipelines.PhenotypeToCine.edit).
"""

from __future__ import annotations

import math
from pathlib import Path

from cardiosynth import phenotypes as ph
from cardiosynth.pipelines.phenotype_to_cine import ANATOMY_PHENOTYPES
from cardiosynth.pipelines.real_cine import (
    RealCineError,
    prepare_real_slice,
    read_cine_file,
)

from .cine_view import CineResult, CineStudio
from .compute import on_compute_thread
from .studio import checked_number, checked_whole, fresh_stem


def edit_real_cine(studio: CineStudio, path: str | Path | None, slice_index, lvef, seed) -> tuple[CineResult, CineResult]:
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
    real = CineResult(cine, {**{n: round(float(read[f"est_{n}"]), 2) for n in ph.NAMES},
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
    """The values: what was read off the real slice, what the edit asked for, what is read back."""
    def fmt(value):
        return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.0f}"

    lines = ["| | real slice | edited |", "|---|---:|---:|",
             f"| LVEDV (mL), kept | {fmt(real.conditions['LVEDV'])} (read) | {fmt(edited.conditions['LVEDV'])} |",
             f"| LVEF (%) | {fmt(real.conditions['LVEF'])} (read) | {fmt(edited.conditions['LVEF'])} (asked) |",
             f"| LVESV (mL) | {fmt(real.conditions['LVESV'])} (read) | {fmt(edited.conditions['LVESV'])} |",
             f"| **read back** LVEF (%) | {fmt(real.measured.get('est_LVEF'))} | {fmt(edited.measured.get('est_LVEF'))} |",
             f"| slice position | {real.conditions['slice_position']:.2f} | {edited.conditions['slice_position']:.2f} |"]
    return ("\n".join(lines) + "\n\n*Kept*: the heart's own real ED frame (every edited frame is its pixels, warped "
            "by the newly drawn motion; nothing is decoded) and the "
            "volumes the measurer reads off the slice (LVEDV, LVM, RVEDV); only contraction is drawn anew. "
            "*Read*: the bundled segmenter and phenotype estimator on one slice (their error on real validation "
            "cines: LVEDV MAE ~44 mL, LVEF MAE ~8 points), so the real slice's own values are estimates too.")
