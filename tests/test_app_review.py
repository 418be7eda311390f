"""The Review tab through gradio_client: a reader joins, answers every case, resumes; the administrator's
results need the token; bad requests are messages; the readers' page holds nothing of the administration,
which has its own page. A small real study (group-mean generator, tiny videos)."""

from __future__ import annotations

import csv
import json
import re
import urllib.request
from pathlib import Path

import gradio_client
import pytest

from cardiosynth.app import build_app
from cardiosynth.app.cine_view import CineStudio
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
from cardiosynth.app.review_tab import ADMIN_PATH
from cardiosynth.review import ReviewService
from cardiosynth.review.render import RenderSettings
from evaluation.app_bench import serve_in_process

pytestmark = pytest.mark.usefixtures("one_thread")


ADMIN_PASSWORD = "correct horse battery staple"
# what only an administrator may be offered: the forms' container, its fields and buttons
ADMIN_IDS = {"review-admin", "review-admin-password", "review-create", "review-created", "review-admin-code",
             "review-admin-token", "review-results-btn", "review-summary"}
READER_IDS = {"review-code", "review-name", "review-resume", "review-join", "review-answer", "review-submit"}


@pytest.fixture(scope="module")
def service(tmp_path_factory, prepared_default):
    folder = tmp_path_factory.mktemp("review")
    svc = ReviewService(db=folder / "review.sqlite", studies_dir=folder / "studies", admin_password=ADMIN_PASSWORD)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def study(service, prepared_default):
    return service.create_study("group-mean", 3, 3, "val", "matched", dataset=prepared_default,
                                settings=RenderSettings(size=64, frames_per_cycle=8, cycles=1))


@pytest.fixture(scope="module")
def url(service):
    demo = build_app(PhenotypeExplorer(), CineStudio(load=False), service)
    with serve_in_process(demo) as url:
        yield url


def reader(url):
    return gradio_client.Client(url, verbose=False, download_files=False)


def video_path(value) -> Path:
    value = value.get("video", value) if isinstance(value, dict) else value
    path = Path(value["path"] if isinstance(value, dict) else value)
    assert path.is_file() and path.suffix == ".gif"
    return path


def test_a_reader_answers_every_case_and_can_resume(url, study):
    client = reader(url)
    video, progress, message, key, resume_code = client.predict(study.display_code, "Dr Ada", "",
                                                                api_name="/review_join")
    assert "Case 1 of 6" in progress and "resume code" in message and key == resume_code
    names = {video_path(video).name}
    for k in range(3):
        video, progress, message, *_ = client.predict("synthetic" if k % 2 else "real", 4, "", key,
                                                      api_name="/review_answer")
        assert message == ""
    assert "Case 4 of 6" in progress
    names.add(video_path(video).name)
    assert all(re.fullmatch(r"[0-9a-f]{8,}\.gif", n) for n in names)  # opaque names, nothing about the truth

    # leave and come back in a new browser session: the name alone is refused, the resume code resumes
    again = reader(url)
    refused = again.predict(study.display_code, "Dr Ada", "", api_name="/review_join")
    assert "cs-error" in refused[2]
    video, progress, message, key, _ = again.predict(study.display_code, "Dr Ada", resume_code,
                                                     api_name="/review_join")
    assert "Case 4 of 6" in progress
    for _ in range(3):
        video, progress, message, *_ = again.predict("real", 2, "looks fine", key, api_name="/review_answer")
    assert video is None and "answered every case" in progress
    finished = again.predict("real", 2, "", key, api_name="/review_answer")
    assert "cs-error" in finished[2]  # nothing left to answer


@pytest.mark.parametrize("code, name, message", [
    ("NOPE-NOPE", "Dr Bo", "study"),
    (None, "   ", "name"),
    ("", "Dr Bo", "code"),
])
def test_bad_joins_are_messages(url, study, code, name, message):
    result = reader(url).predict(code if code is not None else study.display_code, name, "", api_name="/review_join")
    assert "cs-error" in result[2] and message in result[2].lower() and "Traceback" not in result[2]


def test_answers_before_joining_or_without_a_choice_are_refused(url, study):
    client = reader(url)
    assert "Join a study first" in client.predict("real", 3, "", "", api_name="/review_answer")[2]
    key = client.predict(study.display_code, "Dr Cy", "", api_name="/review_join")[3]
    assert "Choose real or synthetic" in client.predict(None, 3, "", key, api_name="/review_answer")[2]


def test_results_need_the_admin_token_and_password(url, study, service):
    client = reader(url)
    for token, password in (("not-the-token", ADMIN_PASSWORD), (study.admin_token, "not the password"),
                            (study.admin_token, "")):
        wrong = client.predict(study.display_code, token, password, api_name="/review_results")
        assert "cs-error" in wrong[0] and wrong[3] is None and wrong[4] is None
    for code in (study.display_code, study.code):
        message, summary, plot, files, details, token, password = client.predict(
            code, study.admin_token, ADMIN_PASSWORD, api_name="/review_results")
        assert token == "" and password == ""  # secrets leave the page once used
        assert message == "" and "pooled accuracy" in summary and "Blinding check of the files: **passed**" in summary
    assert details["n_real"] == 3 and details["n_synthetic"] == 3 and details["n_answers"] >= 6
    answers = next(Path(f["path"] if isinstance(f, dict) else f) for f in files if str(f).count("answers") or
                   (isinstance(f, dict) and "answers" in f["path"]))
    rows = list(csv.DictReader(answers.open()))
    assert len(rows) == details["n_answers"] and {r["truth"] for r in rows} == {"real", "synthetic"}


