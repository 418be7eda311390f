"""Reader-study store and reader flow: one answer per reader and case, replays, refusals, threads, restart,
crash, and the admin token. Cases are database rows only here (no rendering)."""

import dataclasses
import threading

import pandas as pd
import pytest

from cardiosynth.review import ReviewError, ReviewService, session
from cardiosynth.review.access import display_code, new_token, token_hash
from cardiosynth.review.store import Store
from evaluation.review_store_load import crash_check, fake_study, run_loadtest


@pytest.fixture()
def service(tmp_path):
    service = ReviewService(tmp_path / "review.sqlite", tmp_path / "studies")
    yield service
    service.close()


def admin_study(service: ReviewService, n_cases: int = 6) -> tuple[str, str]:
    """A study with a known admin token, cases alternating real / synthetic."""
    code, token = fake_study(service.store, n_cases), new_token()
    with service.store.transaction() as db:
        db.execute("UPDATE studies SET admin_token_hash = ? WHERE code = ?", (token_hash(token), code))
    return code, token


def answer_all(service, token, answer="synthetic", confidence=3):
    while (case := service.current_case(token)) is not None:
        service.answer(token, case.case_id, answer, confidence)


def test_reader_flow_one_case_at_a_time_and_resume(service):
    code, _ = admin_study(service, 4)
    reader = service.join(display_code(code).lower(), "  Dr   Ada  ")  # codes are typed by hand
    assert (reader.name, reader.total, reader.answered, reader.done) == ("Dr Ada", 4, 0, False)
    first = service.current_case(reader.token)
    assert (first.position, first.total) == (1, 4)
    assert service.current_case(reader.token) == first  # reloading shows the same case
    receipt = service.answer(reader.token, first.case_id, "Real", "4", "looks fine")
    assert (receipt.answered, receipt.replay, receipt.done) == (1, False, False)
    second = service.current_case(reader.token)
    assert second.case_id != first.case_id and second.position == 2
    # leaving and coming back: the same name with the resume code continues where the reader was
    again = service.join(code, "dr ada", resume_code=reader.token)
    assert again.answered == 1 and service.current_case(again.token) == second
    assert service.resume(reader.token).answered == 1
    answer_all(service, reader.token)
    assert service.current_case(reader.token) is None and service.resume(reader.token).done


def test_readers_get_their_own_order_and_never_the_truth(service):
    code, _ = admin_study(service, 20)
    a, b = service.join(code, "A"), service.join(code, "B")
    orders = [service.store.reader_by_token(token_hash(r.token))["case_order"] for r in (a, b)]
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]  # equal by chance: 1 in 20!
    shown = dataclasses.asdict(service.current_case(a.token))
    receipt = dataclasses.asdict(service.answer(a.token, shown["case_id"], "real", 2))
    for public in (shown, receipt, dataclasses.asdict(a)):
        assert not {"truth", "correct", "provenance", "accuracy"} & set(public)
        assert "real" not in str(shown["path"]) and "synthetic" not in str(shown["path"])


def test_replays_are_idempotent_and_answers_final(service):
    code, _ = admin_study(service, 3)
    reader = service.join(code, "R")
    case = service.current_case(reader.token)
    service.answer(reader.token, case.case_id, "synthetic", 5, "edges too smooth")
    replay = service.answer(reader.token, case.case_id, "synthetic", 5, "edges too smooth")
    assert replay.replay and replay.answered == 1
    with pytest.raises(ReviewError, match="already answered"):
        service.answer(reader.token, case.case_id, "real", 5)
    table = service.store.answers_table(code)
    assert len(table) == 1 and table.answer[0] == "synthetic" and table.comment[0] == "edges too smooth"


@pytest.mark.parametrize("code, name, message", [
    ("ZZZZ-ZZZZ", "A", "No study has the code"),
    ("", "A", "enter the study code"),
    (None, "   ", "enter your name"),
    (None, "x" * 61, "at most 60"),
    (None, "bad\x00name", "cannot be shown"),
])
def test_join_refusals(service, code, name, message):
    study, _ = admin_study(service, 2)
    with pytest.raises(ReviewError, match=message):
        service.join(study if code is None else code, name)


def test_a_taken_name_needs_its_resume_code_and_the_refusal_names_nobody(service):
    code, _ = admin_study(service, 2)
    service.join(code, "Dr Lee")
    for wrong in (None, "", "guess"):
        with pytest.raises(ReviewError, match="cannot be used to join") as info:
            service.join(code, "DR LEE", resume_code=wrong)
        assert "Lee" not in str(info.value) and "LEE" not in str(info.value)


