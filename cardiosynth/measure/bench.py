"""Benchmark harness: time a generator after warm-up, excluding I/O; median of repeats; JSON out.

    python -m cardiosynth.measure.bench --generator group-mean --batch-size 1 --repeats 5
    python -m cardiosynth.measure.bench --generator cpgg --batch-size 1       # phenotypes -> cine, bundled weights
    python -m cardiosynth.measure.bench --target measure      # the measurement pipeline itself
    python -m cardiosynth.measure.bench --target ecg-to-cine  # ECG -> cine, bundled weights and example ECG

Conditions are drawn once before timing (real validation rows), so only generation is timed. For ECG -> cine
the timed call is the whole pipeline on an ECG already read into memory (MAE, cycle, anatomy, flow, decoder).
Machines differ 2-3x in speed: every result also records this machine's fp32 matmul GFLOP/s, measured in the
same run (``matmul_gflops``), so figures from two machines can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable

import pandas as pd
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


def benchmark_generator(generator, conditions: pd.DataFrame, batch_size: int, warmup: int = 2, repeats: int = 5) -> dict:
    batch = conditions.iloc[:batch_size].reset_index(drop=True)
    if len(batch) < batch_size:
        raise ValueError(f"Only {len(batch)} conditions available for a batch of {batch_size}")
    return {"target": generator.name, **time_callable(lambda: generator.generate(batch), batch_size, warmup, repeats)}


def benchmark_ecg_to_cine(warmup: int = 2, repeats: int = 5, ecg_file: str | None = None, device: str = "auto") -> dict:
    from cardiosynth.ecg import read_ecg
    from cardiosynth.paths import REPO_ROOT
    from cardiosynth.pipelines.ecg_to_cine import EcgToCine

    pipe = EcgToCine.from_pretrained(device=device)
    ecg = read_ecg(ecg_file or REPO_ROOT / "assets" / "ecg" / "ludb" / "2.hea")
    c = pipe.flow.config
    return {"target": f"ecg-to-cine ({c.sampling_steps} {c.sampler} steps, cfg {c.cfg}; ECG {ecg_file or 'LUDB 2'})",
            **time_callable(lambda: pipe(ecg, seed=0), 1, warmup, repeats)}


def main(argv: list[str] | None = None) -> None:
    from cardiosynth.data.dataset import load_prepared
    from cardiosynth.measure.generators import RealCines, build_generator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["generator", "measure", "ecg-to-cine"], default="generator")
    parser.add_argument("--generator", default="group-mean", help="real, nearest-train, group-mean, cpgg[:folder]")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (cpgg, ecg-to-cine)")
    args = parser.parse_args(argv)

    if args.target == "ecg-to-cine":
        print(json.dumps(benchmark_ecg_to_cine(args.warmup, args.repeats, device=args.device), indent=2))
        return
    dataset = load_prepared(args.dataset)
    conditions = RealCines(dataset, "val").conditions()
    if args.target == "measure":
        from cardiosynth.measure.measurer import CineMeasurer

        measurer = CineMeasurer()
        cines = RealCines(dataset, "val").generate(conditions.iloc[:args.batch_size])
        result = {"target": "measure (segment all frames + curves + estimator)",
                  **time_callable(lambda: measurer.measure(cines), args.batch_size, args.warmup, args.repeats)}
    else:
        result = benchmark_generator(build_generator(args.generator, dataset, device=args.device), conditions, args.batch_size,
                                     args.warmup, args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