def create_study_in_a_fresh_app(tmp_path) -> str:
    """The administrator's "Create study" (2 + 2 group-mean cases, val) on a new app with its own review store,
    as the page sends it; returns the status the page shows."""
    svc = ReviewService(db=tmp_path / "review.sqlite", studies_dir=tmp_path / "studies",
                        admin_password=ADMIN_PASSWORD)
    try:
        with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), svc)) as address:
            created, _ = reader(address).predict(2, 2, "Group-mean cine (a trivial baseline)", "val", "matched", 1.0,
                                                 1, "", ADMIN_PASSWORD, api_name="/review_create")
    finally:
        svc.close()
    return created


def test_create_study_without_the_data_folder_is_one_clear_message(tmp_path, monkeypatch):
    """Fresh install, no data folder: Create study names where it looked and CARDIOSYNTH_DATA, not a bug."""
    monkeypatch.setenv("CARDIOSYNTH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    created = create_study_in_a_fresh_app(tmp_path)
    assert "cs-error" in created and "CARDIOSYNTH_DATA" in created
    assert str(tmp_path / "nowhere" / "acdc") in created
    assert "This is a bug" not in created and "Traceback" not in created and "DataNotFoundError" not in created


def test_create_study_on_a_fresh_install_prepares_the_cines_first(tmp_path, monkeypatch):
    """Data folder present, nothing prepared yet: Create study prepares the ACDC cines, says so, and works."""
    from acdc_fixture import write_acdc

    monkeypatch.setenv("CARDIOSYNTH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    write_acdc(tmp_path / "data" / "acdc", {"patient002": "DCM", "patient004": "DCM"})  # train + val
    created = create_study_in_a_fresh_app(tmp_path)
    assert "cs-error" not in created, created
    assert "prepared on first use" in created and "Study created" in created


def served_page(url: str, page: str) -> dict:
    """The config the server sends a browser opening ``page`` ("" = the app's main page): its components by
    elem_id, its endpoints' api_names, and whether its navbar is shown (pages are filtered server-side)."""
    with urllib.request.urlopen(f"{url}config?page={page}", timeout=30) as response:
        config = json.loads(response.read())
    components = config["components"]
    navbars = [c for c in components if c["type"] == "navbar"]
    return {"ids": {c["props"].get("elem_id"): c for c in components if c["props"].get("elem_id")},
            "apis": {d.get("api_name") for d in config["dependencies"]},
            # a page's own Navbar, hidden the way the browser honours (see review_tab._hidden_navbar)
            "navbar_shown": len(config["pages"]) > 1 and not (navbars and navbars[0]["props"]["visible"] == "hidden")}


def test_readers_page_has_nothing_of_the_administration_which_has_its_own_page(url):
    reader_page, admin_page = served_page(url, ""), served_page(url, ADMIN_PATH.strip("/"))
    assert READER_IDS <= set(reader_page["ids"]) and not ADMIN_IDS & set(reader_page["ids"])
    assert {"review_join", "review_answer"} <= reader_page["apis"]
    assert not {"review_create", "review_results"} & reader_page["apis"]
    assert ADMIN_IDS <= set(admin_page["ids"]) and not READER_IDS & set(admin_page["ids"])
    assert {"review_create", "review_results"} <= admin_page["apis"]
    assert admin_page["ids"]["review-admin"]["props"]["visible"] is True  # administration on: the forms show
    assert "review-admin-off" not in admin_page["ids"]
    # Gradio lists a multipage app's pages in a navbar on every page: hidden on both, so nothing links to it
    assert not reader_page["navbar_shown"] and not admin_page["navbar_shown"]
    with urllib.request.urlopen(url.rstrip("/") + ADMIN_PATH, timeout=30) as response:
        assert response.status == 200
    # the API is one, whichever page: a client reaches the administration endpoints (test above)
    assert {"/review_create", "/review_results"} <= set(reader(url).view_api(print_info=False,
                                                                             return_format="dict")["named_endpoints"])


def test_with_administration_off_the_admin_page_only_says_so_and_names_the_command_line(tmp_path):
    svc = ReviewService(db=tmp_path / "review.sqlite", studies_dir=tmp_path / "studies", admin_password="")
    try:
        with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), svc)) as address:
            admin_page = served_page(address, ADMIN_PATH.strip("/"))
            created, cleared = reader(address).predict(2, 2, "Group-mean cine (a trivial baseline)", "val",
                                                       "matched", 1.0, 1, "", ADMIN_PASSWORD,
                                                       api_name="/review_create")
            results = reader(address).predict("ABCD-EFGH", "token", ADMIN_PASSWORD, api_name="/review_results")
    finally:
        svc.close()
    note = admin_page["ids"]["review-admin-off"]["props"]["value"]
    assert "off" in note and "CARDIOSYNTH_REVIEW_ADMIN" in note and "python -m cardiosynth.review create" in note
    assert admin_page["ids"]["review-admin"]["props"]["visible"] is False  # the forms are never shown
    # the endpoints stay (one API whatever the server's setting) and refuse with one clear sentence
    assert "cs-error" in created and "switched off" in created and cleared == ""
    assert "cs-error" in results[0] and "switched off" in results[0] and results[6] == ""
