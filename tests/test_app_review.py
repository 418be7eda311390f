"""The Review tab as a script drives it (the review routes + gradio_client with the browser's cookies): a reader
joins, answers every case, resumes; the administrator's results need a signed-in session and the token; bad
requests are messages; the readers' page holds nothing of the administration, which has its own page. A small
real study (group-mean generator, tiny videos)."""

from __future__ import annotations

import csv
import json
import re
import urllib.request

import pytest

from cardiosynth.app import build_app
from cardiosynth.app.cine_studio import CineStudio
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
from cardiosynth.app.review_tab import ADMIN_PATH
from cardiosynth.review import ReviewService
from cardiosynth.review.render import RenderSettings
from evaluation.app_bench import serve_in_process
from evaluation.review_web_client import ReviewWebClient

pytestmark = pytest.mark.usefixtures("one_thread")


ADMIN_PASSWORD = "correct horse battery staple"
# what only an administrator may be offered: the forms' container, its fields and buttons
ADMIN_IDS = {"review-admin", "review-admin-password", "review-sign-in", "review-create", "review-created",
             "review-admin-code", "review-admin-token", "review-results-btn", "review-summary", "review-remove-btn"}
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


def browser(url) -> ReviewWebClient:
    return ReviewWebClient(url)


def test_a_reader_answers_every_case_and_can_resume(url, study):
    client = browser(url)
    joined = client.join(study.display_code, "Dr Ada")
    resume_code = joined["resume_code"]
    assert joined["name"] == "Dr Ada" and joined["total"] == 6 and len(resume_code) >= 20
    case, progress, message = client.case()
    assert "Case 1 of 6" in progress and message is not None
    seen = {case}
    gif = client.get(f"review-session/case/{case}.gif")
    assert gif.status_code == 200 and gif.content[:6] == b"GIF89a" and gif.headers["cache-control"] == "no-store"
    for k in range(3):
        case, progress, message = client.answer("synthetic" if k % 2 else "real", 4)
        assert message == ""
        seen.add(case)
    assert "Case 4 of 6" in progress
    assert all(re.fullmatch(r"[0-9a-f]{16,}", c) for c in seen)  # opaque ids, nothing about the truth

    # leave and come back in a new browser: the name alone is refused, the resume code resumes
    again = browser(url)
    assert "cannot be used" in again.join(study.display_code, "Dr Ada")["error"]
    assert again.join(study.display_code, "Dr Ada", resume_code)["answered"] == 3
    case, progress, _ = again.case()
    assert "Case 4 of 6" in progress
    for _ in range(3):
        case, progress, message = again.answer("real", 2, "looks fine")
    assert case is None and "answered every case" in progress
    assert "cs-error" in again.answer("real", 2)[2]  # nothing left to answer


@pytest.mark.parametrize("code, name, message", [
    ("NOPE-NOPE", "Dr Bo", "study"),
    (None, "   ", "name"),
    ("", "Dr Bo", "code"),
])
def test_bad_joins_are_messages(url, study, code, name, message):
    refused = browser(url).join(code if code is not None else study.display_code, name)
    assert message in refused["error"].lower() and "Traceback" not in refused["error"]


def test_answers_before_joining_or_without_a_choice_are_refused(url, study):
    client = browser(url)
    assert "Join a study first" in client.answer("real", 3)[2]
    client.join(study.display_code, "Dr Cy")
    client.case()
    assert "Choose real or synthetic" in client.answer(None, 3)[2]


def test_results_need_a_signed_in_administrator_and_the_token(url, study, service):
    outsider = browser(url)
    status, refused = outsider.results(study.display_code, study.admin_token)
    assert status == 400 and "Sign in" in refused["error"]
    admin = browser(url)
    assert admin.sign_in(ADMIN_PASSWORD) == {"signed_in": True}
    status, wrong = admin.results(study.display_code, "not-the-token")
    assert status == 400 and "not valid" in wrong["error"]
    for code in (study.display_code, study.code):
        status, report = admin.results(code, study.admin_token)
        assert status == 200 and "pooled accuracy" in report["summary_html"]
        assert "Blinding check of the files: <strong>passed</strong>" in report["summary_html"]
    details = report["details"]
    assert details["n_real"] == 3 and details["n_synthetic"] == 3 and details["n_answers"] >= 6
    answers = admin.get(report["answers_csv"])
    assert answers.headers["cache-control"] == "no-store" and "attachment" in answers.headers["content-disposition"]
    rows = list(csv.DictReader(answers.text.splitlines()))
    assert len(rows) == details["n_answers"] and {r["truth"] for r in rows} == {"real", "synthetic"}
    assert admin.get(report["plot"]).content[:4] == b"\x89PNG"
    # the files answer to the administrator who asked for them, not to their address alone
    for link in (report["answers_csv"], report["plot"], report["blinding_json"]):
        assert outsider.get(link).status_code == 400


def create_study_in_a_fresh_app(tmp_path) -> str:
    """The administrator's "Create study" (2 + 2 group-mean cases, val) on a new app with its own review store,
    as the page sends it; returns the status the page shows."""
    svc = ReviewService(db=tmp_path / "review.sqlite", studies_dir=tmp_path / "studies",
                        admin_password=ADMIN_PASSWORD)
    try:
        with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), svc)) as address:
            admin = browser(address)
            admin.sign_in(ADMIN_PASSWORD)
            created = admin.create()
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
    assert "prepared for the study on first use" in created and "Study created" in created
    assert str(tmp_path) not in created  # no server path on the page


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
    assert {"review_case", "review_answer"} <= reader_page["apis"]
    assert "review_create" not in reader_page["apis"]
    assert ADMIN_IDS <= set(admin_page["ids"]) and not READER_IDS & set(admin_page["ids"])
    assert "review_create" in admin_page["apis"]
    assert admin_page["ids"]["review-admin"]["props"]["visible"] is True  # administration on: the forms show
    assert "review-admin-off" not in admin_page["ids"]
    # Gradio lists a multipage app's pages in a navbar on every page: hidden on both, so nothing links to it
    assert not reader_page["navbar_shown"] and not admin_page["navbar_shown"]
    with urllib.request.urlopen(url.rstrip("/") + ADMIN_PATH, timeout=30) as response:
        assert response.status == 200
    # the API is one, whichever page: a client reaches the administration endpoint (test above)
    assert "/review_create" in browser(url).gradio.view_api(print_info=False, return_format="dict")["named_endpoints"]


def test_with_administration_off_the_admin_page_only_says_so_and_names_the_command_line(tmp_path):
    svc = ReviewService(db=tmp_path / "review.sqlite", studies_dir=tmp_path / "studies", admin_password="")
    try:
        with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), svc)) as address:
            admin_page = served_page(address, ADMIN_PATH.strip("/"))
            admin = browser(address)
            signed = admin.sign_in(ADMIN_PASSWORD)
            created = admin.create()
            status, results = admin.results("ABCD-EFGH", "token")
    finally:
        svc.close()
    note = admin_page["ids"]["review-admin-off"]["props"]["value"]
    assert "off" in note and "CARDIOSYNTH_REVIEW_ADMIN" in note and "python -m cardiosynth.review create" in note
    assert admin_page["ids"]["review-admin"]["props"]["visible"] is False  # the forms are never shown
    # the routes and the endpoint stay (one API whatever the server's setting) and refuse with one clear sentence
    assert "switched off" in signed["error"]
    assert "cs-error" in created and "switched off" in created
    assert status == 400 and "switched off" in results["error"]
