"""The command line every report on bundled weights shares (``python -m evaluation.motion_report``,
``evaluation.vae3d_report``, ``evaluation.ecg_mae_report``, ``evaluation.ecg_flow_pairing``): ``--dataset``,
``--threads``, and ``--bench`` for the speed alone, as JSON, where the command measures one."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

from cardiosynth.paths import REPO_ROOT

DATASET = {"default": "default", "help": "prepared dataset name or folder"}


def reports_of(weights: str | Path) -> Path:
    """Where a weights folder's reports go by default: ``reports/<folder name>`` (``weights/ecg_mae`` ->
    ``reports/ecg_mae``), so reports on other weights (``weights/ecg_mae_paper``) never overwrite the bundled ones."""
    return REPO_ROOT / "reports" / Path(weights).name


def run_report_command(doc: str, argv: list[str] | None, arguments: dict[str, dict],
                       report: Callable[[argparse.Namespace], dict],
                       bench: Callable[[argparse.Namespace], dict] | None = None, bench_help: str = "",
                       dataset: dict | None = DATASET) -> None:
    """Parse ``argv`` (``arguments``: the command's own flags; ``dataset``: the options of ``--dataset``, None for
    a command that reads no prepared dataset), set the threads, flush denormals (as the bundled figures were
    measured) and print ``bench(args)`` with ``--bench`` (a flag only where ``bench`` is given), else
    ``report(args)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, options in arguments.items():
        parser.add_argument(flag, **options)
    if dataset is not None:
        parser.add_argument("--dataset", **dataset)
    if bench is not None:
        parser.add_argument("--bench", action="store_true", help=bench_help)
    parser.add_argument("--threads", type=int, help="CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(json.dumps((bench if getattr(args, "bench", False) else report)(args), indent=2))
