"""The app's endpoints through gradio_client, against a server started in this process (bundled weights and
example ECGs only; no ../shared needed). Errors must come back as one readable message, never a crash."""

from __future__ import annotations

from pathlib import Path

import gradio_client
import numpy as np
import pytest
from request_counting import count_parsing, settled

from cardiosynth import phenotypes as ph
from cardiosynth.app import build_app
from cardiosynth.app.cine_studio import CineStudio
from cardiosynth.app.ecg_reading import EXAMPLE_DIR
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
from evaluation.app_bench import serve_in_process

N = len(ph.NAMES)
SINUS = "LUDB record 2: sinus rhythm (WFDB)"


@pytest.fixture(scope="module")
def explorer():
    return PhenotypeExplorer()


@pytest.fixture(scope="module")
def studio():
    return CineStudio()


@pytest.fixture(scope="module")
def client(explorer, studio):
    demo = build_app(explorer, studio)
    with serve_in_process(demo) as url:
        yield gradio_client.Client(url, verbose=False, download_files=False)


def phenotypes(result) -> dict[str, float]:
    return dict(zip(ph.NAMES, result[:N]))


def assert_consistent(v: dict[str, float]) -> None:
    for side in ("LV", "RV"):
        edv, esv, sv, ef = (v[f"{side}{k}"] for k in ("EDV", "ESV", "SV", "EF"))
        assert 0 < esv < edv
        assert sv == pytest.approx(edv - esv, abs=0.011)
        assert ef == pytest.approx(100 * sv / edv, abs=0.011)
    assert not ph.out_of_range(v)


def test_sample_is_consistent_reproducible_and_moves_the_seed(client):
    first = client.predict(1.0, 3, api_name="/sample")
    details, message, next_seed = first[N + 1], first[N + 2], first[N + 3]
    values = phenotypes(first)
    assert_consistent(values)
    assert details["phenotypes"] == values
    assert details["plausibility"]["status"] in {"green", "amber", "red"}
    assert 0 <= details["plausibility"]["percentile"] <= 100
    assert 'data-status="' in first[N] and message == ""
    assert next_seed == 4
    assert phenotypes(client.predict(1.0, 3, api_name="/sample")) == values  # same seed, same heart
    assert phenotypes(client.predict(1.0, 4, api_name="/sample")) != values
    mean_heart = phenotypes(client.predict(0.0, 0, api_name="/sample"))
    assert mean_heart == phenotypes(client.predict(0.0, 99, api_name="/sample"))  # T = 0: the mean heart


def test_complete_honours_locks(client, explorer):
    start = dict(explorer.start, LVEDV=200.0, LVEF=35.0)  # LVEF here contradicts the volumes until completed
    locks = [n in ("LVEDV", "LVEF") for n in ph.NAMES]
    result = client.predict(*[start[n] for n in ph.NAMES], *locks, False, 1.0, 0, api_name="/complete")
    values = phenotypes(result)
    assert result[N + 2] == ""
    assert values["LVEDV"] == 200.0
    assert values["LVEF"] == pytest.approx(35.0, abs=0.01)
    assert values["LVESV"] == pytest.approx(130.0, abs=0.01)
    assert_consistent(values)
    # a random completion honours the same locks, and differs with the seed
    draws = [phenotypes(client.predict(*[start[n] for n in ph.NAMES], *locks, True, 1.0, s, api_name="/complete"))
             for s in (1, 2)]
    for d in draws:
        assert d["LVEDV"] == 200.0 and d["LVEF"] == pytest.approx(35.0, abs=0.01)
        assert_consistent(d)
    assert draws[0]["LVM"] != draws[1]["LVM"]


def test_complete_problems_are_messages(client, explorer):
    values = [explorer.start[n] for n in ph.NAMES]
    nothing = client.predict(*values, *[False] * N, False, 1.0, 0, api_name="/complete")
    assert "Nothing is locked" in nothing[N + 1]["error"] and "cs-error" in nothing[N + 2]
    # locked LVEDV + LVESV + an LVEF that contradicts them
    bad = dict(explorer.start, LVEDV=150.0, LVESV=60.0, LVEF=30.0)
    locks = [n in ("LVEDV", "LVESV", "LVEF") for n in ph.NAMES]
    result = client.predict(*[bad[n] for n in ph.NAMES], *locks, False, 1.0, 0, api_name="/complete")
    assert "disagree" in result[N + 1]["error"] and "Traceback" not in result[N + 2]


