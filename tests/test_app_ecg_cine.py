"""The ECG tab's "Generate cine from this ECG": the studio's logic (cine and ECG cursor in sync, files, readable
errors), the ``/ecg_generate`` endpoint through gradio_client against the app served in this process, and the
tab without the ECG->cine weights. A tiny random pipeline with an oracle phase (ecg_cine_fixture.py) keeps these
fast; the browser test (test_app_browser.py) and test_ecg_to_cine.py use the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import gradio_client
import numpy as np
import pytest
from ecg_cine_fixture import tiny_ecg_to_cine
from request_counting import count_parsing, settled

from cardiosynth.app import build_app
from cardiosynth.app.cine_studio import CineStudio, png_uris
from cardiosynth.app.ecg_cine_studio import EcgCineStudio, heart_sentence
from cardiosynth.app.errors import user_message
from cardiosynth.ecg import Ecg, EcgError
from cardiosynth.paths import REPO_ROOT
from cardiosynth.phenotype_prior import TYPICAL_HEART
from evaluation.app_bench import serve_in_process

LUDB_2 = REPO_ROOT / "assets" / "ecg" / "ludb" / "2.hea"
SINUS = "LUDB record 2: sinus rhythm (WFDB)"


@pytest.fixture(scope="module")
def ecg_studio():
    return EcgCineStudio(tiny_ecg_to_cine())


@pytest.fixture(scope="module")
def generated(ecg_studio):
    return ecg_studio.generate(LUDB_2, seed=0, steps=2, cfg=2.0, slice_position=0.5)


def _app(tmp_path_factory, ecg_studio):
    """The app with the phenotype generator left out (not under test here) and a throwaway review database."""
    from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
    from cardiosynth.review import ReviewService

    folder = tmp_path_factory.mktemp("review")
    review = ReviewService(folder / "review.sqlite", folder / "studies")
    return build_app(PhenotypeExplorer(), CineStudio(load=False), review, ecg_studio=ecg_studio), review


@pytest.fixture(scope="module")
def url(tmp_path_factory, ecg_studio):
    demo, review = _app(tmp_path_factory, ecg_studio)
    with serve_in_process(demo) as url:
        yield url
    review.close()


# ------------------------------------------------------------------------------------------ studio
def test_figure_plays_the_cine_with_the_cursor_on_each_frame_time(ecg_studio, generated):
    cycle, n = generated.cycle, generated.cine.n_frames
    times = cycle["frame_times_s"]
    assert n == len(times) == 16 and cycle["cycles_found"] >= 3 and 0.5 < cycle["rr_s"] < 1.2
    figure = ecg_studio.figure(generated)
    images = [i for i, t in enumerate(figure.data) if t.type == "image"]
    steps = figure.layout.sliders[0].steps
    assert len(steps) == n and len(images) == n
    for k, step in enumerate(steps):
        data, layout, traces = step.args
        assert step.method == "update" and list(traces) == images
        assert [traces[i] for i, o in enumerate(data["opacity"]) if o == 1] == [images[k]]  # frame k shows image k
        cursor = layout["shapes"][0]
        assert cursor["x0"] == cursor["x1"] == times[k]  # ... and the cursor at frame time k
    assert figure.data[images[5]].source == png_uris(generated.cine)[5]
    assert figure.layout.shapes[0].x0 == times[0] and figure.data[images[0]].opacity == 1
    assert sum(figure.data[i].opacity for i in images) == 1
    lead = next(t for t in figure.data if t.name == "lead II")  # lead II from one R peak to the next
    assert lead.x[0] <= cycle["start_s"] < lead.x[1] and lead.x[-2] < cycle["end_s"] <= lead.x[-1]
    assert np.allclose(lead.y, generated.ecg.lead("II")[round(lead.x[0] * 500):round(lead.x[-1] * 500) + 1])
    es_line = next(s for s in figure.layout.shapes if s.line.dash == "dash")  # end-systole: QT after the R peak
    assert es_line.x0 == pytest.approx(cycle["start_s"] + cycle["es_s"]) and cycle["start_s"] < es_line.x0 < cycle["end_s"]
    assert f"{1000 * cycle['qt_s']:.0f} ms" in ecg_studio.summary_markdown(generated)


def test_play_runs_the_slider_steps_at_the_ecgs_own_rate(ecg_studio, generated):
    """Gradio hands plotly data + layout only: the slider steps are the frames, Play (in the page) runs them."""
    figure = ecg_studio.figure(generated)
    assert figure.layout.meta["cs_frame_ms"] == pytest.approx(1000 * generated.cycle["rr_s"] / 16, abs=0.1)
    steps = figure.layout.sliders[0].steps
    assert [s.label for s in steps] == [str(k) for k in range(16)]
    assert not figure.layout.updatemenus  # plotly's own Play would rebuild the images: blank while playing


def test_downloads_follow_the_ecg_timing(ecg_studio, generated):
    import nibabel as nib
    import pydicom
    from PIL import Image

    files = [Path(f) for f in ecg_studio.downloads(generated)]
    assert [f.name.split(".", 1)[1] for f in files] == ["mp4", "gif", "nii.gz", "dcm", "json"]
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    frame_s = generated.cycle["rr_s"] / 16
    with Image.open(files[1]) as gif:
        assert gif.n_frames == 16 and abs(gif.info["duration"] - 1000 * frame_s) <= 10  # GIF: 10 ms units
    nifti = nib.load(files[2])
    assert nifti.shape == (64, 64, 1, 16) and nifti.header.get_zooms()[3] == pytest.approx(frame_s, rel=1e-4)
    dicom = pydicom.dcmread(files[3])
    assert dicom.NumberOfFrames == 16 and float(dicom.FrameTime) == pytest.approx(1000 * frame_s, abs=1e-3)
    assert json.loads(dicom.ImageComments)["cycle"]["rr_s"] == generated.cycle["rr_s"]
    assert "ecg_file" not in json.loads(dicom.ImageComments)["conditions"]  # file names may name the patient
    saved = json.loads(files[4].read_text())
    assert saved["cycle"]["frame_times_s"] == generated.cycle["frame_times_s"]
    assert saved["conditions"]["seed"] == 0 and saved["conditions"]["note"].startswith("trained on pseudo-pairs")
    # no heart chosen: the typical healthy heart, named in the files and the summary (was a phenotype VAE sample)
    for anatomy in (saved["conditions"]["anatomy"], json.loads(dicom.ImageComments)["conditions"]["anatomy"]):
        assert anatomy["choice"] == "typical" and anatomy["source"] == TYPICAL_HEART and anatomy["LVEF"] == 62.0
    summary = ecg_studio.summary_markdown(generated)
    assert "Cycle used" in summary and f"**Heart** (not from the ECG): {TYPICAL_HEART}, with LVEDV" in summary


def test_the_heart_is_typical_unless_the_user_picks_another(ecg_studio):
    typical = ecg_studio.heart()
    assert typical["choice"] == "typical" and typical["LVEF"] == 62.0 and typical["RVEF"] == 55.0
    sentence = heart_sentence(typical)
    assert sentence.startswith(f"The cine animates {TYPICAL_HEART}: LVEDV ") and sentence.count(". ") == 0
    assert "not a heart read from the ECG" in sentence and sentence.endswith("\u201cHeart to animate\u201d.")
    drawn = ecg_studio.heart("random", 3)  # a random draw, labelled as one, its seed named
    assert drawn["choice"] == "random" and "random heart" in drawn["source"] and "heart seed 3" in drawn["source"]
    assert drawn == ecg_studio.heart("random", 3) and drawn["LVEDV"] != ecg_studio.heart("random", 4)["LVEDV"]
    asked = ecg_studio.heart("values", 0, {"LVEF": 35, "LVEDV": None, "LVM": 0})  # blank (the page sends 0 or None):
    # the phenotype model fills it in
    assert asked["choice"] == "requested" and asked["LVEF"] == pytest.approx(35.0)
    made = ecg_studio.generate(LUDB_2, 0, 2, 2.0, 0.5, heart=ecg_studio.heart_request("random", 3))
    assert made.output.conditions["anatomy"]["LVEDV"] == drawn["LVEDV"]
    assert made.cine.metadata["heart"] == drawn["source"]  # the cine itself says which heart it animates
    assert made.cine.metadata["phenotypes"]["LVEF"] == drawn["LVEF"]


@pytest.mark.parametrize("choice, seed, values, message", [
    ("values", 0, {"LVEF": None}, "Type at least one of LVEDV"),
    ("values", 0, {"LVEF": "a lot"}, "LVEF must be a number"),
    ("random", -1, {}, "The heart seed must be a whole number between 0"),
    ("mine", 0, {}, "Choose the heart to animate"),
])
def test_a_heart_that_cannot_be_is_one_readable_sentence(ecg_studio, choice, seed, values, message):
    with pytest.raises(ValueError, match=message) as raised:
        ecg_studio.heart(choice, seed, values)
    assert str(raised.value).count(". ") == 0


def test_an_ecg_without_a_heartbeat_is_one_readable_message(ecg_studio):
    flat = Ecg(np.zeros((12, 5000), np.float32))
    with pytest.raises(EcgError) as raised:
        ecg_studio.generate(flat, 0, 2, 2.0, 0.5)
    message = user_message(raised.value, "generating a cine from the ECG")
    assert message.startswith("No complete heartbeat") and "Traceback" not in message and "bug" not in message


@pytest.mark.parametrize("settings, message", [
    ((-1, 2, 2.0, 0.5), "Seed must be a whole number between 0 and 2147483647"),
    ((0, 0, 2.0, 0.5), "Sampling steps must be a whole number between 1 and 200"),
    ((0, 2, float("nan"), 0.5), "Guidance scale must be between 1 and 10"),
    ((0, 2, 2.0, 1.5), "Slice position must be between 0 and 1"),
])
def test_bad_settings_are_readable_errors(ecg_studio, settings, message):
    with pytest.raises(ValueError, match=message):
        ecg_studio.generate(LUDB_2, *settings)
    with pytest.raises(ValueError, match="Load an ECG first"):
        ecg_studio.generate(None, 0, 2, 2.0, 0.5)


# ------------------------------------------------------------------------------------------ through the app
def test_ecg_generate_endpoint_after_picking_the_example(url):
    import imageio.v3 as iio

    client = gradio_client.Client(url, verbose=False, download_files=False)
    gif, figure, cycle, message = client.predict(0, 2, 2.0, 0.5, api_name="/ecg_generate")
    assert "cs-error" in message and "Load an ECG first" in message  # nothing shown yet in this session
    shown = client.predict(SINUS, api_name="/ecg_example")
    assert len(shown) == 4 and shown[3] == ""  # the ECG kept for generation is session state, not an output
    gif, figure, cycle, message = client.predict(3, 2, 2.0, 0.5, api_name="/ecg_generate")
    assert message == "" and "Cycle used" in cycle and "seed 3" in cycle
    assert f"**Heart** (not from the ECG): {TYPICAL_HEART}, with LVEDV" in cycle  # no heart given: the typical one
    note = client.predict("random", 5, None, None, None, None, None, api_name="/ecg_heart")  # the sentence
    assert "random heart" in note and "heart seed 5" in note
    drawn = client.predict(3, 2, 2.0, 0.5, "random", 5, None, None, None, None, None, api_name="/ecg_generate")[2]
    assert "heart seed 5" in drawn and note.split(": ", 1)[1].split(", not a heart")[0] in drawn
    start, end = shown[2]["cycle_s"]  # the tab's one cycle, marked before generating, is the cine's
    assert f"{start:.2f}\u2013{end:.2f} s" in cycle and f"{start:.2f}\u2013{end:.2f} s" in shown[1]
    path = Path(gif["path"] if isinstance(gif, dict) else gif)
    assert path.is_file() and iio.imread(path, index=None).shape[0] == 16
    plot = json.loads(figure["plot"])
    assert figure["type"] == "plotly" and len(plot["layout"]["sliders"][0]["steps"]) == 16
    # an unreadable upload replaces the shown ECG: generating then asks for an ECG again
    garbage = Path(gif["path"] if isinstance(gif, dict) else gif).with_name("not_an_ecg.xml")
    garbage.write_bytes(b"\x00 not an ECG " * 40)
    assert "cs-error" in client.predict([gradio_client.handle_file(str(garbage))], None, "", api_name="/ecg")[3]
    assert "Load an ECG first" in client.predict(0, 2, 2.0, 0.5, api_name="/ecg_generate")[3]


def test_one_ecg_upload_and_generate_parse_and_check_each_request_once(url, monkeypatch):
    client = gradio_client.Client(url, verbose=False, download_files=False)
    counts = count_parsing(monkeypatch)
    upload = [gradio_client.handle_file(str(LUDB_2)), gradio_client.handle_file(str(LUDB_2.with_suffix(".dat")))]
    assert client.predict(upload, None, "", api_name="/ecg")[3] == ""
    assert settled(counts) == {"ECG analysed (neurokit2)": 1, "ECG encoded (ECG MAE)": 1}  # read once, shown
    gif, _, cycle, message = client.predict(3, 2, 2.0, 0.5, "values", 0, 150.0, 55.0, None, None, None,
                                            api_name="/ecg_generate")
    assert message == "" and "seed 3" in cycle
    assert settled(counts) == {"ECG analysed (neurokit2)": 1, "ECG encoded (ECG MAE)": 1, "phenotypes parsed": 1,
                               "names mapped": 1, "settings checked": 1}


def test_without_weights_the_tab_says_so_and_the_app_still_works(tmp_path_factory):
    missing = EcgCineStudio(weights=tmp_path_factory.mktemp("no_weights"))
    assert not missing.available and "could not be loaded" in missing.unavailable_reason
    demo, review = _app(tmp_path_factory, missing)
    try:
        texts = {c.get("props", {}).get("elem_id"): str(c.get("props", {}).get("value"))
                 for c in demo.config["components"]}
        assert "could not be loaded" in texts["ecg-cine-unavailable"]
        assert "weights are not in this build" in texts["cine-note-ecg"]
        assert "ecg-generate-btn" not in texts and "ecg-cine-plot" not in texts
        with serve_in_process(demo) as url:  # reading ECGs still works
            client = gradio_client.Client(url, verbose=False, download_files=False)
            assert client.predict(SINUS, api_name="/ecg_example")[2]["format"] == "wfdb"
            assert "/ecg_generate" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        review.close()
