"""Processing: R-peaks, heart rate, QT, the cardiac phase phi(t), the selected cycle, graceful degradation,
the plot and the CLI. A handful of LUDB records are scored here; the full evaluation is a command
(``python -m evaluation.ecg_evaluate``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_ecg import LEADS, synthetic_ecg

from cardiosynth.ecg import N_SAMPLES, read_ecg
from cardiosynth.ecg.__main__ import main as cli_main
from cardiosynth.ecg.phase import cardiac_phase
from cardiosynth.ecg.plot import plot_ecg
from cardiosynth.ecg.process import process_ecg
from cardiosynth.paths import REPO_ROOT
from evaluation.ecg_evaluate import evaluate, score_record

ASSET_LUDB = REPO_ROOT / "assets" / "ecg" / "ludb"


@pytest.fixture(scope="module")
def sinus():
    ecg = read_ecg(synthetic_ecg(500, heart_rate=72.0), fs=500)
    return ecg, process_ecg(ecg)


def _check_phase(result, n=N_SAMPLES):
    r, phase, valid = result.r_peaks, result.phase, result.phase_valid
    assert phase.shape == (n,) and valid.shape == (n,)
    assert np.all((phase >= 0) & (phase < 2 * np.pi))
    for a, b in zip(r[:-1], r[1:]):
        cycle = phase[a:b]
        assert cycle[0] == 0.0
        assert np.all(np.diff(cycle) > 0), "phase must rise monotonically within a cycle"
        assert cycle[-1] < 2 * np.pi and cycle[-1] > 2 * np.pi * (1 - 1.5 / (b - a))
    assert valid[r[0]:r[-1]].all() and not valid[:r[0]].any() and not valid[r[-1]:].any()


def test_sinus_heart_rate_qt_phase_and_cycle(sinus):
    ecg, result = sinus
    assert abs(result.heart_rate_bpm - 72) < 2
    assert result.r_peak_lead == "II" and not result.warnings
    assert 0.25 < result.qt_s < 0.5 and 0.3 < result.qt_rr < 0.7
    _check_phase(result)
    start, end = result.cycle
    k = list(result.r_peaks).index(start)
    assert result.r_peaks[k + 1] == end  # one complete R-R cycle
    assert abs((end - start) / ecg.fs - result.rr_median_s) < 0.05


@pytest.mark.parametrize("bpm", [45, 120])
def test_heart_rates(bpm):
    result = process_ecg(read_ecg(synthetic_ecg(500, heart_rate=float(bpm)), fs=500))
    assert abs(result.heart_rate_bpm - bpm) < 3
    _check_phase(result)


def test_phase_extrapolation_and_function():
    phase, valid = cardiac_phase(np.array([100, 600, 1100]), 1500)
    assert phase[100] == 0 and phase[600] == 0 and abs(phase[350] - np.pi) < 1e-12
    assert abs(phase[0] - (2 * np.pi - 2 * np.pi * 100 / 500)) < 1e-9  # extrapolated with the first RR
    assert valid.sum() == 1000
    empty, none_valid = cardiac_phase(np.array([10]), 100)
    assert np.isnan(empty).all() and not none_valid.any()


def test_deterministic(sinus):
    ecg, result = sinus
    again = process_ecg(ecg)
    assert np.array_equal(again.r_peaks, result.r_peaks) and again.cycle == result.cycle
    assert np.array_equal(again.phase, result.phase)


def test_flat_chest_leads_do_not_crash():
    x = np.array(synthetic_ecg())
    x[6:] = 0.0
    ecg = read_ecg(x, fs=500)
    result = process_ecg(ecg)
    assert ecg.metadata["flat_leads"] == LEADS[6:]
    assert abs(result.heart_rate_bpm - 72) < 2 and result.lead_agreement["V3"] is None


def test_lead_ii_missing_falls_back_to_other_lead():
    x = np.array(synthetic_ecg())
    x[1] = 0.0
    result = process_ecg(read_ecg(x, fs=500))
    assert result.r_peak_lead != "II" and abs(result.heart_rate_bpm - 72) < 2
    assert any("Lead II" in w for w in result.warnings)


@pytest.mark.parametrize("kind", ["noise", "slow wave"])
def test_no_beats_degrades_gracefully(kind):
    rng = np.random.default_rng(1)
    t = np.arange(5000) / 500
    x = rng.normal(size=(12, 5000)) if kind == "noise" else np.tile(np.sin(2 * np.pi * 0.2 * t), (12, 1))
    result = process_ecg(read_ecg(x, fs=500))
    assert result.heart_rate_bpm is None and result.cycle is None and result.qt_s is None
    assert result.warnings and "No regular heartbeats" in result.warnings[0]
    assert result.phase.shape == (N_SAMPLES,) and not result.phase_valid.any()
    plot_ecg(read_ecg(x, fs=500), result)  # the figure still works


def test_padded_short_recording():
    ecg = read_ecg(synthetic_ecg()[:, :3000], fs=500)
    result = process_ecg(ecg)
    assert result.r_peaks.max() < 3000 and result.cycle[1] <= 3000
    assert not result.phase_valid[3000:].any()


def test_ludb_assets_af_paced_and_uncalibrated():
    sinus = read_ecg(ASSET_LUDB / "2.hea")
    assert not sinus.calibrated
    af = process_ecg(read_ecg(ASSET_LUDB / "88.hea"))
    assert any("irregular" in w for w in af.warnings)
    _check_phase(af)
    paced = process_ecg(read_ecg(ASSET_LUDB / "34.hea"))
    assert paced.pacing_suspected and any("pacemaker" in w for w in paced.warnings)
    assert paced.heart_rate_bpm is not None


def test_score_shipped_ludb_records():
    rows = [score_record(ASSET_LUDB, name) for name in ("2", "88", "34")]
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    assert tp / (tp + fn) >= 0.95 and tp / (tp + fp) >= 0.95


def test_score_a_handful_of_real_ludb_records(ecg_root):
    result = evaluate(ecg_root / "ludb", ["3", "11", "50", "100", "150", "200", "90"])
    assert result["non_paced"]["sensitivity"] >= 0.98 and result["non_paced"]["precision"] >= 0.98
    assert result["paced"]["records"] == 1


def test_plot_all_leads_subset_and_json(sinus):
    ecg, result = sinus
    fig = plot_ecg(ecg, result)
    names = [trace.name for trace in fig.data]
    assert names.count("R peak") == 12 and "phase φ(t)" in names and "selected cycle" in names
    assert any(shape.type == "rect" for shape in fig.layout.shapes)
    json.loads(fig.to_json())
    small = plot_ecg(ecg, result, leads=["II", "v1"], show_phase=False)
    assert sum(trace.name in ("II", "V1") for trace in small.data) == 2
    with pytest.raises(ValueError):
        plot_ecg(ecg, result, leads=["X"])


def test_cli_prints_and_writes_figure(tmp_path, capsys):
    out = tmp_path / "fig.html"
    assert cli_main([str(REPO_ROOT / "assets" / "ecg" / "Example_aECG.xml"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ("Format:", "Leads:", "Rate:", "Duration:", "Heart rate:", "Quality:", "QT / RR:"):
        assert label in text
    assert "hl7_aecg" in text and out.stat().st_size > 10_000


def test_cli_figure_goes_into_the_out_folder_and_works_offline(tmp_path, monkeypatch):
    """``--out`` naming a folder (new or existing) puts the figure inside it, never in the current folder;
    the HTML carries plotly.js itself (no CDN: hospital workstations are often offline)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "figures" / "new"
    assert cli_main([str(REPO_ROOT / "assets" / "ecg" / "Example_aECG.xml"), "--out", str(out)]) == 0
    figure = out / "Example_aECG.xml.ecg.html"
    html = figure.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["figures"] and list(out.iterdir()) == [figure]
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000


