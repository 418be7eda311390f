"""The ECG tab's own logic (cardiosynth.app.ecg_reading, no server): the quality row says what its class is and
never pairs it with a number of another method; the tab marks one cycle, the one the cine is generated from;
WFDB uploads: a lone header asks for its signal file by name, a LUDB record's full file set (annotations
included) is read. The tiny ECG -> cine pipeline (ecg_cine_fixture.py) stands in for the bundled one."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from ecg_cine_fixture import tiny_ecg_to_cine

from cardiosynth.app.ecg_cine_studio import EcgCineStudio
from cardiosynth.app.ecg_reading import EXAMPLE_DIR, analyse_example, analyse_upload
from cardiosynth.app.errors import user_message
from cardiosynth.ecg import EcgError

SINUS = "LUDB record 2: sinus rhythm (WFDB)"
PHILIPS = "Philips Sierra XML example"  # neurokit2 calls it Unacceptable; its mean averageQRS index is 0.43
ASSET_LUDB = EXAMPLE_DIR / "ludb"


@pytest.fixture(scope="module")
def ecg_studio():
    return EcgCineStudio(tiny_ecg_to_cine())


def _rows(markdown: str) -> dict[str, str]:
    """The summary table as {property: value}."""
    return dict(re.findall(r"^\| \*\*(.+?)\*\* \| (.*) \|$", markdown, flags=re.M))


def _refusal(files) -> str:
    with pytest.raises(EcgError) as raised:
        analyse_upload([str(f) for f in files])
    return user_message(raised.value, "reading the uploaded ECG")


# ------------------------------------------------------------------------------------------ quality
@pytest.mark.parametrize("label", [SINUS, PHILIPS])
def test_quality_is_the_class_with_its_method_and_no_score_of_another_method(label):
    result = analyse_example(label)
    report, quality = result.report(), _rows(result.summary_markdown())["Quality"]
    assert quality.startswith(f"{result.analysis.quality}: neurokit2 zhao2018 class of lead II")
    assert "Excellent / Barely acceptable / Unacceptable" in quality and "score" not in quality
    assert f"{report['averageqrs_mean']:.2f}" not in quality  # the averageQRS mean is not the class's score
    assert "quality_score" not in report and report["quality_method"].startswith("neurokit2 zhao2018")


# ------------------------------------------------------------------------------------------ one cycle
def test_the_tab_marks_one_cycle_the_one_the_cine_is_generated_from(ecg_studio):
    result = analyse_example(SINUS, ecg_studio.analyse)
    made = ecg_studio.generate(result.request, 0, 2, 2.0, 0.5, name=result.name)
    cine = made.cycle
    span = (cine["start_s"], cine["end_s"])
    fs = result.ecg.fs
    assert tuple(c / fs for c in result.analysis.cycle) != pytest.approx(span, abs=0.05)  # neurokit2's is another
    rows = _rows(result.summary_markdown())
    assert "Typical beat (neurokit2)" not in rows
    assert rows["Selected cycle"].startswith(f"{span[0]:.2f}\u2013{span[1]:.2f} s")
    assert "the cycle the cine below is generated from" in rows["Selected cycle"]
    report = result.report()
    assert report["cycle_s"] == [round(t, 3) for t in span] and report["cycle_chosen_by"].startswith("the ECG\u2192cine")
    figure = result.figure()
    assert [t.name for t in figure.data if "cycle" in (t.name or "") or "beat" in (t.name or "")] == ["selected cycle"]
    bands = {(s.x0, s.x1) for s in figure.layout.shapes if s.type == "rect"}
    assert bands == {span}
    assert f"the selected cycle shaded in the ECG above, {span[0]:.2f}\u2013{span[1]:.2f} s" in \
        ecg_studio.summary_markdown(made)


def test_two_sessions_ecgs_do_not_cross(ecg_studio):
    """Issue 40: session A's ECG analysed, then session B's, then both generate at once: each gets the cine and
    cycle of its own ECG, as alone (the pipeline used to keep the last ECG's encoding, shared by every user)."""
    labels = (SINUS, "LUDB record 88: atrial fibrillation (WFDB)")

    def generate(result):
        return ecg_studio.generate(result.request, 0, 2, 2.0, 0.5, name=result.name)

    alone = [generate(analyse_example(label, ecg_studio.analyse)) for label in labels]
    shown = [analyse_example(label, ecg_studio.analyse) for label in labels]
    with ThreadPoolExecutor(max_workers=2) as pool:
        made = list(pool.map(generate, shown))
    for result, cine, own in zip(shown, made, alone):
        assert cine.cine.frames.tobytes() == own.cine.frames.tobytes() and cine.cycle == own.cycle
        assert (cine.cycle["start_s"], cine.cycle["end_s"]) == result.cycle_seconds() and cine.ecg is result.ecg
    assert made[0].cycle != made[1].cycle


def test_an_ecg_the_model_finds_no_heartbeat_in_shows_no_cycle(ecg_studio):
    def nothing_found(ecg):  # the model's analysis, as if its phase showed no complete heartbeat
        request = ecg_studio.analyse(ecg)
        return dataclasses.replace(request, encoded=dataclasses.replace(request.encoded, cycles=[], chosen=None))

    result = analyse_example(SINUS, nothing_found)
    assert _rows(result.summary_markdown())["Selected cycle"].startswith("none: the ECG\u2192cine model found no")
    assert result.report()["cycle_s"] is None
    figure = result.figure()
    assert not [s for s in figure.layout.shapes if s.type == "rect"]
    assert "selected cycle" not in {t.name for t in figure.data}


def test_without_a_model_the_band_is_neurokit2s_typical_beat_not_a_selected_cycle():
    result = analyse_example(SINUS)
    start, end = (c / result.ecg.fs for c in result.analysis.cycle)
    rows = _rows(result.summary_markdown())
    assert "Selected cycle" not in rows and rows["Typical beat (neurokit2)"].startswith(f"{start:.2f}\u2013{end:.2f} s")
    assert "selected cycle" not in {t.name for t in result.figure().data}
    assert "typical beat (neurokit2)" in {t.name for t in result.figure().data}
    assert result.report()["cycle_chosen_by"].startswith("neurokit2")


# ------------------------------------------------------------------------------------------ WFDB uploads
def test_a_lone_header_upload_asks_for_its_signal_file_without_a_server_path(tmp_path):
    upload = tmp_path / "gradio" / "4f0c2d" / "2.hea"  # Gradio keeps each upload in a folder of its own
    upload.parent.mkdir(parents=True)
    upload.write_bytes((ASSET_LUDB / "2.hea").read_bytes())
    annotations = tmp_path / "gradio" / "9b71aa" / "2.ii"
    annotations.parent.mkdir(parents=True)
    annotations.write_bytes((ASSET_LUDB / "2.ii").read_bytes())
    for files in ([upload], [upload, annotations]):
        message = _refusal(files)
        assert message.startswith("This is a WFDB header (2.hea); upload its signal file (2.dat) together with it")
        assert str(tmp_path) not in message and tempfile.gettempdir() not in message and "damaged" not in message


def test_a_ludb_record_with_its_annotation_files_is_read(tmp_path):
    files = sorted(ASSET_LUDB.glob("2.*"))
    assert {f.suffix for f in files} == {".hea", ".dat", ".ii"}  # the bundled copy keeps lead ii's annotations
    result = analyse_upload([str(f) for f in files])
    alone = analyse_upload([str(ASSET_LUDB / "2.hea"), str(ASSET_LUDB / "2.dat")])
    assert result.report()["n_beats"] == alone.report()["n_beats"] >= 9
    assert result.name == "2.hea + 2.dat (1 annotation file not used)"


def test_a_full_ludb_record_set_from_the_shared_data_is_read(ecg_root):
    files = sorted((ecg_root / "ludb").glob("100.*"))
    assert len(files) == 14  # header, signal and one annotation file per lead
    result = analyse_upload([str(f) for f in files])
    assert result.report()["format"] == "wfdb" and result.report()["n_beats"] >= 9
    assert result.name == "100.hea + 100.dat (12 annotation files not used)"


def test_files_of_another_record_or_without_a_header_are_refused_by_name():
    assert _refusal([ASSET_LUDB / "2.hea", ASSET_LUDB / "2.dat", ASSET_LUDB / "88.ii"]).startswith(
        "88.ii is not part of the WFDB record 2: upload one record at a time")
    assert _refusal([ASSET_LUDB / "2.dat", ASSET_LUDB / "2.ii"]).startswith(
        "These look like the files of a WFDB record without its header: upload the record's .hea")
    assert _refusal([EXAMPLE_DIR / "Example_aECG.xml", EXAMPLE_DIR / "waveform_ecg.dcm"]).startswith(
        "Upload one ECG file at a time.")
