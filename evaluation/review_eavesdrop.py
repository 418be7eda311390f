"""``python -m evaluation.review_eavesdrop``: what someone who knows a page's Gradio session hash receives.

Gradio delivers an event's outputs to whoever polls ``/gradio_api/queue/data?session_hash=H``, and H is in
the page's own request URLs (so in proxy logs). ``--tries`` times, a reader joins and an administrator
creates a study (and, on checkouts older than the review routes, shows the results) while an eavesdropper
without cookies reads that session's queue. Counted: resume codes, admin tokens, study codes and answer-CSV
links it received. It measures the checkout it runs in; the branch for the older Gradio-only flow is kept so
that the same command measures both sides of issue 37. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import urllib.request
from pathlib import Path

import httpx

from cardiosynth.app import build_app, review_tab
from cardiosynth.app.cine_studio import CineStudio
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer
from cardiosynth.data.prepare import load_or_prepare
from cardiosynth.review import ReviewService
from cardiosynth.review.render import RenderSettings
from evaluation.app_bench import serve_in_process

PASSWORD = "correct horse battery staple"
GENERATOR = "Group-mean cine (a trivial baseline)"
COOKIE_FLOW = hasattr(review_tab, "JOIN_JS")  # the review routes (issue 37) rather than Gradio outputs


def _fn_index(url: str, api_name: str) -> int:
    config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def eavesdrop(url: str, session_hash: str, api_name: str, data: list, cookie: str = "") -> str:
    """Send an event as the page would (with its cookies), and read its session's queue without them."""
    body = json.dumps({"data": data, "fn_index": _fn_index(url, api_name), "session_hash": session_hash,
                       "event_data": None, "trigger_id": None}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{url}gradio_api/queue/join", data=body, method="POST", headers={
        "Content-Type": "application/json", "Cookie": cookie}), timeout=30).read()
    heard = []
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session_hash}", timeout=120) as stream:
        for line in stream:
            heard.append(line.decode())
            if "process_completed" in heard[-1]:
                break
    return "".join(heard)


def _try_cookie_flow(url: str, code: str, k: int) -> dict:
    token = httpx.post(url + "review-session/join", json={"code": code, "name": f"Dr {k}", "resume": ""}).json()
    heard = eavesdrop(url, f"reader{k:08d}", "review_case", [1], f"cardiosynth_reader={token['resume_code']}")
    found = {"resume_code": token["resume_code"] in heard}
    admin = httpx.Client(base_url=url)
    admin.post("review-session/admin/sign-in", json={"password": PASSWORD})
    heard = eavesdrop(url, f"admin{k:09d}", "review_create", [2, 2, GENERATOR, "val", "matched", 1.0, 1, ""],
                      f"cardiosynth_admin={admin.cookies['cardiosynth_admin']}")
    created = admin.get("review-session/admin/created").json()
    return {**found, "admin_token": created["admin_token"] in heard, "study_code": created["code"] in heard,
            "answers_link": "answers" in heard}


def _try_gradio_flow(url: str, study, k: int) -> dict:
    heard = eavesdrop(url, f"reader{k:08d}", "review_join", [study.display_code, f"Dr {k}", ""])
    completed = next(line for line in heard.splitlines() if "process_completed" in line)
    token = json.loads(completed[len("data: "):])["output"]["data"][3]
    created = eavesdrop(url, f"admin{k:09d}", "review_create", [2, 2, GENERATOR, "val", "matched", 1.0, 1, "",
                                                                 PASSWORD])
    results = eavesdrop(url, f"results{k:07d}", "review_results", [study.display_code, study.admin_token, PASSWORD])
    return {"resume_code": token in heard, "admin_token": "admin token **" in created,
            "study_code": "code **" in created, "answers_link": "_answers.csv" in results}


def run(tries: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="cardiosynth-eavesdrop-"))
    service = ReviewService(folder / "review.sqlite", folder / "studies", admin_password=PASSWORD)
    study = service.create_study("group-mean", 2, 2, "val", "matched", dataset=load_or_prepare("default"),
                                 settings=RenderSettings(size=64, frames_per_cycle=8), seed=0)
    obtained = {"resume_code": 0, "admin_token": 0, "study_code": 0, "answers_link": 0}
    with serve_in_process(build_app(PhenotypeExplorer(), CineStudio(load=False), service)) as url:
        for k in range(tries):
            found = _try_cookie_flow(url, study.display_code, k) if COOKIE_FLOW else _try_gradio_flow(url, study, k)
            for key, value in found.items():
                obtained[key] += bool(value)
    service.close()
    return {"flow": "review routes + HttpOnly cookies" if COOKIE_FLOW else "Gradio outputs", "tries": tries,
            "secrets_obtained": obtained}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=10)
    print(json.dumps(run(parser.parse_args(argv).tries), indent=2))


if __name__ == "__main__":
    main()
