"""Counters on every place a request could be parsed or checked, for the tests that a Generate click and an ECG
upload each parse and check their request exactly once (issue 40): the phenotype parser, the name mapping, the
sampler settings, the plausibility score, neurokit2's analysis and the ECG MAE's encoding."""

from __future__ import annotations

import functools
import time
from collections import Counter

from cardiosynth import phenotypes as ph
from cardiosynth.phenotype_prior import PhenotypePrior
from cardiosynth.pipelines import ecg_to_cine
from cardiosynth.pipelines.requests import PhenotypeRequest, Sampling


def count_parsing(monkeypatch) -> Counter:
    """A Counter that each parse or check adds one to, under its name, while the test runs."""
    counts: Counter = Counter()

    def counted(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(PhenotypeRequest, "parse", classmethod(counted("phenotypes parsed",
                                                                       PhenotypeRequest.parse.__func__)))
    monkeypatch.setattr(Sampling, "parse", classmethod(counted("settings checked", Sampling.parse.__func__)))
    monkeypatch.setattr(ph, "map_columns", counted("names mapped", ph.map_columns))
    for scorer in ("plausibility", "plausibility_checked"):
        monkeypatch.setattr(PhenotypePrior, scorer, counted("plausibility scored", getattr(PhenotypePrior, scorer)))
    monkeypatch.setattr(ecg_to_cine, "process_ecg", counted("ECG analysed (neurokit2)", ecg_to_cine.process_ecg))
    monkeypatch.setattr(ecg_to_cine, "encode_ecg", counted("ECG encoded (ECG MAE)", ecg_to_cine.encode_ecg))
    return counts


def settled(counts: Counter, quiet_s: float = 1.0, timeout_s: float = 30.0) -> Counter:
    """The counts once nothing adds to them any more: in a browser, the steps Gradio's page chains after an
    endpoint answers (the figure, the downloads, the re-drawn plausibility) come a moment later."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        now = Counter(counts)
        if now == last:
            return now
        last = now
        time.sleep(quiet_s)
    return Counter(counts)
