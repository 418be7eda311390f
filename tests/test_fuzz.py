"""The atheris harnesses: every seed keeps the readers' contract, and a 30-second smoke run of each harness
finds nothing (the long runs' counts are in reports/ecg_fuzz.json; ``python -m fuzz.campaign``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cardiosynth.ecg import EcgError
from fuzz.campaign import run_target
from fuzz.seeds import seeds
from fuzz.targets import TARGETS, make_target


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_come_from_the_shared_examples_and_keep_the_contract(target, ecg_root):
    inputs = seeds(target)
    assert inputs, f"no seeds for {target}"
    call = make_target(target)
    results = 0
    for data in inputs:
        try:
            call(data)
            results += 1
        except EcgError:
            pass
    if target not in ("read_ecg", "standardise"):  # those two refuse short seeds, by design
        assert results == len(inputs), f"a shortened {target} seed no longer parses"


def test_every_harness_runs_30_seconds_without_a_finding(ecg_root, tmp_path):
    """Artifacts left by earlier runs are not reported as this run's. Two harnesses at a time (one per core: the 2-s hang limit is wall time, so more at once would read a
    CPU-starved input as a hang)."""
    (tmp_path / "artifacts").mkdir()
    for target in TARGETS:  # a fixed finding's input, kept from an earlier run: not this run's finding
        (tmp_path / "artifacts" / f"{target}-exception-0123abcd").write_bytes(b"earlier")

    def smoke(target):
        return run_target(target, seconds=30, artifacts=tmp_path / "artifacts", corpus=tmp_path / target, seed=1)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(smoke, TARGETS))
    for result in results:
        assert result["findings"] == [], f"{result['target']}: {result['log_tail']}"
        assert result["artifacts"] == [], result["artifacts"]
        assert result["inputs"] >= 10, result
