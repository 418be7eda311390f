"""The "Edit a real heart" read-backs (issue 39, item 3): they never contradict themselves (ESV <= EDV), a value
shown as "-" comes with the reason, and a basal or apical slice with a warning; each message is one sentence."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from cardiosynth import phenotypes as ph
from cardiosynth.app.cine_studio import CineResult, CineStudio
from cardiosynth.app.heart_edit import (
    APICAL_START,
    BASAL_END,
    LVEF_MAE_BY_REGION,
    consistent_read,
    edit_markdown,
    edit_real_cine,
    missing_lvef_sentence,
    slice_region,
    slice_warning,
)
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.pipelines.real_cine import RealCineError, prepare_real_slice, read_cine_file

# patients whose basal or apical slices the measurer reads with ESV above EDV (and, for patient016, EF < 0)
CONTRADICTING = ("patient003", "patient010", "patient016")


def one_sentence(text: str) -> bool:
    text = text.strip()
    return text.endswith(".") and not re.search(r"[.!?]\s+[A-Z]", text[:-1])


def result(position: float, lvef=40.0, measured: dict | None = None, **conditions) -> CineResult:
    values = {"LVEDV": 200.0, "LVEF": lvef, "LVESV": 200.0 * (1 - lvef / 100) if math.isfinite(lvef) else math.nan,
              "slice_position": position, **conditions}
    area = [900.0 - 20 * k for k in range(16)]
    return CineResult(None, values, measured={"est_LVEF": lvef, "lv_area_mm2": area, "not_measurable": {}}
                      if measured is None else measured)


@pytest.fixture(scope="module")
def measurer():
    return CineMeasurer()


def test_every_real_slice_reads_esv_at_most_edv(measurer, acdc_root):
    contradicted = 0
    for patient in CONTRADICTING:
        volume = read_cine_file(acdc_root / patient / f"{patient}_4d.nii.gz")
        for z in range(volume.n_slices):
            try:
                cine = prepare_real_slice(volume, z, segmenter=measurer.segmenter)
            except RealCineError:
                continue
            read = measurer.measure([cine])[0].iloc[0]
            contradicted += read["est_LVESV"] > read["est_LVEDV"]
            values = consistent_read(read)
            for side in ("LV", "RV"):
                edv, esv, sv, ef = (values[f"{side}{k}"] for k in ("EDV", "ESV", "SV", "EF"))
                assert edv == pytest.approx(read[f"est_{side}EDV"])  # the EDV the edit keeps is the one read
                if math.isnan(ef):  # an EF outside 0-100 % is unknown, and so are ESV and SV
                    assert not 0 <= read[f"est_{side}EF"] <= 100 and math.isnan(esv) and math.isnan(sv)
                    continue
                assert 0 <= esv <= edv, (patient, z, side, values)
                assert sv == pytest.approx(edv - esv) and ef == pytest.approx(100 * sv / edv)
    assert contradicted >= 3  # the independent estimates did contradict on these slices: the case is exercised


def test_the_table_shows_the_derived_esv_and_no_contradiction():
    real, edited = result(0.5, lvef=9.0, LVEDV=310.0), result(0.5, lvef=35.0, LVEDV=310.0)
    real.conditions["LVESV"] = 310.0 * 0.91
    table = edit_markdown(real, edited)
    assert "| LVESV (mL) | 282 (from EDV and EF) |" in table and "| LVEDV (mL), kept | 310 (read) |" in table
    assert "cs-warning" not in table  # a mid slice, every value read: nothing to warn about


@pytest.mark.parametrize("position, region", [(0.0, "basal"), (BASAL_END - 0.01, "basal"), (BASAL_END, "mid"),
                                              (0.5, "mid"), (APICAL_START, "mid"), (1.0, "apical")])
def test_basal_and_apical_slices_are_warned_in_one_sentence(position, region):
    assert slice_region(position) == region
    warning = slice_warning(position)
    table = edit_markdown(result(position), result(position))
    if region == "mid":
        assert warning is None and "cs-warning" not in table
        return
    assert f"{region} slice" in warning and "unreliable" in warning and one_sentence(warning)
    assert f"off by {LVEF_MAE_BY_REGION[region]:.0f} points" in warning  # the measured error, not a made-up one
    assert f"against {LVEF_MAE_BY_REGION['mid']:.0f} on mid-ventricular" in warning
    assert table.index("cs-warning") < table.index("| LVEDV (mL)") and "unreliable" in table


def test_a_missing_read_back_says_why_in_one_sentence():
    area = [900.0] * 4 + [0.0] * 6 + [700.0] * 6
    lost = {"est_LVEF": None, "lv_area_mm2": area, "not_measurable": {"est_LVEF": "the segmenter finds no LV in "
                                                                                  "frames 4, 5, 6, 7, 8 ..."}}
    sentence = missing_lvef_sentence("the edited cine", lost)
    assert sentence == ("No LVEF is read back from the edited cine because the segmenter finds no LV cavity in 6 "
                        "of its 16 frames, and an ejection fraction needs the cavity in every frame.")
    below = {"est_LVEF": None, "lv_area_mm2": [900.0, 890.0, 880.0],
             "not_measurable": {"est_LVEF": "LVEF = -1 is outside the physical range 0-100"}}
    assert "below 0 %" in missing_lvef_sentence("the real slice", below)
    assert "could not measure" in missing_lvef_sentence("the edited cine", {})
    for text in (sentence, missing_lvef_sentence("the real slice", below), missing_lvef_sentence("x", {})):
        assert one_sentence(text)
    # in the table: "-" where the value was, the reason above it
    real = result(0.5, lvef=math.nan, measured=below)
    table = edit_markdown(real, result(0.5, measured=lost))
    assert "| LVEF (%) | - (read) |" in table and "| LVESV (mL) | - (from EDV and EF) |" in table
    assert "| **read back** LVEF (%) | - | - |" in table
    assert "No LVEF is read back from the real slice because" in table
    assert "No LVEF is read back from the edited cine because" in table


def test_an_edit_asking_too_much_of_a_basal_slice_says_why_its_read_back_is_missing(acdc_root):
    """The issue's case: LVEF 70 asked of a basal slice; the edited cine's LV vanishes at end-systole for the
    segmenter, so its read-back is "-", and now the table says why."""
    studio = CineStudio()
    real, edited = edit_real_cine(studio, acdc_root / "patient012" / "patient012_4d.nii.gz", "0", 70, 0)
    table = edit_markdown(real, edited)
    assert edited.measured["est_LVEF"] is None
    assert "No LVEF is read back from the edited cine because the segmenter finds no LV cavity in" in table
    assert "This is a basal slice" in table
    assert real.conditions["LVESV"] <= real.conditions["LVEDV"]
    assert set(ph.NAMES) <= set(real.conditions) and np.isfinite(real.conditions["LVEF"])
