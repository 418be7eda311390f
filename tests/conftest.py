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