@pytest.mark.parametrize("look_alike", ["Dr L\u0435e", "\uff24\uff52 Lee", "dr  lee"])  # Cyrillic e, full-width D r
def test_a_look_alike_of_a_taken_name_is_the_same_reader(service, look_alike):
    code, _ = admin_study(service, 2)
    first = service.join(code, "Dr Lee")
    with pytest.raises(ReviewError, match="cannot be used to join"):
        service.join(code, look_alike)
    assert service.join(code, look_alike, resume_code=first.token).token == first.token


def test_answer_refusals_leave_nothing_behind(service):
    code, _ = admin_study(service, 4)
    other_code, _ = admin_study(service, 2)
    reader = service.join(code, "R")
    foreign = service.current_case(service.join(other_code, "S").token).case_id
    current = service.current_case(reader.token).case_id
    later = next(c for c in service.store.reader_by_token(token_hash(reader.token))["case_order"] if c != current)
    refusals = [
        (dict(token="", case_id=current), "not recognised"),
        (dict(token="forged-token", case_id=current), "not recognised"),
        (dict(case_id=foreign), "not in your list"),
        (dict(case_id="../../etc/passwd"), "not in your list"),
        (dict(case_id=later), "on your screen first"),
        (dict(answer="maybe"), "'real' or 'synthetic'"),
        (dict(answer=None), "'real' or 'synthetic'"),
        (dict(confidence=0), "confidence"), (dict(confidence=6), "confidence"), (dict(confidence=2.5), "confidence"),
        (dict(confidence="high"), "confidence"), (dict(confidence=True), "confidence"),
        (dict(comment="x" * 1001), "under 1000"),
    ]
    for change, message in refusals:
        request = {"token": reader.token, "case_id": current, "answer": "real", "confidence": 3, **change}
        with pytest.raises(ReviewError, match=message):
            service.answer(request["token"], request["case_id"], request["answer"], request["confidence"],
                           request.get("comment", ""))
    assert service.store.integrity()["answers"] == 0
    assert service.current_case(reader.token).case_id == current


def test_admin_functions_need_the_admin_token(service, tmp_path):
    code, token = admin_study(service, 4)
    reader = service.join(code, "=HYPERLINK(\"http://x\")")  # a name that would run as a spreadsheet formula
    answer_all(service, reader.token)
    for wrong, message in [(None, "enter the admin token"), ("", "enter the admin token"),
                           ("wrong", "not valid"), (reader.token, "not valid")]:
        for call in (lambda: service.results(code, wrong), lambda: service.export_csv(code, wrong, tmp_path / "a.csv"),
                     lambda: service.blinding_report(code, wrong)):
            with pytest.raises(ReviewError, match=message):
                call()
    with pytest.raises(ReviewError, match="No study has the code"):
        service.results("ABCD-EFGH", token)
    assert not (tmp_path / "a.csv").exists()
    results = service.results(code, token, n_boot=50)
    assert results["n_answers"] == 4 and results["pooled"]["accuracy"]["value"] == 0.5
    csv = pd.read_csv(service.export_csv(code, token, tmp_path / "answers.csv"))
    assert len(csv) == 4 and set(csv.truth) == {"real", "synthetic"} and csv.reader[0].startswith("'=")
    assert service.results_plot(code, token, tmp_path / "results.png", n_boot=20).stat().st_size > 10_000


