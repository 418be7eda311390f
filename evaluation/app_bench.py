"""``python -m evaluation.app_bench``: time the app as a user meets it; prints JSON.

- ``cold_start_s``: from spawning ``python app.py --port P`` to the first ``GET /`` answered 200 (page served).
- ``client_ms``: gradio_client round trips (queue included) for ``/sample``, ``/plausibility`` and
  ``/ecg_example`` (the first ECG call is reported apart: it may pay for importing the ECG stack),
  ``/ecg_generate`` (a cine from that ECG: GIF, synced figure and cycle back; downloads follow in a chained step).
  ``/generate`` (phenotypes -> cine: GIF + values back; the figure and downloads follow in a chained step).
- ``browser`` (``--browser``): headless Chromium clicks "Sample a heart" and waits until the plausibility
  indicator shows the new heart (click -> result on screen), then until the population plot shows it; and
  clicks "Generate cine" and waits until the new animated cine is on screen (click -> animation), then until
  the frame figure and the downloads of that result are there too; the next click comes only after that,
  as a user's would.

The server is a separate process started and stopped by this command; nothing else is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cardiosynth import phenotypes as ph
from cardiosynth.app.ui import launch_kwargs
from cardiosynth.paths import REPO_ROOT
from cardiosynth.weights import read_config

CHROMIUM = os.environ.get("CARDIOSYNTH_CHROMIUM", "/usr/bin/chromium")  # Debian's; never a downloaded one
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A free TCP port on loopback (for serving the app in tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_process(demo, **security):
    """Serve ``demo`` (the app's Blocks) on a free loopback port in this process; yields its URL (for tests).
    ``security``: :func:`cardiosynth.app.security.secure_launch_kwargs`'s options (proxies, hosts, uploads)."""
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **launch_kwargs(demo, "127.0.0.1", **security))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def latency_stats(ms: list[float]) -> dict:
    """Count, median, min, p90 and max of latencies in milliseconds (shared by the app's load tests)."""
    ordered = sorted(ms)
    return {"n": len(ms), "median": round(statistics.median(ms), 1), "min": round(ordered[0], 1),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1), "max": round(ordered[-1], 1)}


def wait_for_page(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Block until ``app.py`` (started as ``process``) serves ``url``; a clear error if it exits or times out."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode} before serving the page")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no page at {url} after {timeout:g} s")


