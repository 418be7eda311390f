"""The running app against an adversarial tester, through the raw API (issue "Reader studies a hospital's IT
security would sign off"): session hijack, administration, rate limits, uploads, headers, file modes.
The browser-side findings (secrets in localStorage) are in test_app_browser.py."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import gradio_client
import pytest

from cardiosynth.app import build_app
from cardiosynth.app.cine_view import CineStudio
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
from cardiosynth.review import ReviewService
from cardiosynth.review.ratelimit import FailureLimiter
from cardiosynth.review.render import RenderSettings
from evaluation.app_bench import serve_in_process

pytestmark = pytest.mark.usefixtures("one_thread")
ADMIN_PASSWORD = "correct horse battery staple"
GENERATOR = "Group-mean cine (a trivial baseline)"


@pytest.fixture(scope="module")
def service(tmp_path_factory, prepared_default):
    folder = tmp_path_factory.mktemp("security")
    svc = ReviewService(folder / "review.sqlite", folder / "studies", admin_password=ADMIN_PASSWORD,
                        limiter=FailureLimiter(max_failures=5, window_s=600))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def study(service, prepared_default):
    return service.create_study("group-mean", 2, 2, "val", "matched", dataset=prepared_default,
                                settings=RenderSettings(size=64, frames_per_cycle=8, cycles=1))


@pytest.fixture(scope="module")
def url(service):
    with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), service)) as address:
        yield address


def client(url):
    return gradio_client.Client(url, verbose=False, download_files=False)


def stored_answers(service, study) -> int:
    return len(service.store.answers_table(study.code))


def test_knowing_a_readers_session_hash_does_not_let_anyone_answer_for_them(url, service, study):
    victim = client(url)
    key = victim.predict(study.display_code, "Dr Victim", "", api_name="/review_join")[3]
    before = stored_answers(service, study)
    attacker = client(url)
    attacker.session_hash = victim.session_hash  # the hash is in the queue's query strings, so in proxy logs
    for guess in ("", "guess", None):
        message = attacker.predict("real", 5, "", guess, api_name="/review_answer")[2]
        assert "cs-error" in message
    assert stored_answers(service, study) == before
    assert victim.predict("real", 5, "", key, api_name="/review_answer")[2] == ""  # the reader's own page still can
    assert stored_answers(service, study) == before + 1


@pytest.mark.parametrize("password", ["", "wrong password!"])
def test_creating_a_study_needs_the_administrator_password(url, service, password):
    def n_studies() -> int:
        with sqlite3.connect(service.store.path) as db:
            return db.execute("SELECT count(*) FROM studies").fetchone()[0]

    before = n_studies()
    created, cleared = client(url).predict(2, 2, GENERATOR, "val", "matched", 1.0, 1, "", password,
                                           api_name="/review_create")
    assert "cs-error" in created and "password" in created.lower() and cleared == ""
    assert n_studies() == before


def raw_call(url: str, api_name: str, data_json: str) -> tuple[str, object]:
    """Gradio's HTTP API without a client library (which refuses NaN): POST the data, read the last event;
    returns (event name, its data): "complete" with the outputs, or "error" with Gradio's own message."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=f'{{"data": {data_json}}}'.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=120) as response:
        lines = response.read().decode().splitlines()
    events = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    data = [line[len("data: "):] for line in lines if line.startswith("data: ")]
    return events[-1], json.loads(data[-1])


@pytest.mark.parametrize("field, value", [(0, "2.5"), (1, "NaN"), (6, "1.5"), (5, "Infinity"), (0, "500"),
                                          (1, '"ten"'), (6, "-1")])
def test_numeric_arguments_get_one_clear_message(url, service, field, value):
    """Out of a slider's range, Gradio refuses with its own sentence; inside it (2.5, NaN), the app does."""
    args = ["2", "2", json.dumps(GENERATOR), '"val"', '"matched"', "1.0", "1", '""', json.dumps(ADMIN_PASSWORD)]
    args[field] = value
    event, data = raw_call(url, "review_create", "[" + ", ".join(args) + "]")
    message = data[0] if event == "complete" else str(data)
    if event == "complete":
        assert "cs-error" in message and ("whole number" in message or "must be a number" in message), message
    else:  # Gradio's sentence ("Value inf is greater than maximum value 3.0."), or none for a non-number
        assert event == "error", message
    assert "Traceback" not in message and "ValueError" not in message and "This is a bug" not in message


