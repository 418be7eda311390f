"""``python -m fuzz.campaign --runs 1000000 --minutes 10``: every harness in turn, counts into one report.

Each harness runs in its own process (libFuzzer exits the process when it is done or finds something) with
a 2-second per-input timeout and a 3 GB memory limit, for at most ``--minutes`` per target per call. Counts
accumulate in ``reports/ecg_fuzz.json`` across calls and machines (the corpus under ``--corpus`` grows with
them, and is re-seeded if lost), so a target that parses slowly reaches its million over several calls;
targets that already have ``--runs`` inputs without a finding are skipped. A finding (its input kept under
``--artifacts``) stops that target; the next call (after the fix) counts it again from zero, from its corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cardiosynth.paths import REPO_ROOT
from fuzz.targets import TARGETS

TIMEOUT_S = 2
RSS_LIMIT_MB = 3072
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_STATUS = re.compile(r"#(\d+)\s+(?:pulse|NEW|REDUCE|DONE|INITED)\s+cov: (\d+)")
_FINDINGS = {
    "Uncaught Python exception": "exception",
    "ERROR: libFuzzer: timeout": "hang",
    "ERROR: libFuzzer: out-of-memory": "memory",
    "ERROR: libFuzzer: deadly signal": "crash",
}


def _finding_excerpt(log: str) -> str:
    """The traceback (or libFuzzer's error report) of a finding, not the status lines around it."""
    marks = [log.find(m) for m in (*_FINDINGS, "ERROR: libFuzzer") if m in log]
    return log[min(marks):min(marks) + 3000] if marks else log[-3000:]


def fuzz_command(target: str, runs: int | None, seconds: int | None, artifacts: Path,
                 corpus: Path | None = None, seed: int | None = None) -> list[str]:
    flags = [f"-timeout={TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
             f"-artifact_prefix={artifacts}/{target}-", "-print_final_stats=1"]
    flags += [f"-seed={seed}"] if seed is not None else []
    flags += [f"-runs={runs}"] if runs else []
    flags += [f"-max_total_time={seconds}"] if seconds else []
    return [sys.executable, "-m", "fuzz", target, *flags, *([str(corpus)] if corpus else [])]


def run_target(target: str, runs: int | None = None, seconds: int | None = None,
               artifacts: Path = Path("/tmp/cardiosynth-fuzz-artifacts"), corpus: Path | None = None,
               seed: int | None = None) -> dict:
    """Run one harness; its input count, time, coverage and findings (none when the contract held).
    ``seed`` fixes libFuzzer's choices (a smoke test should not find something new by chance)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    earlier = {p.name for p in artifacts.glob(f"{target}-*")}  # other runs' findings, fixed or not: not this run's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    # Started as a child of a small shell, not of this process: Linux carries a process's peak memory across
    # exec, so a harness started from a large parent (a test run with models loaded) would begin "over" the
    # memory limit; a fresh fork of the shell begins at its own size.
    command = ["sh", "-c", '"$@" & wait $!', "sh", *fuzz_command(target, runs, seconds, artifacts.resolve(), corpus, seed)]
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, errors="replace")
    elapsed = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    done = _DONE.findall(log)
    status = _STATUS.findall(log)
    findings = sorted({kind for marker, kind in _FINDINGS.items() if marker in log})
    if proc.returncode != 0 and not findings:
        findings = [f"exit status {proc.returncode}"]
    inputs = int(done[-1][0]) if done else (int(status[-1][0]) if status else 0)
    return {
        "target": target,
        "inputs": inputs,
        "seconds": round(elapsed, 1),
        "inputs_per_second": round(inputs / elapsed, 1) if elapsed else None,
        "coverage_edges": int(status[-1][1]) if status else None,
        "findings": findings,
        "artifacts": sorted(p.name for p in artifacts.glob(f"{target}-*") if p.name not in earlier),
        "log_tail": _finding_excerpt(log) if findings else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs each harness should reach, in all")
    parser.add_argument("--minutes", type=float, default=10.0, help="at most this long per target per call")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated harnesses")
    parser.add_argument("--jobs", type=int, default=1, help="harnesses at once (at most one per core: the hang "
                                                            "limit is wall time)")
    parser.add_argument("--recount", default="", help="comma-separated harnesses whose code changed since they "
                                                        "were counted: counted again from zero")
    parser.add_argument("--reason", default="", help="why, kept in the report beside the earlier count")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "ecg_fuzz.json")
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/cardiosynth-fuzz-corpus"))
    parser.add_argument("--artifacts", type=Path, default=Path("/tmp/cardiosynth-fuzz-artifacts"))
    args = parser.parse_args(argv)
    report = json.loads(args.out.read_text()) if args.out.exists() else {"targets": {}}
    report.update(goal_inputs_per_target=args.runs, timeout_s=TIMEOUT_S, rss_limit_mb=RSS_LIMIT_MB,
                  command="python -m fuzz.campaign --runs 1000000 --minutes <per target per call>")
    for target in filter(None, args.recount.split(",")):
        total = report["targets"].get(target)
        if total and total["inputs"]:
            total.setdefault("earlier_counts", []).append({"inputs": total["inputs"], "reason": args.reason})
            total.update(inputs=0, seconds=0.0, reached_goal=False)
    lock = threading.Lock()

    def one(target: str) -> None:
        with lock:
            total = report["targets"].get(target, {"inputs": 0, "seconds": 0.0, "calls": []})
            if total.get("findings"):  # fixed since (or not): count again from zero, on the code as it is now
                total.update(inputs=0, seconds=0.0, findings_before=total.get("findings_before", []) + total["findings"])
            left = args.runs - total["inputs"]
        if left <= 0:
            return
        call = run_target(target, runs=max(left, 1), seconds=int(args.minutes * 60), artifacts=args.artifacts,
                          corpus=args.corpus / target)
        call["date"] = time.strftime("%Y-%m-%d %H:%M")
        with lock:
            total["calls"].append({k: call[k] for k in ("date", "inputs", "seconds", "inputs_per_second", "findings")})
            total.update(inputs=total["inputs"] + call["inputs"], seconds=round(total["seconds"] + call["seconds"], 1),
                         coverage_edges=call["coverage_edges"], findings=call["findings"], artifacts=call["artifacts"],
                         log_tail=call["log_tail"], reached_goal=total["inputs"] + call["inputs"] >= args.runs)
            report["targets"][target] = total
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(f"{target}: +{call['inputs']} inputs in {call['seconds']} s ({total['inputs']} in all), "
                  f"findings: {call['findings'] or 'none'}", flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, args.targets.split(",")))
    return 0 if all(not t["findings"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
