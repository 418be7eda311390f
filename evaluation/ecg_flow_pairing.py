"""The ECG flow's training pairs, their statistics and its training summary, as tables in ``reports/ecg_flow/``:
``pairs.csv`` (one row per subject-ECG pair; the LUDB path left out of pseudo-pairs), ``pairing_statistics.csv``
(per split and group; the model card of ``weights/ecg_flow`` quotes the training split's) and ``training.json``
(what the trainer stored in ``config.json``'s ``extra``).

    python -m evaluation.ecg_flow_pairing [--out weights/ecg_flow] [--dataset NAME] [--pairs pairs.csv]
                                          [--report reports/ecg_flow]

The pairs are rebuilt from the inputs the trainer paired (the prepared dataset it names, LUDB, and the saved
recipe's ``pairs_per_subject`` and ``seed``: the pseudo-pairing is deterministic) by the trainer's own function; weights
trained on a table of real pairs (``train_ecg_flow --pairs``) need the same table here. ``--report`` defaults to
``reports/<name of --out>``: reports on other weights never overwrite the bundled ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from cardiosynth.data.dataset import load_prepared
from cardiosynth.weights import config_from_dict, read_config
from evaluation.report_command import reports_of, run_report_command
from training.recipes import EcgFlowRecipe
from training.train_ecg_flow import pairs_and_statistics


def report(out: str | Path = "weights/ecg_flow", dataset_name: str | None = None, pairs_file: Path | None = None,
           report_dir: Path | None = None) -> dict:
    """Write the three tables for the weights in ``out`` (``dataset_name``: default the one they were trained on)."""
    payload = read_config(out)
    summary = {k: v for k, v in payload["extra"].items() if k != "weights_dtype"}  # as trained (store_compact adds it)
    given = summary.get("pairs") == "given"
    if given != (pairs_file is not None):
        raise ValueError(f"{out} was trained on {summary.get('pairs')}: " +
                         ("pass the same table with --pairs" if given else "leave out --pairs"))
    dataset = load_prepared(dataset_name or summary["dataset"])
    recipe = config_from_dict(EcgFlowRecipe, payload["recipe"])
    pairs, stats = pairs_and_statistics(dataset.table, dataset.cines.shape[1], recipe, pairs_file)
    if len(pairs) != summary["n_pairs"] or pairs["ecg_path"].nunique() != summary["n_ecgs_paired"]:
        raise ValueError(f"{len(pairs)} pairs over {pairs['ecg_path'].nunique()} ECGs, but {out} was trained on "
                         f"{summary['n_pairs']} over {summary['n_ecgs_paired']}: not the inputs it was trained on")
    report_dir = reports_of(out) if report_dir is None else report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    pairs.drop(columns=[] if given else ["ecg_path"]).to_csv(report_dir / "pairs.csv", index=False)
    stats.to_csv(report_dir / "pairing_statistics.csv", index=False)
    (report_dir / "training.json").write_text(json.dumps(summary, indent=2))
    return {"report": str(report_dir), "pairs": len(pairs), "ecgs_paired": int(pairs["ecg_path"].nunique()),
            "subjects": int(pairs["subject"].nunique())}


def main(argv: list[str] | None = None) -> None:
    run_report_command(__doc__, argv, {
        "--out": {"default": "weights/ecg_flow", "help": "weights folder"},
        "--pairs": {"type": Path, "default": None, "help": "the table of real pairs the weights were trained on"},
        "--report": {"type": Path, "default": None, "help": "where to write the tables "
                     "(default reports/<name of --out>)"}},
        lambda args: report(args.out, args.dataset, args.pairs, args.report),
        dataset={"default": None, "help": "prepared dataset name or folder (default: the one the weights were "
                 "trained on, as their config.json records it)"})


if __name__ == "__main__":
    main()
