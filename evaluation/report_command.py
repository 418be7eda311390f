"""The command line every report on bundled weights shares (``python -m evaluation.motion_report``,
``evaluation.vae3d_report``): ``--dataset``, ``--threads``, and ``--bench`` for the speed alone, as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch


def run_report_command(doc: str, argv: list[str] | None, arguments: dict[str, dict],
                       report: Callable[[argparse.Namespace], dict], bench: Callable[[argparse.Namespace], dict],
                       bench_help: str) -> None:
    """Parse ``argv`` (``arguments``: the command's own flags), set the threads, flush denormals (as the
    bundled figures were measured) and print ``bench(args)`` with ``--bench``, else ``report(args)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, options in arguments.items():
        parser.add_argument(flag, **options)
    parser.add_argument("--dataset", default="default", help="prepared dataset name or folder")
    parser.add_argument("--bench", action="store_true", help=bench_help)
    parser.add_argument("--threads", type=int, help="CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(json.dumps((bench if args.bench else report)(args), indent=2))
