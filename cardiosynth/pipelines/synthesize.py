"""Bulk synthesis: N synthetic cines with their conditions, for pretraining data (the papers' use case).

    python -m cardiosynth.pipelines.synthesize --n 1000 --out synthetic/              # phenotypes from the VAE
    python -m cardiosynth.pipelines.synthesize --phenotypes sets.csv --out synthetic/  # one cine per CSV row
    torchrun --nproc-per-node 4 -m cardiosynth.pipelines.synthesize --n 100000 --out synthetic/   # sharded

The run is planned up front (``plan.csv``: every cine's phenotypes, slice position, chunk and seed, all drawn
from ``--seed``), then generated chunk by chunk; each cine file is written atomically. Re-running the same
command resumes: finished chunks are skipped, so an interrupted run and an uninterrupted one give the same
files (``--format dcm``: the same pixels and tags, but DICOM UIDs are new for every file written). Under
``torchrun`` each process (RANK of WORLD_SIZE) takes every WORLD_SIZE-th chunk; the last one to finish writes
``conditions.csv`` (plan rows + file names) once every cine exists.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cardiosynth import phenotypes as ph
from cardiosynth.export import atomic_path, save_cine
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
from cardiosynth.weights import WEIGHTS_DIR

PLAN_FILE, SETTINGS_FILE, CONDITIONS_FILE = "plan.csv", "synthesis.json", "conditions.csv"
OUTPUT_FORMATS = ("npz", "nii.gz", "dcm")  # one file per cine; dcm: a multi-frame DICOM (export.dicom_dataset)


class SynthesisError(RuntimeError):
    """The output folder or the request cannot be used; the message says how to fix it."""


def plan(pipe: PhenotypeToCine, n: int | None, phenotypes_csv: str | None, seed: int, chunk_size: int,
         phenotype_temperature: float) -> pd.DataFrame:
    """Every cine's conditions, drawn once from ``seed``: VAE samples (or the CSV's rows, completed by the VAE)
    and slice positions uniform over base..apex (or the CSV's ``slice_position``)."""
    rng = np.random.default_rng(seed)
    if phenotypes_csv:
        try:
            table = pd.read_csv(phenotypes_csv)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise SynthesisError(f"Could not read the phenotype CSV {phenotypes_csv}: {error}") from None
        if n is not None:
            table = table.iloc[:n]
        positions = table["slice_position"] if "slice_position" in table else rng.uniform(0, 1, len(table))
        sets = pipe.resolve_conditions(table.drop(columns=["slice_position"], errors="ignore"))
        sets["slice_position"] = np.asarray(positions, dtype=float)
    else:
        if not n:
            raise SynthesisError("Give --n (how many cines) or --phenotypes (a CSV with one set per row)")
        sets = pipe.phenotype_prior.sample(n, temperature=phenotype_temperature, seed=seed)[list(ph.NAMES)]
        sets["slice_position"] = rng.uniform(0, 1, n)
        sets["completed"] = ""
    sets = sets.reset_index(drop=True)
    sets.insert(0, "index", np.arange(len(sets)))
    sets["chunk"] = sets["index"] // chunk_size
    sets["seed"] = seed * 1_000_003 + sets["chunk"]
    return sets


def file_name(index: int, fmt: str) -> str:
    return f"cine_{index:07d}.{fmt}"


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)


def prepare_folder(out: Path, settings: dict, make_plan, rank: int) -> pd.DataFrame:
    """Create the run (settings + plan) or check that the folder holds this very run, then return the plan."""
    settings_path, plan_path = out / SETTINGS_FILE, out / PLAN_FILE
    if settings_path.is_file():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
            raise SynthesisError(f"{out} holds a different synthesis run (differs in: {', '.join(changed)}). "
                                 "Use a new --out folder, or the original options to resume.")
        if plan_path.is_file():
            return pd.read_csv(plan_path, keep_default_na=False)
    # deterministic, so every rank computes the same plan; through CSV text so a resumed run sees the same floats
    table = pd.read_csv(io.StringIO(make_plan().to_csv(index=False)), keep_default_na=False)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(table, plan_path)
        with atomic_path(settings_path) as temporary:
            temporary.write_text(json.dumps(settings, indent=2))
    return table