def test_plausibility_scores_and_recomputes_derived(client, explorer):
    start = client.predict(*[explorer.start[n] for n in ph.NAMES], api_name="/plausibility")
    assert start[N + 1]["plausibility"]["status"] == "green"
    assert_consistent(phenotypes(start))
    # a big LV with a tiny mass: derived values follow the volumes, the status says why it is unusual
    edited = dict(explorer.start, LVEDV=300.0, LVESV=80.0, LVM=40.0, RVEDV=40.0, RVESV=20.0)
    result = client.predict(*[edited[n] for n in ph.NAMES], api_name="/plausibility")
    values, details = phenotypes(result), result[N + 1]
    assert values["LVSV"] == 220.0 and values["LVEF"] == pytest.approx(73.33, abs=0.01)
    assert values["RVSV"] == 20.0 and values["RVEF"] == 50.0
    assert details["plausibility"]["status"] == "red" and details["plausibility"]["reasons"]
    assert 'data-status="red"' in result[N]


def test_impossible_edit_is_a_message_and_the_sliders_go_back_to_the_set_in_use(client, explorer):
    in_use = phenotypes(client.predict(api_name="/reset"))
    edited = dict(explorer.start, LVESV=300.0)  # ESV > EDV
    result = client.predict(*[edited[n] for n in ph.NAMES], api_name="/plausibility")
    assert "below LVEDV" in result[N + 1]["error"] and "lower LVESV or raise LVEDV" in result[N + 1]["error"]
    assert "cs-error" in result[N + 2] and "set in use again" in result[N + 2]
    assert phenotypes(result) == in_use  # no slider keeps a value the app is not using


def test_an_out_of_range_derived_value_is_refused_with_what_to_change(client, explorer):
    client.predict(api_name="/reset")
    edited = dict(explorer.start, LVEDV=380.0, LVESV=60.0)  # LVSV = 320 mL, above its plausible range
    result = client.predict(*[edited[n] for n in ph.NAMES], api_name="/plausibility")
    assert "LVSV = 320 mL is outside" in result[N + 1]["error"]
    assert "to fix: LVSV = LVEDV \u2212 LVESV: raise LVESV or lower LVEDV" in result[N + 1]["error"]


@pytest.mark.parametrize("endpoint", ["/plausibility", "/set_LVEDV"])
def test_a_value_typed_beyond_its_slider_is_named_with_the_range_and_nothing_moves(client, explorer, endpoint):
    """Gradio's own check would answer with a bare toast and the page would then send the slider's end: the app
    names the value typed, the range it accepts and the value still in use, and leaves every slider alone (the
    user may be half-way through typing; nothing is derived from the refused value)."""
    in_use = phenotypes(client.predict(api_name="/reset"))
    typed = dict(in_use, LVEDV=700.0)
    extra = ["EF", *([False] * len(ph.NAMES))] if endpoint == "/set_LVEDV" else []
    result = client.predict(*[typed[n] for n in ph.NAMES], *extra, api_name=endpoint)
    error = result[N + 1]["error"]
    assert "LVEDV 700 mL is outside the range this app accepts for it, 20 to 600 mL" in error
    assert f"so the app still uses LVEDV {in_use['LVEDV']:g} mL" in error
    assert error.count(". ") == 0  # one sentence
    assert all(value == {"__type__": "update"} for value in result[:N])  # no slider moved


def _move_lvedv(client, explorer, keep: str, locked: tuple[str, ...] = ()):
    start = phenotypes(client.predict(api_name="/reset"))
    moved = dict(start, LVEDV=start["LVEDV"] + 40.0)
    result = client.predict(*[moved[n] for n in ph.NAMES], keep, *[n in locked for n in ph.NAMES],
                            api_name="/set_LVEDV")
    return start, phenotypes(result), result