def test_a_taken_name_is_refused_without_saying_who_is_in_the_study(url, study):
    client(url).predict(study.display_code, "Dr Present", "", api_name="/review_join")
    message = client(url).predict(study.display_code, "dr present", "", api_name="/review_join")[2]
    assert "cs-error" in message and "present" not in message.lower()


def test_wrong_codes_are_rate_limited(tmp_path, prepared_default):
    svc = ReviewService(tmp_path / "review.sqlite", tmp_path / "studies", admin_password=ADMIN_PASSWORD,
                        limiter=FailureLimiter(max_failures=5, window_s=600))
    try:
        real = svc.create_study("group-mean", 2, 2, "val", "matched", dataset=prepared_default,
                                settings=RenderSettings(size=64, frames_per_cycle=8, cycles=1))
        with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), svc)) as address:
            guesser = client(address)
            for k in range(5):
                assert "No study has the code" in guesser.predict(f"ZZZZ-ZZZ{k + 2}", "Eve", "",
                                                                   api_name="/review_join")[2]
            blocked = guesser.predict(real.display_code, "Eve", "", api_name="/review_join")[2]
            assert "Too many" in blocked  # even the right code, until the window has passed
            wrong_admin = guesser.predict(real.display_code, real.admin_token, ADMIN_PASSWORD,
                                          api_name="/review_results")[0]
            assert "Too many" in wrong_admin
    finally:
        svc.close()


def _post_upload(url: str, size: int) -> int:
    boundary = "cardiosynthboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + b"0" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, ConnectionError):  # the server stopped reading and closed the connection
        return 413


def test_uploads_are_capped_by_the_server(url):
    from gradio.utils import get_upload_folder

    before = sum(f.stat().st_size for f in Path(get_upload_folder()).rglob("*") if f.is_file())
    assert _post_upload(url, 1000) == 200
    assert _post_upload(url, 60_000_000) == 413
    after = sum(f.stat().st_size for f in Path(get_upload_folder()).rglob("*") if f.is_file())
    assert after - before < 1_000_000  # nothing of the refused upload was kept


def test_a_very_wide_csv_is_refused_before_parsing(url, tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{k}" for k in range(50_000)) + "\n" + ",".join("1" for _ in range(50_000)) + "\n")
    _, _, details, message = client(url).predict([gradio_client.handle_file(str(wide))], None, "", api_name="/ecg")
    assert "cs-error" in message and "50,000 columns" in details["error"]


def test_security_headers_and_no_monitoring_pages(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    for path in ("monitoring", "monitoring/summary", "gradio_api/monitoring/summary"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + path, timeout=30)
        assert info.value.code in (403, 404)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_study_files_are_readable_by_this_user_only(url, service, study):
    assert _mode(service.store.path) == 0o600
    assert _mode(service.studies_dir) == 0o700
    folder = Path(service.store.study(study.code)["folder"])
    assert all(_mode(f) == 0o600 for f in folder.glob("*.gif")) and list(folder.glob("*.gif"))
    message, _, _, files, *_ = client(url).predict(study.display_code, study.admin_token, ADMIN_PASSWORD,
                                                   api_name="/review_results")
    assert message == ""
    for written in service.studies_dir.glob("*_answers.csv"):
        assert _mode(written) == 0o600


def test_gradio_keeps_its_copies_of_downloads_in_a_private_folder(tmp_path):
    """As `python app.py` starts: cardiosynth.app imported before gradio."""
    probe = ("import os, stat; import cardiosynth.app; from gradio.utils import get_upload_folder; "
             "print(get_upload_folder(), oct(stat.S_IMODE(os.stat(get_upload_folder()).st_mode)))")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CARDIOSYNTH_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    folder, mode = out.split()
    assert folder.startswith(str(tmp_path / "cache")) and mode == "0o700"


def test_app_takes_gradios_own_server_variables_as_defaults():
    """Spaces and containers set GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; --host / --port and CARDIOSYNTH_PORT win."""
    import app

    assert (app.parse_args([], {}).host, app.parse_args([], {}).port) == ("127.0.0.1", 7860)
    spaces = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}
    assert (app.parse_args([], spaces).host, app.parse_args([], spaces).port) == ("0.0.0.0", 7861)
    assert app.parse_args([], {**spaces, "CARDIOSYNTH_PORT": "8000"}).port == 8000
    chosen = app.parse_args(["--host", "127.0.0.1", "--port", "9000"], spaces)
    assert (chosen.host, chosen.port) == ("127.0.0.1", 9000)
    with pytest.raises(SystemExit, match="GRADIO_SERVER_PORT='http' is not a port number"):
        app.parse_args([], {"GRADIO_SERVER_PORT": "http"})
