"""Does synthetic data help? The papers' pretraining study on ACDC, as one command.

    python -m evaluation.pretraining --generator cpgg --mix 0 1 3 --folds 5        # the default
    python -m evaluation.pretraining --generator none                              # real-only rows
    python -m evaluation.pretraining --generator ecg --mix 0 1 2 3 --labelled-mix 3

A small ViT masked autoencoder (time as channels) is pretrained on the real train-split cines, alone or with k
times as many synthetic cines of the bundled generator; it is fine-tuned on real patients for the 5-class
diagnosis and 5 phenotypes, and tested on held-out patients (val + test) that neither it nor the generator
trained on, in stratified folds. Rows, folds and tests: :mod:`.study` and :mod:`.report`. Results are cached
per pretraining and per fold x row (re-run the same command to resume); the report goes to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from cardiosynth.data.prepare import load_or_prepare
from cardiosynth.paths import REPO_ROOT, cache_dir
from evaluation.pretraining import report
from evaluation.pretraining.folds import FoldError
from evaluation.pretraining.study import plan_study, run_study, target_scaler, truth
from evaluation.pretraining.synthetic import GENERATORS, pool_folder, synthetic_pool
from evaluation.pretraining.train import StudyConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", choices=GENERATORS, default="cpgg", help="whose synthetic cines are mixed in")
    parser.add_argument("--mix", type=int, nargs="+", default=[0, 1, 3],
                        help="synthetic cines per real pretraining cine, one row each (0 = real only)")
    parser.add_argument("--labelled-mix", type=int, default=3,
                        help="the mix* row: this mix's encoder fine-tuned with its synthetic cines as labelled "
                             "data (0: no such row)")
    parser.add_argument("--folds", type=int, default=5, help="test folds over the held-out patients")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, help=f"default {StudyConfig.pretrain_steps}")
    parser.add_argument("--finetune-steps", type=int, help=f"default {StudyConfig.finetune_steps}")
    parser.add_argument("--dataset", default="default", help="prepared ACDC dataset name")
    parser.add_argument("--out", type=Path, help="report folder (default reports/pretraining/<generator>)")
    parser.add_argument("--cache", type=Path, help="cached pools, encoders and fold results (default: the cache dir)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    config = StudyConfig(**{k: v for k, v in (("pretrain_steps", args.pretrain_steps),
                                              ("finetune_steps", args.finetune_steps)) if v is not None})
    cache = args.cache or cache_dir() / "pretraining"
    out = args.out or REPO_ROOT / "reports" / "pretraining" / args.generator
    dataset = load_or_prepare(args.dataset)
    try:
        plan = plan_study(dataset, args.generator, args.mix, args.folds, args.labelled_mix or None, config, args.seed)
    except (FoldError, ValueError) as error:
        sys.exit(f"error: {error}")
    n_real = int((dataset.table["split"] == "train").sum())
    pool, pool_seconds = None, 0.0
    if plan.synthetic_ratio:
        t = time.perf_counter()
        pool = synthetic_pool(args.generator, plan.synthetic_ratio * n_real, seed=args.seed,
                              folder=pool_folder(args.generator, plan.synthetic_ratio * n_real, args.seed, cache),
                              progress=not args.no_progress)
        pool_seconds = time.perf_counter() - t
    t = time.perf_counter()
    pretraining_loss: dict[str, float] = {}
    results = run_study(plan, dataset, pool, cache, progress=not args.no_progress, pretraining_loss=pretraining_loss)
    study_seconds = time.perf_counter() - t
    scaler_sd = target_scaler(dataset)[1]
    summary = report.summarise(results, truth(dataset), scaler_sd, args.seed)
    held = dataset.table[dataset.table["subject"].isin({s for f in plan.folds for s in f.test})]
    design = {
        "pretraining": f"{n_real} real train-split slice cines (+ k x {n_real} synthetic for mix k)",
        "finetuning": "every slice cine of the train-split patients and of the other folds' held-out patients",
        "test": f"{held['subject'].nunique()} held-out patients (val + test splits, {len(held)} slice cines), "
                f"{len(plan.folds)} folds stratified by diagnosis; none was a training patient of the generator",
        "folds": [{"fold": f.index, "test": list(f.test), "n_finetune_patients": len(f.finetune)} for f in plan.folds],
        "patient_prediction": "mean over the patient's slices of the slice model's probabilities / phenotypes",
    }
    record = {
        "command": "python -m evaluation.pretraining " + " ".join(argv if argv is not None else sys.argv[1:]),
        "generator": args.generator, "generator_sha256": pool.sha if pool is not None else None,
        "rows": plan.rows, "design": design, "config": dataclasses.asdict(config), "seed": args.seed,
        "minutes": {"synthesis": round(pool_seconds / 60, 1), "pretraining_and_finetuning": round(study_seconds / 60, 1),
                    "total": round((time.perf_counter() - started) / 60, 1)},
        "torch_threads": args.threads, "pretraining_final_loss": pretraining_loss, "summary": summary,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    tables = report.markdown_tables(summary)
    (out / "report.md").write_text(f"# Pretraining study: {args.generator}\n\n`{record['command']}`\n\n"
                                   f"Generator sha256: `{record['generator_sha256']}`\n\n{tables}")
    report.plot(summary, out / "metric_vs_mix.png")
    frames = [report.patient_frame(r, truth(dataset)).assign(row=row) for row, r in results.items()]
    pd.concat(frames).to_csv(out / "predictions.csv", index=False)
    print(tables)
    print(f"report: {out}")
    return record


if __name__ == "__main__":
    main()
