"""Command line: ``python -m cardiosynth.data {prepare,sheet,split}``.

    prepare  ACDC folder -> prepared dataset in the cache (progress bar, then a summary)
    sheet    contact sheet PNG of a prepared dataset, to check the crops by eye
    split    (re)write the patient-level split file from a phenotypes.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from cardiosynth.data.contact_sheet import write_contact_sheet
from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.prepare import CONFIGS, prepare_acdc
from cardiosynth.data.splits import DEFAULT_SEED, SPLIT_FILE, make_split
from cardiosynth.paths import DataNotFoundError, require_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardiosynth.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="prepare ACDC slice cines")
    prep.add_argument("--config", choices=sorted(CONFIGS), default="default")
    prep.add_argument("--data", help="ACDC folder (default: $CARDIOSYNTH_DATA/acdc or ../shared/data/acdc)")
    prep.add_argument("--out", help="output folder (default: .cache/prepared/acdc_<config>)")
    prep.add_argument("--frames", type=int, help="override the config's frame count")
    prep.add_argument("--size", type=int, help="override the config's H = W")
    prep.add_argument("--spacing-mm", type=float, help="override the config's output pixel size")
    prep.add_argument("--centre", choices=["heart", "lv"], help="override the crop centre")
    prep.add_argument("--split-file", default=str(SPLIT_FILE))
    sheet = commands.add_parser("sheet", help="write a contact sheet PNG of a prepared dataset")
    sheet.add_argument("--dataset", default="default", help="config name or prepared folder")
    sheet.add_argument("--out", default="outputs/contact_sheet.png")
    sheet.add_argument("-n", type=int, default=20)
    split = commands.add_parser("split", help="write a stratified patient split from phenotypes.csv")
    split.add_argument("--data", help="ACDC folder with phenotypes.csv")
    split.add_argument("--seed", type=int, default=DEFAULT_SEED)
    split.add_argument("--out", default=str(SPLIT_FILE))
    args = parser.parse_args(argv)

    try:
        if args.command == "prepare":
            overrides = {k: v for k, v in {"frames": args.frames, "size": args.size,
                                           "spacing_mm": args.spacing_mm, "centre": args.centre}.items() if v}
            config = dataclasses.replace(CONFIGS[args.config], **overrides)
            summary = prepare_acdc(args.data, config, args.out, args.split_file)
            print(json.dumps(summary, indent=2))
        elif args.command == "sheet":
            print(write_contact_sheet(load_prepared(args.dataset), args.out, n=args.n))
        else:
            import pandas as pd

            table = pd.read_csv(require_dataset("acdc", args.data) / "phenotypes.csv")
            make_split(table, seed=args.seed).to_csv(args.out, index=False)
            print(args.out)
    except DataNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