def _client_latency(url: str, repeats: int) -> dict:
    from gradio_client import Client


    client = Client(url, verbose=False, download_files=False)
    sample_ms, score_ms, ecg_ms = [], [], []
    values = None
    for i in range(repeats):
        t = time.perf_counter()
        result = client.predict(1.0, i, api_name="/sample")
        sample_ms.append(1000 * (time.perf_counter() - t))
        values = list(result[:len(ph.NAMES)])
    for i in range(repeats):
        values[4] = 100.0 + i  # LVM
        t = time.perf_counter()
        client.predict(*values, api_name="/plausibility")
        score_ms.append(1000 * (time.perf_counter() - t))
    example = "LUDB record 2: sinus rhythm (WFDB)"
    for _ in range(max(2, repeats // 4) + 1):
        t = time.perf_counter()
        client.predict(example, api_name="/ecg_example")
        ecg_ms.append(1000 * (time.perf_counter() - t))
    report = {"sample": latency_stats(sample_ms), "plausibility": latency_stats(score_ms),
              "ecg_example_first": round(ecg_ms[0], 1), "ecg_example": latency_stats(ecg_ms[1:])}
    endpoints = client.view_api(print_info=False, return_format="dict").get("named_endpoints", {})
    if "/ecg_generate" in endpoints:  # a cine from the ECG just read (kept in this client's session)
        flow = read_config(REPO_ROOT / "weights" / "ecg_flow")["config"]["sampler"]  # where the app's controls start
        ecg_cine_ms = []
        for i in range(repeats):
            t = time.perf_counter()
            client.predict(i, flow["sampling_steps"], flow["cfg"], 0.5, api_name="/ecg_generate")
            ecg_cine_ms.append(1000 * (time.perf_counter() - t))
        report["ecg_generate"] = latency_stats(ecg_cine_ms)
    if "/generate" in endpoints:
        generate_ms = []
        for i in range(repeats):
            t = time.perf_counter()
            client.predict(*values, i, 8, 3.0, 0.5, api_name="/generate")
            generate_ms.append(1000 * (time.perf_counter() - t))
        report["generate"] = latency_stats(generate_ms)
    return report


def _browser_latency(url: str, repeats: int, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    clicks = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            t = time.perf_counter()
            page.goto(url)
            page.locator("#plausibility .cs-plaus").wait_for(timeout=30_000)
            first_paint = 1000 * (time.perf_counter() - t)
            plots = []
            for _ in range(repeats):
                old = page.locator("#plausibility .cs-plaus").get_attribute("data-key")
                t = time.perf_counter()
                page.locator("#sample-btn").click()
                page.wait_for_function(
                    "old => { const el = document.querySelector('#plausibility .cs-plaus');"
                    " return el && el.dataset.key !== old; }", arg=old, timeout=30_000)
                clicks.append(1000 * (time.perf_counter() - t))
                lvedv = float(page.locator("#plausibility .cs-plaus").get_attribute("data-key").split(",")[0])
                page.wait_for_function(  # the population plot follows in a chained step
                    "v => { const gd = document.querySelector('#population-plot .js-plotly-plot');"
                    " const line = gd && gd.data && gd.data.find(t => t.name === 'this heart');"
                    " return line && Math.abs(line.x[0] - v) < 1e-6; }", arg=lvedv, timeout=30_000)
                plots.append(1000 * (time.perf_counter() - t))
            generated, settled = [], []
            if page.locator("#generate-btn").count():
                for _ in range(repeats):
                    old = page.locator("#cine-now img").get_attribute("src") if page.locator("#cine-now img").count() else ""
                    t = time.perf_counter()
                    page.locator("#generate-btn").click()
                    page.wait_for_function(
                        "old => { const img = document.querySelector('#cine-now img');"
                        " return img && img.src && img.src !== old && img.complete && img.naturalWidth > 0; }",
                        arg=old, timeout=30_000)
                    generated.append(1000 * (time.perf_counter() - t))
                    # A user looks at the result before clicking again: wait for the chained step (frame figure
                    # and downloads) too, so the next click is not queued behind it.
                    stem = page.locator("#cine-now img").get_attribute("src").rsplit("/", 1)[-1].split(".")[0]
                    page.wait_for_function(
                        "stem => Array.from(document.querySelectorAll('#cine-files a'))"
                        ".some(a => (a.href || '').includes(stem) && (a.href || '').includes('.mp4'))",
                        arg=stem, timeout=30_000)
                    settled.append(1000 * (time.perf_counter() - t))
        finally:
            browser.close()
    return {"page_load_to_indicator_ms": round(first_paint, 1), "sample_click_to_indicator_ms": latency_stats(clicks),
            "sample_click_to_plot_ms": latency_stats(plots),
            **({"generate_click_to_animation_ms": latency_stats(generated),
                "generate_click_to_figure_and_downloads_ms": latency_stats(settled)} if generated else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.app_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="calls per endpoint (default 20)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for app.py (default: its own)")
    parser.add_argument("--browser", action="store_true", help="also time clicks in headless Chromium")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the page")
    args = parser.parse_args(argv)

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    report = {"command": " ".join(command), "python": platform.python_version(), "cpus": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    t0 = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_page(url, process, args.timeout)
        report["cold_start_s"] = round(time.perf_counter() - t0, 2)
        report["client_ms"] = _client_latency(url, args.repeats)
        if args.browser:
            if Path(args.chromium).is_file():
                report["browser"] = _browser_latency(url, max(5, args.repeats // 2), args.chromium)
            else:
                report["browser"] = f"skipped: no Chromium at {args.chromium}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