def test_moving_an_edv_keeps_its_ef_unless_esv_is_chosen_or_locked(client, explorer):
    start, values, result = _move_lvedv(client, explorer, "EF")
    assert values["LVEDV"] == start["LVEDV"] + 40.0 and values["LVEF"] == pytest.approx(start["LVEF"], abs=0.01)
    assert values["LVESV"] > start["LVESV"] and "LVEF held" in result[N + 1]["note"]
    assert_consistent(values)
    start, values, _ = _move_lvedv(client, explorer, "ESV")
    assert values["LVESV"] == start["LVESV"] and values["LVEF"] > start["LVEF"]
    start, values, _ = _move_lvedv(client, explorer, "EF", locked=("LVESV",))  # the lock decides
    assert values["LVESV"] == start["LVESV"]
    start, values, _ = _move_lvedv(client, explorer, "ESV", locked=("LVEF",))
    assert values["LVEF"] == pytest.approx(start["LVEF"], abs=0.01)
    start, values, result = _move_lvedv(client, explorer, "EF", locked=("LVEF", "LVESV"))
    assert "untick one of the two locks" in result[N + 1]["error"] and values == start


def test_editing_ef_moves_esv(client, explorer):
    edited = dict(explorer.start, LVEF=40.0)
    values = phenotypes(client.predict(*[edited[n] for n in ph.NAMES], api_name="/set_LVEF"))
    assert values["LVEDV"] == explorer.start["LVEDV"]
    assert values["LVESV"] == pytest.approx(0.6 * explorer.start["LVEDV"], abs=0.006)
    assert values["LVEF"] == pytest.approx(40.0, abs=0.01)
    assert_consistent(values)


def test_reset_returns_the_healthy_start(client, explorer):
    result = client.predict(api_name="/reset")
    assert phenotypes(result) == explorer.start
    assert explorer.start["LVEF"] == pytest.approx(62.0, abs=0.01) and result[N + 1]["plausibility"]["status"] == "green"


def test_population_plot_is_redrawn_for_the_shown_set(explorer):
    import json

    sampled = explorer.sample(1.0, 5)
    figure = json.loads(explorer.figure_json(sampled.values, sampled.plausibility.status))
    lines = [t for t in figure["data"] if t.get("name") == "this heart"]
    assert [t["x"][0] for t in lines] == [sampled.values[n] for n in ph.NAMES]
    assert [t["xaxis"] for t in lines] == ["x"] + [f"x{k}" for k in range(2, N + 1)]


def test_ecg_example(client):
    figure, summary, details, message = client.predict(SINUS, api_name="/ecg_example")
    assert message == ""
    assert figure is not None and figure.get("type") == "plotly"
    assert details["format"] == "wfdb" and len(details["leads"]) == 12
    assert 55 < details["heart_rate_bpm"] < 75 and details["n_beats"] >= 9
    assert details["cycle_s"] is not None and details["qt_rr"] is not None
    for row in ("Format", "Leads", "Sampling rate", "Duration", "Heart rate", "Quality", "QT / RR", "Warnings"):
        assert f"**{row}**" in summary
    assert "not calibrated" in summary  # LUDB amplitudes are normalised


def test_ecg_upload_single_file_and_wfdb_pair(client):
    handle = gradio_client.handle_file
    example = [handle(str(EXAMPLE_DIR / "Example_aECG.xml"))]
    _, _, details, message = client.predict(example, None, "", api_name="/ecg")
    assert message == "" and details["format"] == "hl7_aecg"
    pair = [handle(str(EXAMPLE_DIR / "ludb" / f"2.{ext}")) for ext in ("hea", "dat")]
    _, _, details, message = client.predict(pair, None, "", api_name="/ecg")
    assert message == "" and details["format"] == "wfdb" and details["n_beats"] >= 9


def test_ecg_table_without_header_is_read_with_the_lead_order_fields(client, tmp_path: Path):
    """A table of bare numbers: refused with a message naming the fields, then read once they are filled."""
    from fixtures_ecg import LEADS, synthetic_ecg

    table = tmp_path / "export.csv"
    table.write_text("\n".join(",".join(f"{v:.4f}" for v in row) for row in synthetic_ecg(500).T))
    upload = [gradio_client.handle_file(str(table))]
    _, _, details, message = client.predict(upload, None, "", api_name="/ecg")
    assert "cs-error" in message and "Lead order" in details["error"] and "Sampling rate (Hz)" in details["error"]
    _, _, details, message = client.predict(upload, 500, " ".join(LEADS).replace(" ", ", "), api_name="/ecg_reread")
    assert message == "" and details["leads"] == list(LEADS) and 65 < details["heart_rate_bpm"] < 80


