"""Command line of the blinded reader study:
``python -m cardiosynth.review {create,results,export,blinding-check,remove-reader}``.

    create          N real held-out cines + N synthetic ones through one rendering path -> study code + admin token
    results         per-reader and pooled statistics (JSON), optionally the figure (--plot)
    export          every answer with the truth as CSV
    blinding-check  can a script tell real from synthetic files without looking at the pixels? (exit 1 if so)
    remove-reader   take a reader's answers out of the results (kept, marked, in the database)

The load and crash test of the store is ``python -m evaluation.review_store_load``.
The admin token can also be given as $CARDIOSYNTH_REVIEW_TOKEN (keeps it out of the shell history).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.prepare import CONFIGS, load_or_prepare
from cardiosynth.paths import DataNotFoundError
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.render import RenderSettings
from cardiosynth.review.service import ReviewService


def _admin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="study code")
    parser.add_argument("--token", default=os.environ.get("CARDIOSYNTH_REVIEW_TOKEN"),
                        help="admin token (default: $CARDIOSYNTH_REVIEW_TOKEN)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardiosynth.review", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database file (default: $CARDIOSYNTH_REVIEW_DB or .cache/review/review.sqlite)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="design a study and render its cases")
    create.add_argument("--real", type=int, default=20)
    create.add_argument("--synthetic", type=int, default=20)
    create.add_argument("--generator", default="group-mean", help="group-mean, nearest-train, cpgg[:folder]")
    create.add_argument("--split", default="val", help="held-out split of the real cases: val or test")
    create.add_argument("--conditions", default="vae", help="vae (sampled phenotypes) or matched (the real cases')")
    create.add_argument("--temperature", type=float, default=1.0, help="phenotype VAE sampling temperature")
    create.add_argument("--seed", type=int, default=None,
                        help="fixes which cases the study gets (default: a fresh draw, so studies do not repeat cases)")
    create.add_argument("--title", default="")
    create.add_argument("--dataset", default="default", help="prepared dataset: config name or folder")
    create.add_argument("--out", help="folder for the case files (default: .cache/review/studies)")
    create.add_argument("--size", type=int, default=256, help="video width = height in pixels")
    create.add_argument("--frames-per-cycle", type=int, default=24)
    create.add_argument("--cycles", type=int, default=1, help="cardiac cycles stored per case (it loops)")
    create.add_argument("--cycle-seconds", type=float, default=1.0, help="playback: seconds per heartbeat")
    results = commands.add_parser("results", help="statistics of a study (admin)")
    _admin_arguments(results)
    results.add_argument("--plot", help="also write the figure to this PNG")
    results.add_argument("--n-boot", type=int, default=1000)
    export = commands.add_parser("export", help="all answers as CSV (admin)")
    _admin_arguments(export)
    export.add_argument("--out", required=True, help="CSV file to write")
    blinding = commands.add_parser("blinding-check", help="compare real and synthetic case files (admin)")
    _admin_arguments(blinding)
    remove = commands.add_parser("remove-reader", help="take a reader out of a study (admin)")
    _admin_arguments(remove)
    remove.add_argument("--name", required=True, help="the reader's name as the results list it")
    args = parser.parse_args(argv)

    try:
        service = ReviewService(args.db, getattr(args, "out", None) if args.command == "create" else None)
        if args.command == "create":
            settings = RenderSettings(args.size, args.frames_per_cycle, args.cycles, args.cycle_seconds)
            created = service.create_study(args.generator, args.real, args.synthetic, args.split, args.conditions,
                                           args.seed, settings, args.title,
                                           load_or_prepare(args.dataset, notify=lambda text: print(text, file=sys.stderr))
                                           if args.dataset in CONFIGS else load_prepared(args.dataset),
                                           args.temperature)
            print(json.dumps({"study_code": created.display_code, "admin_token": created.admin_token,
                              "folder": str(created.folder), "n_real": created.n_real,
                              "n_synthetic": created.n_synthetic, "database": str(service.store.path),
                              "note": "The admin token is shown only now: keep it to see the results."}, indent=2))
        elif args.command == "results":
            print(json.dumps(service.results(args.study, args.token, args.n_boot), indent=2))
            if args.plot:
                print(service.results_plot(args.study, args.token, args.plot, args.n_boot), file=sys.stderr)
        elif args.command == "export":
            print(service.export_csv(args.study, args.token, args.out))
        elif args.command == "remove-reader":
            removed = service.remove_reader(args.study, args.token, args.name)
            print(f"Removed {args.name!r}: {removed} answers left the results (kept, marked, in the database).")
        else:
            report = service.blinding_report(args.study, args.token)
            print(json.dumps(report, indent=2))
            return 0 if report["blinded"] else 1
    except (ReviewError, DataNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