def _rank_device(device: str, rank: int) -> str:
    """Under torchrun each rank takes its own GPU (LOCAL_RANK) when ``device`` is auto or cuda."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
    return device


def synthesize(out: Path, n: int | None = None, phenotypes_csv: str | None = None, seed: int = 0, fmt: str = "npz",
               chunk_size: int = 8, steps: int | None = None, cfg: float | None = None,
               temperature: float | None = None, phenotype_temperature: float = 1.0,
               weights: str | Path = WEIGHTS_DIR, rank: int = 0, world_size: int = 1, progress: bool = True,
               pipe: PhenotypeToCine | None = None, device: str = "auto", decoded: bool = False) -> dict:
    """Generate this rank's missing chunks; return counts. See the module docstring."""
    if fmt not in OUTPUT_FORMATS:
        raise SynthesisError("--format must be one of " + ", ".join(OUTPUT_FORMATS))
    if chunk_size < 1:
        raise SynthesisError("--chunk-size must be at least 1")
    pipe = pipe or PhenotypeToCine.from_pretrained(weights, device=_rank_device(device, rank), decoded=decoded)
    settings = {"n": n, "phenotypes_csv": str(phenotypes_csv) if phenotypes_csv else None, "seed": seed,
                "format": fmt, "chunk_size": chunk_size, "steps": steps, "cfg": cfg, "temperature": temperature,
                "phenotype_temperature": phenotype_temperature, "weights_sha256": pipe.sha,
                "rendered": pipe.rendering is not None}
    table = prepare_folder(out, settings, lambda: plan(pipe, n, phenotypes_csv, seed, chunk_size, phenotype_temperature),
                           rank)
    chunks = [c for c in sorted(table["chunk"].unique()) if c % world_size == rank]
    todo = [c for c in chunks if not all((out / file_name(i, fmt)).is_file() for i in table.index[table.chunk == c])]
    made = 0
    for chunk in tqdm(todo, desc=f"synthesis (rank {rank}/{world_size})", unit="chunk", disable=not progress):
        rows = table[table.chunk == chunk]
        result = pipe(rows[list(ph.NAMES) + ["slice_position"]], n=1, seed=int(rows.seed.iloc[0]), steps=steps,
                      cfg=cfg, temperature=temperature, batch_size=chunk_size)
        for (_, row), cine in zip(rows.iterrows(), result.cines):
            metadata = {k: (float(row[k]) if k in ph.NAMES else row[k]) for k in (*ph.NAMES, "index", "seed")}
            metadata = {k: v.item() if hasattr(v, "item") else v for k, v in metadata.items()}
            save_cine(cine, out / file_name(int(row["index"]), fmt), metadata)
            made += 1
    files = [file_name(i, fmt) for i in table["index"]]
    done = [(out / f).is_file() for f in files]
    if all(done):
        write_csv(table.assign(file=files), out / CONDITIONS_FILE)
    return {"out": str(out), "planned": len(table), "made_now": made, "present": int(sum(done)),
            "complete": all(done), "rank": rank, "world_size": world_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created; re-run to resume)")
    parser.add_argument("--n", type=int, help="number of cines (phenotypes sampled from the phenotype VAE)")
    parser.add_argument("--phenotypes", help="CSV with one phenotype set per row (partial sets are completed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="npz")
    parser.add_argument("--chunk-size", type=int, default=8, help="cines generated together (one seed per chunk)")
    parser.add_argument("--steps", type=int, help="MAR decoding steps K (default: the model's)")
    parser.add_argument("--cfg", type=float, help="guidance scale (default: the model's)")
    parser.add_argument("--temperature", type=float, help="token sampling temperature (default: the model's)")
    parser.add_argument("--phenotype-temperature", type=float, default=1.0, help="phenotype VAE sampling temperature")
    parser.add_argument("--weights", default=str(WEIGHTS_DIR), help="pipeline folder or Hugging Face Hub repo id")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process (default: cores / processes)")
    parser.add_argument("--device", default="auto", help="auto (a GPU per rank when there are GPUs), cpu or cuda")
    parser.add_argument("--decoded", action="store_true",
                        help="the published path (frames decoded from the MAR's latents) instead of rendering")
    args = parser.parse_args(argv)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world_size))
    try:
        summary = synthesize(args.out, args.n, args.phenotypes, args.seed, args.format, args.chunk_size, args.steps,
                             args.cfg, args.temperature, args.phenotype_temperature, args.weights, rank, world_size,
                             device=args.device, decoded=args.decoded)
    except (SynthesisError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
