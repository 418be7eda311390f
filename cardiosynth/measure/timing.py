"""Timing with the machine beside it: median wall time after warm-up, and this machine's fp32 matmul speed.

Machines differ 2-3x in speed, so every timing carries ``device_description()`` (the CPU's fp32 matmul GFLOP/s
measured in the same run) and figures from two machines can be compared. Used by the benchmark commands in
``evaluation/`` and by the trainers that report encode / decode times.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """This machine's fp32 matmul speed on the CPU with torch's threads: the best of ``repeats`` size^3 products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return round(2 * size ** 3 / best / 1e9, 1)


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def device_description() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_gflops": matmul_gflops(),
    }


def time_callable(run_batch: Callable[[], object], batch_size: int, warmup: int = 2, repeats: int = 5) -> dict:
    """Median wall time of ``run_batch()`` over ``repeats`` after ``warmup`` calls, per batch and per cine."""
    if batch_size < 1 or repeats < 1:
        raise ValueError("batch_size and repeats must be at least 1")
    for _ in range(warmup):
        run_batch()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_batch()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        **device_description(),
        "batch_size": batch_size,
        "warmup": warmup,
        "repeats": repeats,
        "seconds_per_batch_median": round(median, 4),
        "seconds_per_batch_all": [round(t, 4) for t in times],
        "seconds_per_cine": round(median / batch_size, 4),
        "cines_per_second": round(batch_size / median, 3),
    }
