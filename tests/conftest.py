"""Shared fixtures. Tests that need ../shared/data skip without it, except in CI (CI=true), where a
missing data folder is a failure: CI must exercise the real data, not silently skip it."""

from __future__ import annotations

import os

import pytest
import torch

from cardiosynth.paths import data_root

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _shared_dataset(name: str):
    folder = data_root() / name
    if not folder.is_dir():
        message = f"shared data not found at {folder} (set CARDIOSYNTH_DATA)"
        if IN_CI:
            pytest.fail(f"CI requires the real data: {message}")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def acdc_root():
    """The real ACDC subset (../shared/data/acdc)."""
    return _shared_dataset("acdc")


@pytest.fixture(scope="session")
def ecg_root():
    """The real ECG data (../shared/data/ecg: LUDB + clinical format examples)."""
    return _shared_dataset("ecg")


@pytest.fixture()
def one_thread():
    """Tiny models run fastest on one thread, and on a CPU shared with other jobs two threads crawl.
    Restores the previous setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def prepared_default(acdc_root, tmp_path_factory):
    """The real prepared dataset (default config): the cached one, or prepared into a tmp folder (~10 s)."""
    from cardiosynth.data.dataset import load_prepared, prepared_folder
    from cardiosynth.data.prepare import CONFIGS, prepare_acdc

    folder = prepared_folder("default")
    if not (folder / "dataset.npz").is_file():
        folder = tmp_path_factory.mktemp("prepared") / "acdc_default"
        prepare_acdc(acdc_root, CONFIGS["default"], folder, progress=False)
    return load_prepared(folder)


def _skipped(config) -> list:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return reporter.stats.get("skipped", []) if reporter else []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if IN_CI and _skipped(config):
        terminalreporter.write_line(f"CI: {len(_skipped(config))} test(s) skipped; in CI every test must run "
                                    "(data, Chromium and all), so this run fails", red=True)


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: every test must run there."""
    if IN_CI and _skipped(session.config) and exitstatus == 0:
        session.exitstatus = 1
