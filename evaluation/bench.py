"""Benchmark harness: time a generator after warm-up, excluding I/O; median of repeats; JSON out.

    python -m evaluation.bench --generator group-mean --batch-size 1 --repeats 5
    python -m evaluation.bench --generator cpgg --batch-size 1       # phenotypes -> cine, bundled weights
    python -m evaluation.bench --target measure      # the measurement pipeline itself
    python -m evaluation.bench --target ecg-to-cine  # ECG -> cine, bundled weights and example ECG

Conditions are drawn once before timing (real validation rows), so only generation is timed. For ECG -> cine
the timed call is the whole pipeline on an ECG already read into memory (MAE, cycle, anatomy, flow, decoder).
Machines differ 2-3x in speed: every result also records this machine's fp32 matmul GFLOP/s, measured in the
same run (``matmul_gflops``), so figures from two machines can be compared.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from cardiosynth.data.dataset import load_prepared
from cardiosynth.ecg import read_ecg
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.measure.timing import time_callable
from cardiosynth.paths import REPO_ROOT
from cardiosynth.pipelines.ecg_to_cine import EcgToCine
from cardiosynth.pipelines.generators import KNOWN_GENERATORS, RealCines, build_generator


def benchmark_generator(generator, conditions: pd.DataFrame, batch_size: int, warmup: int = 2, repeats: int = 5) -> dict:
    batch = conditions.iloc[:batch_size].reset_index(drop=True)
    if len(batch) < batch_size:
        raise ValueError(f"Only {len(batch)} conditions available for a batch of {batch_size}")
    return {"target": generator.name, **time_callable(lambda: generator.generate(batch), batch_size, warmup, repeats)}


def benchmark_ecg_to_cine(warmup: int = 2, repeats: int = 5, ecg_file: str | None = None, device: str = "auto") -> dict:
    pipe = EcgToCine.from_pretrained(device=device)
    ecg = read_ecg(ecg_file or REPO_ROOT / "assets" / "ecg" / "ludb" / "2.hea")
    s = pipe.flow.config.sampler
    return {"target": f"ecg-to-cine ({s.sampling_steps} {s.method} steps, cfg {s.cfg}; ECG {ecg_file or 'LUDB 2'})",
            **time_callable(lambda: pipe(ecg, seed=0), 1, warmup, repeats)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["generator", "measure", "ecg-to-cine"], default="generator")
    parser.add_argument("--generator", default="group-mean", help=KNOWN_GENERATORS)
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