def test_unusable_uploads_give_one_readable_message(client, tmp_path: Path):
    garbage = tmp_path / "scan.xml"
    garbage.write_bytes(b"\x00\x01 this is not an ECG " * 50)
    figure, summary, details, message = client.predict([gradio_client.handle_file(str(garbage))], None, "",
                                                       api_name="/ecg")
    assert figure is None and summary == ""
    assert "not a recognised ECG format" in details["error"] and "SCP-ECG" in details["error"]
    assert "cs-error" in message and "Traceback" not in message
    header_only = client.predict([gradio_client.handle_file(str(EXAMPLE_DIR / "ludb" / "2.hea"))], None, "",
                                api_name="/ecg")
    assert header_only[2]["error"].startswith("This is a WFDB header (2.hea); upload its signal file (2.dat)")
    assert "/tmp" not in header_only[3] and "damaged" not in header_only[3]  # no server path, not "damaged"


def test_unexpected_errors_become_one_sentence(client, explorer, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail that must not reach the page")

    monkeypatch.setattr(explorer, "sample", broken)
    with caplog.at_level("ERROR", logger="cardiosynth.app"):
        result = client.predict(1.0, 0, api_name="/sample")
    error = result[N + 1]["error"]
    assert "went wrong inside CardioSynth" in error and "RuntimeError" in error
    assert "internal detail" not in error and "internal detail" not in result[N + 2]
    assert "internal detail" in caplog.text  # the traceback goes to the server log


def _local_file(value) -> Path:
    """gradio_client (download_files=False) returns the server's file path; the server is this process."""
    path = Path(value["path"] if isinstance(value, dict) else value)
    assert path.is_file(), value
    return path


def test_generate_shows_the_cine_beside_its_values_and_keeps_the_previous(client, explorer, studio):
    import imageio.v3 as iio

    assert studio.available, studio.unavailable_reason
    values = [explorer.start[n] for n in ph.NAMES]
    now, previous, table, message = client.predict(*values, 3, 8, 3.0, 0.5, api_name="/generate")
    assert message == "" and previous is None
    frames = iio.imread(_local_file(now), index=None)
    assert frames.shape[0] == 16 and frames.shape[1] == frames.shape[2] >= 64  # 16 frames, square, upscaled
    assert frames.std() > 5  # an image, not a blank
    assert f"| LVEDV (mL) | {explorer.start['LVEDV']:.1f} |" in table and "| seed | 3 |" in table
    assert "read back" in table  # the measurement module is bundled
    # same seed and values again: the same cine; the first one is now "previous"
    again, before, table2, _ = client.predict(*values, 3, 8, 3.0, 0.5, api_name="/generate")
    assert _local_file(before).read_bytes() == _local_file(now).read_bytes()
    assert _local_file(again).read_bytes() == _local_file(now).read_bytes()
    assert "previous | change" in table2
    # a bigger LV with the same seed: a different cine, and the change is listed
    bigger = dict(zip(ph.NAMES, values))
    bigger["LVEDV"] += 60
    changed, _, table3, _ = client.predict(*[bigger[n] for n in ph.NAMES], 3, 8, 3.0, 0.5, api_name="/generate")
    assert _local_file(changed).read_bytes() != _local_file(now).read_bytes()
    assert "+60.0" in table3


def test_generate_downloads_and_frame_figure(studio, explorer):
    import nibabel as nib
    import pydicom

    result = studio.generate(explorer.start, 1, 8, 3.0, 0.3)
    files = [Path(f) for f in studio.downloads(result)]
    assert [f.name.split(".", 1)[1] for f in files] == ["mp4", "gif", "nii.gz", "dcm", "json", "csv"]
    assert all(f.stat().st_size > 0 for f in files)
    assert nib.load(files[2]).shape == (64, 64, 1, 16)
    import json

    dicom = pydicom.dcmread(files[3])
    assert dicom.pixel_array.shape == (16, 64, 64) and dicom.SyntheticData == "YES" and not str(dicom.PatientName)
    assert json.loads(dicom.ImageComments)["seed"] == 1
    conditions = json.loads(files[4].read_text())
    assert conditions["seed"] == 1 and conditions["slice_position"] == 0.3 and conditions["model"].startswith("synthetic:cpgg")
    # provenance: the exemplar the cine's pixels come from, in every file and on the page
    exemplar = conditions["exemplar"]
    assert exemplar.startswith("patient") and exemplar in str(dicom.DerivationDescription)
    assert json.loads(dicom.ImageComments)["exemplar"] == exemplar
    assert exemplar in nib.load(files[2]).header["descrip"].item().decode()
    assert "Made of real pixels" in studio.values_markdown(result, None) and exemplar in studio.values_markdown(result, None)
    figure = studio.figure(result, studio.generate(explorer.start, 2, 8, 3.0, 0.3))
    images = [t for t in figure.data if t.type == "image"]
    assert len(images) == 32 and sum(t.opacity == 1 for t in images) == 2  # frame 0 of both cines
    steps = figure.layout.sliders[0].steps
    assert len(steps) == 16 and all(step.method == "update" for step in steps)
    data, layout, traces = steps[5].args  # frame 5: one opaque frame per cine, the cursor on frame 5
    assert [traces[i] for i, o in enumerate(data["opacity"]) if o == 1] == [5, 21] and layout["shapes"][0]["x0"] == 5
    assert figure.layout.meta["cs_frame_ms"] == pytest.approx(1000 / 16, abs=0.1)  # Play: one 1-s beat
    assert {t.name for t in figure.data if t.type == "scatter"} == {"LV now", "RV now", "LV previous", "RV previous"}


def test_generation_reports_its_real_stages_and_the_cine_does_not_depend_on_listening(studio, explorer):
    heard = []
    result = studio.generate(explorer.start, 4, 6, 3.0, 0.5, progress=lambda stage, f: heard.append((stage, f)))
    stages = [stage for stage, _ in heard]
    assert stages == ["Choosing real exemplars and deforming their anatomy",
                      "Rendering the frames from the exemplars' real pixels", "Frames rendered",
                      "Measuring the LV and RV areas frame by frame"]
    fractions = [f for _, f in heard]
    assert fractions == sorted(fractions) and 0 < fractions[0] < 0.2 and fractions[-1] < 1
    assert np.array_equal(result.cine.frames, studio.generate(explorer.start, 4, 6, 3.0, 0.5).cine.frames)


@pytest.mark.parametrize("settings, message", [
    ((0, 0, 3.0, 0.5), "Decoding steps must be a whole number between 1 and"),
    ((0, 8, 50.0, 0.5), "Guidance scale must be between 1 and 10"),
    ((-4, 8, 3.0, 0.5), "Seed must be a whole number between 0 and 2147483647"),
    ((0, 8, 3.0, 1.5), "Slice position must be between 0 and 1"),
    ((1.5, 8, 3.0, 0.5), "Seed must be a whole number"),
])
def test_generate_bad_settings_are_readable_errors(studio, explorer, settings, message):
    with pytest.raises(ValueError, match=message):
        studio.generate(explorer.start, *settings)


def test_generate_impossible_phenotypes_or_bounds_are_messages(client, explorer):
    values = {**explorer.start, "LVESV": explorer.start["LVEDV"] + 50}
    result = client.predict(*[values[n] for n in ph.NAMES], 0, 8, 3.0, 0.5, api_name="/generate")
    assert "cs-error" in result[3] and "cannot all hold" in result[3] and "Traceback" not in result[3]
    # an out-of-bounds setting reaches the app as typed and is answered in the panel, naming it and its range
    result = client.predict(*[explorer.start[n] for n in ph.NAMES], 0, 0, 3.0, 0.5, api_name="/generate")
    assert "cs-error" in result[3] and "Decoding steps must be a whole number between 1 and" in result[3] and "got 0" in result[3]
    assert result[0] is None and result[2] == ""  # no earlier cine or table under the error


def test_read_back_that_cannot_be_measured_says_so_instead_of_a_number(explorer, tmp_path):
    """Issue 24 (3): at the apex the segmenter may find no LV in some frame; the table must not read
    "LVEF -28 %" but "not measurable on this slice", the same wording for every value, with the reason."""
    import json

    import numpy as np
    import pandas as pd

    from cardiosynth.app.cine_studio import CineResult
    from cardiosynth.cine import Cine
    from cardiosynth.measure.curves import NOT_MEASURABLE, measure_labels

    labels = np.zeros((8, 16, 16), np.uint8)
    labels[:, 4:12, 4:12] = 2
    labels[[0, 1, 2, 5, 6, 7], 6:10, 6:10] = 3  # the LV cavity is lost in frames 3 and 4

    class ApexMeasurer:
        def measure(self, cines):
            curve = measure_labels(labels, cines[0].spacing_mm)
            row = {**curve.as_row(), "est_LVEDV": 35.0, "est_LVEF": -28.0, "est_RVEDV": 60.0}
            return pd.DataFrame([row]), [curve]

    class MidMeasurer:
        def measure(self, cines):
            healthy = labels.copy()
            healthy[3:5, 7:9, 7:9] = 3
            curve = measure_labels(healthy, cines[0].spacing_mm)
            return pd.DataFrame([{**curve.as_row(), "est_LVEDV": 120.0, "est_LVEF": 58.0, "est_RVEDV": 130.0}]), [curve]

    cine = Cine(np.zeros((8, 16, 16), np.float32), (2.2, 2.2), 0.95, source="synthetic:test@0")
    conditions = {**explorer.start, "slice_position": 0.95, "seed": 0, "steps": 8, "cfg": 3.0, "model": cine.source}
    studio = CineStudio(load=False)
    studio.folder = tmp_path
    studio.measurer = ApexMeasurer()
    apex = CineResult(cine, conditions, studio.measure(cine), {"stem": "apex"})
    assert apex.measured["est_LVEF"] is None and apex.measured["est_LVEDV"] is None
    assert "no LV in frames 3, 4" in apex.measured["not_measurable"]["est_LVEF"]
    table = studio.values_markdown(apex, None)
    assert f"| **read back** LVEF (%) | *{NOT_MEASURABLE}* |" in table
    assert f"| **read back** LVEDV (mL) | *{NOT_MEASURABLE}* |" in table
    assert "-28" not in table and "the segmenter finds no LV in frames 3, 4" in table
    saved = json.loads(Path(studio.file(apex, "json")).read_text())
    assert saved["measured"]["est_LVEF"] is None and "est_LVEF" in saved["measured"]["not_measurable"]
    # beside a readable previous result: the number there, the message here, and no "change"
    studio.measurer = MidMeasurer()
    mid = CineResult(cine, {**conditions, "slice_position": 0.5}, studio.measure(cine), {"stem": "mid"})
    assert mid.measured["not_measurable"] == {} and mid.measured["est_LVEF"] == 58.0
    both = studio.values_markdown(apex, mid)
    assert f"| **read back** LVEF (%) | *{NOT_MEASURABLE}* | 58.0 |  |" in both
    assert f"| **read back** LVEF (%) | 58.0 | *{NOT_MEASURABLE}* |  |" in studio.values_markdown(mid, apex)


def test_generator_warnings_and_plausibility_are_shown_beside_the_cine(client, explorer, studio):
    """A set more than 3 SD from the generator's training data (and implausible) says so in the panel; a
    plausible one has no note."""
    assert studio.available, studio.unavailable_reason
    start = [explorer.start[n] for n in ph.NAMES]
    _, _, table, message = client.predict(*start, 0, 2, 3.0, 0.5, api_name="/generate")
    assert message == "" and "cs-warning" not in table and "SD from the training data" not in table
    far = {**explorer.start, "LVM": 400.0}  # (400 - 144) / 54 = 4.7 SD from the MAR's training mean
    assert explorer.score(far).plausibility.status != "green"
    _, _, table, message = client.predict(*[far[n] for n in ph.NAMES], 0, 2, 3.0, 0.5, api_name="/generate")
    assert message == "" and "cs-warning" in table
    assert "more than 3 SD from the training data" in table and "may not show these values" in table
    assert "phenotype set (plausibility" in table
    assert table.index("cs-warning") < table.index("| LVEDV (mL)")  # above the values, beside the cine


def test_about_says_what_is_stored_where_and_how_to_delete_it(tmp_path):
    from cardiosynth.app import about
    from cardiosynth.review import ReviewService

    assert "stores nothing else" not in about.ABOUT
    svc = ReviewService(db=tmp_path / "r.sqlite", studies_dir=tmp_path / "studies")
    try:
        text = about.about_markdown(svc)
    finally:
        svc.close()
    assert "SQLite" in text and str(tmp_path / "r.sqlite") in text and str(tmp_path / "studies") in text
    for stored in ("name", "answer", "timings", "configuration", "case videos"):
        assert stored in text
    assert "To delete it" in text and "CARDIOSYNTH_REVIEW_DB" in text


def test_edit_a_real_heart_plays_both_cines_with_the_values(client, acdc_root, tmp_path: Path):
    import imageio.v3 as iio

    handle = gradio_client.handle_file
    nifti = next(acdc_root.glob("patient*/patient*_4d.nii.gz"))
    real, edited, table, message = client.predict(handle(str(nifti)), "", 30, 0, api_name="/edit_real")
    assert message == "", message
    real_frames, edited_frames = iio.imread(_local_file(real), index=None), iio.imread(_local_file(edited), index=None)
    assert real_frames.shape == edited_frames.shape and real_frames.shape[0] == 16
    assert "| LVEF (%) |" in table and "30 (asked)" in table and "read back" in table
    # bad input: one readable message each, nothing else changes
    garbage = tmp_path / "scan.nii.gz"
    garbage.write_bytes(b"\x00 not a nifti " * 40)
    *kept, message = client.predict(handle(str(garbage)), None, 30, 0, api_name="/edit_real")
    assert "could not be read as NIfTI" in message and "Traceback" not in message
    *kept, message = client.predict(handle(str(nifti)), "99", 30, 0, api_name="/edit_real")
    assert "does not exist" in message
    *kept, message = client.predict(handle(str(nifti)), "two", 30, 0, api_name="/edit_real")
    assert "Slice must be a whole number between 0 and" in message
    *kept, message = client.predict(None, "0", 30, 0, api_name="/edit_real")
    assert "Upload a short-axis cine first" in message


def test_one_generate_click_parses_and_checks_its_request_once(client, explorer, monkeypatch):
    counts = count_parsing(monkeypatch)
    values = [explorer.start[n] for n in ph.NAMES]
    _, _, table, message = client.predict(*values, 5, 8, 3.0, 0.4, api_name="/generate")
    assert message == "" and "| seed | 5 |" in table
    assert settled(counts) == {"phenotypes parsed": 1, "names mapped": 1, "settings checked": 1,
                               "plausibility scored": 1}


def test_the_device_flows_from_build_app_to_each_pipeline_not_through_the_environment(monkeypatch, tmp_path):
    """app.py's ``--device`` reaches every generator's ``from_pretrained`` as an argument: build_app -> the
    studios' constructors -> their pipelines. An environment variable left over is not read."""
    from cardiosynth.app import cine_studio, ecg_cine_studio
    from cardiosynth.review import ReviewService

    loaded = []
    monkeypatch.setenv("CARDIOSYNTH_DEVICE", "cuda")
    monkeypatch.setattr(cine_studio.PhenotypeToCine, "from_pretrained",
                        lambda *args, device, **kwargs: loaded.append(("phenotype", device)))
    monkeypatch.setattr(ecg_cine_studio.EcgToCine, "from_pretrained",
                        lambda *args, device, **kwargs: loaded.append(("ecg", device)))
    review = ReviewService(db=tmp_path / "r.sqlite", studies_dir=tmp_path / "studies")
    build_app(PhenotypeExplorer(), review=review, device="cpu")
    assert loaded == [("phenotype", "cpu"), ("ecg", "cpu")]
    assert CineStudio(load=False).device == "auto"  # the library's own default, as from_pretrained's