def test_concurrent_double_clicks_store_one_answer(service):
    code, _ = admin_study(service, 2)
    reader = service.join(code, "R")
    case = service.current_case(reader.token)
    outcomes = []

    def click(answer):
        try:
            outcomes.append(service.answer(reader.token, case.case_id, answer, 3).replay)
        except ReviewError:
            outcomes.append("refused")

    threads = [threading.Thread(target=click, args=("real" if k % 2 else "synthetic",)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    table = service.store.answers_table(code)
    assert len(table) == 1 and outcomes.count(False) == 1
    winner = table.answer[0]
    assert outcomes.count(True) == 5 and outcomes.count("refused") == 6, (winner, outcomes)


def test_a_click_that_read_before_a_simultaneous_click_stored_is_a_replay(service, monkeypatch):
    """The race behind the double-click test, made deterministic: this click read "no answer yet", then the other
    click stored the same answer. It must be a replay (a different answer: refused), never "answer the case on
    your screen first"."""
    code, _ = admin_study(service, 2)
    reader = service.join(code, "R")
    case = service.current_case(reader.token)
    service.answer(reader.token, case.case_id, "real", 3)
    stored = service.store.answer
    for answer, expected in (("real", True), ("synthetic", "already answered")):
        stale = [True]  # the first read is from before the other click's insert

        def answer_read(*args, stale=stale):
            return None if stale and stale.pop() else stored(*args)

        monkeypatch.setattr(service.store, "answer", answer_read)
        if expected is True:
            assert service.answer(reader.token, case.case_id, answer, 3).replay is True
        else:
            with pytest.raises(ReviewError, match=expected):
                service.answer(reader.token, case.case_id, answer, 3)
    assert len(service.store.answers_table(code)) == 1


def test_many_readers_concurrently_with_a_restart_lose_nothing(tmp_path):
    report = run_loadtest(tmp_path / "load.sqlite", n_readers=8, n_cases=10)
    assert report["errors"] == []
    assert (report["answers_expected"], report["answers_stored"]) == (80, 80)
    assert report["duplicates"] == 0 and report["lost"] == 0 and report["acknowledged_not_stored"] == 0
    assert report["stored_before_restart"] == 40 and report["resumed_at"] == [5]
    assert report["abusive_requests_refused"] == 16 and report["sqlite_quick_check"] == "ok"


def test_answers_survive_a_restart_and_a_killed_process(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    code = fake_study(store, 3)
    reader = session.join(store, code, "R")
    case = session.current_case(store, reader.token)
    session.submit_answer(store, reader.token, case.case_id, "real", 2)
    store.close()
    reopened = Store(tmp_path / "r.sqlite")
    assert session.resume(reopened, reader.token).answered == 1
    assert session.current_case(reopened, reader.token).position == 2
    assert reopened.path.with_name("r.sqlite-wal").exists()  # WAL mode
    reopened.close()
    crash = crash_check(tmp_path / "crash.sqlite", n_cases=60, kill_after=5)
    assert crash["acknowledged"] >= 5 and crash["lost"] == 0 and crash["sqlite_quick_check"] == "ok"


def test_a_name_that_looks_like_mathtext_is_plain_text_and_an_administrator_can_remove_a_reader(service, tmp_path):
    """Issue 37.7: a reader named "$\\frac{a}{$ math" made the results figure (and so the web results and
    ``results --plot``) fail for everyone. Names are plain text in the figure, and a reader can be removed."""
    from cardiosynth.review.__main__ import main as review_cli

    code, token = admin_study(service, 4)
    odd = service.join(code, r"$\frac{a}{$ math")
    answer_all(service, odd.token)
    plain = service.join(code, "Dr Plain")
    answer_all(service, plain.token, "real")
    assert service.results_plot(code, token, tmp_path / "results.png", n_boot=20).stat().st_size > 10_000
    assert review_cli(["--db", str(service.store.path), "results", "--study", code, "--token", token,
                       "--plot", str(tmp_path / "cli.png"), "--n-boot", "20"]) == 0
    assert (tmp_path / "cli.png").stat().st_size > 10_000

    with pytest.raises(ReviewError, match="not valid"):
        service.remove_reader(code, "wrong", r"$\frac{a}{$ math")
    with pytest.raises(ReviewError, match="No reader of this study has that name"):
        service.remove_reader(code, token, "Dr Nobody")
    assert review_cli(["--db", str(service.store.path), "remove-reader", "--study", code, "--token", token,
                       "--name", r"$\frac{a}{$ math"]) == 0
    results = service.results(code, token, n_boot=20)
    assert results["n_answers"] == 4 and [r["reader"] for r in results["readers"]] == ["Dr Plain"]
    assert len(pd.read_csv(service.export_csv(code, token, tmp_path / "answers.csv"))) == 4
    with pytest.raises(ReviewError, match="not recognised"):
        service.current_case(odd.token)  # the removed reader's session is over
    with pytest.raises(ReviewError, match="cannot be used"):
        service.join(code, r"$\frac{a}{$ math")  # and the name does not come back free
    with pytest.raises(ReviewError, match="cannot be used"):
        service.join(code, r"$\frac{a}{$ math", odd.token)  # not even with its resume code
    assert service.store.integrity(code)["answers"] == 8  # the rows stay, for the audit trail


def test_a_database_of_schema_1_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        for statement in Store.__init__.__globals__["SCHEMA"].replace("    removed_at REAL,\n", "").split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("PRAGMA user_version=1")
    store = Store(path)
    try:
        assert "removed_at" in {row[1] for row in store._connection().execute("PRAGMA table_info(readers)")}
    finally:
        store.close()