def test_cli_headerless_table_needs_lead_order_and_rate(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text("\n".join(",".join(f"{v:.4f}" for v in row) for row in synthetic_ecg(500).T))
    assert cli_main([str(path), "--no-figure"]) == 2
    assert "--lead-order" in capsys.readouterr().err
    order = ",".join(LEADS)
    assert cli_main([str(path), "--no-figure", "--json", "--fs", "500", "--lead-order", order]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["leads"] == list(LEADS) and abs(report["heart_rate_bpm"] - 72) < 3


def test_cli_headerless_device_table_with_empty_leads_and_units(tmp_path, capsys):
    """A device's table without a header row and V1-V6 empty, in uV: the error hints the options; with them
    (``--units`` included) it reads, and says the empty leads are missing."""
    path = tmp_path / "device.csv"
    rows = (",".join([f"{1000 * v:.1f}" for v in row[:6]] + [""] * 6) for row in synthetic_ecg(800).T)
    path.write_text("\n".join(rows))
    assert cli_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "--lead-order" in err and "--fs" in err
    order = ",".join(LEADS)
    assert cli_main([str(path), "--json", "--fs", "800", "--lead-order", order, "--units", "uV"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["amplitudes"] == "mV" and report["flat_leads"] == LEADS[6:] and "figure" not in report
    assert any("hold no values" in w for w in report["warnings"]) and abs(report["heart_rate_bpm"] - 72) < 3
    assert not any("units are not stated" in w for w in report["warnings"])
    with pytest.raises(SystemExit):
        cli_main([str(path), "--fs", "800", "--lead-order", order, "--units", "furlongs"])


def test_cli_writes_no_file_unless_out_is_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main([str(REPO_ROOT / "assets" / "ecg" / "Example_aECG.xml")]) == 0
    assert list(tmp_path.iterdir()) == [] and "Figure:" not in capsys.readouterr().out


def test_cli_json(tmp_path, capsys):
    path = REPO_ROOT / "assets" / "ecg" / "waveform_ecg.dcm"
    assert cli_main([str(path), "--json", "--no-figure"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "dicom" and report["original_rate_hz"] == 1000
    assert 40 < report["heart_rate_bpm"] < 100 and "figure" not in report
