"""QT a cardiologist could sign, and R-peaks on the QRS of paced ECGs.

ECGs drawn from waves with exactly known edges (``fixtures_ecg.drawn_ecg``: a P wave close before the QRS, a
pacing spike 90 ms before it) written as GE MUSE files with the project's writer (no real GE MUSE export with a
misplaced QRS onset, and no real paced file other than LUDB's, is public: these stand in for them); the
plausibility checks on made-up delineations; the device's own QT as a check; and LUDB against its cardiologists.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_ecg import drawn_ecg, muse_bytes

from cardiosynth.ecg import read_ecg
from cardiosynth.ecg.pacing import blank_spikes, paces, spike_samples
from cardiosynth.ecg.process import measure_qt, plausible_beats, process_ecg
from evaluation.ecg_qt import evaluate as evaluate_qt

FS = 500


def _analysed(device_qt_ms: float | None = None, **drawing):
    x, truth = drawn_ecg(**drawing)
    return process_ecg(read_ecg(muse_bytes(signal=x, device_qt_ms=device_qt_ms))), truth


@pytest.mark.parametrize("drawing", [{}, {"pr_gap_s": 0.0}, {"rr_s": 0.7, "qt_s": 0.34}, {"rr_s": 1.3, "qt_s": 0.46}])
def test_qt_of_drawn_ecgs_with_the_p_wave_close_before_the_qrs(drawing):
    analysis, truth = _analysed(**drawing)
    assert analysis.qt_s is not None and abs(analysis.qt_s - truth["qt_s"]) <= 0.030, (analysis.qt_s, truth["qt_s"])
    lead_in = (analysis.r_peaks - analysis.q_peaks) / FS
    assert np.all((lead_in >= 0.01) & (lead_in <= 0.06)), lead_in  # on the QRS, never back on the P wave
    assert analysis.qt_doubts == []


def test_a_qrs_onset_on_the_p_wave_or_a_t_end_past_the_next_beat_is_not_used():
    r = np.array([500, 1000, 1500, 2000])
    on = r - 20.0
    off = r + 200.0
    assert plausible_beats(r, on, off, FS).all()
    on[1] = r[1] - 100  # 200 ms before R: the P wave
    off[2] = r[3] + 10  # past the next R
    assert plausible_beats(r, on, off, FS).tolist() == [True, False, False, True]
    qt, doubts = measure_qt(r, on, off, FS)
    assert qt == pytest.approx(0.44) and doubts == []


def test_too_few_plausible_beats_give_no_qt_and_say_why():
    r = np.array([500, 1000, 1500, 2000])
    qt, doubts = measure_qt(r, r - 150.0, r + 200.0, FS)
    assert qt is None and "could not be measured" in doubts[0]


def test_a_qt_implausible_for_the_heart_rate_is_doubted_in_words():
    r = np.arange(4) * 300 + 300  # RR 600 ms
    qt, doubts = measure_qt(r, r - 20.0, r + 280.0, FS)  # QT 600 ms at RR 600 ms: QTc (Fridericia) 711 ms
    assert qt == pytest.approx(0.6)
    assert len(doubts) == 1 and "Fridericia" in doubts[0] and "711 ms" in doubts[0]


def test_the_devices_own_qt_is_read_and_a_disagreement_is_doubted():
    agreeing, _ = _analysed(device_qt_ms=400)
    assert agreeing.qt_doubts == []
    disagreeing, _ = _analysed(device_qt_ms=520)
    assert [d for d in disagreeing.qt_doubts if "device's own 520 ms" in d]
    assert [w for w in disagreeing.warnings if "device's own 520 ms" in w]


def test_the_shared_muse_and_philips_examples_carry_the_devices_qt(ecg_root):
    formats = ecg_root / "formats"
    assert read_ecg(formats / "ge_muse_xml" / "braveheart_example1.xml").metadata["device_qt_ms"] == 452
    assert read_ecg(formats / "ge_muse_xml" / "braveheart_example2.xml").metadata["device_qt_ms"] == 420
    assert read_ecg(formats / "philips_sierra_xml" / "129DYPRG.XML").metadata["device_qt_ms"] == 476


@pytest.mark.parametrize("fs", [500, 1000])
def test_paced_ecg_r_peaks_sit_on_the_qrs_not_on_the_spike(fs):
    x, truth = drawn_ecg(fs=fs, pacing_spike_before_qrs_s=0.09)
    analysis = process_ecg(read_ecg(muse_bytes(fs=fs, signal=x)))
    r_true = truth["r_peaks"] * FS // fs
    assert analysis.pacing_suspected and analysis.r_peaks.size == r_true.size
    assert np.abs(analysis.r_peaks - r_true).max() <= 2  # within 4 ms of the R peak, 130 ms after the spike
    assert analysis.qt_s == pytest.approx(truth["qt_s"], abs=0.03)
    assert [d for d in analysis.qt_doubts if "pacemaker" in d]  # paced QT stays under doubt


def test_spikes_are_found_and_blanked_and_unpaced_ecgs_left_alone():
    x, truth = drawn_ecg(pacing_spike_before_qrs_s=0.09)
    spikes = spike_samples(x)
    assert set(truth["spikes"]) <= set(spikes)
    assert all(np.abs(truth["spikes"] - s).min() <= 3 for s in spikes)  # nothing else (no QRS) taken for a spike
    assert paces(spikes, truth["qrs_onsets"], FS)
    blanked = blank_spikes(x, spikes, FS)
    assert np.abs(blanked).max() <= 1.3 * np.abs(drawn_ecg()[0]).max() and spike_samples(blanked).size == 0
    clean, _ = drawn_ecg()
    assert spike_samples(clean).size == 0


def test_qt_on_a_handful_of_ludb_training_records(ecg_root):
    """Train-split records only (the test split is reported once, in reports/ecg): the measurement runs end
    to end and agrees with the cardiologists about as well as on the whole split."""
    result = evaluate_qt(ecg_root / "ludb", "train", None, records=["2", "3", "7", "11", "13", "20", "24"])
    summary = result["ludb_non_paced"]
    assert summary["measured"] == 7 and summary["median_abs_error_ms"] <= 25
    assert summary["every_case_off_by_more_than_100ms_had_a_doubt"]
