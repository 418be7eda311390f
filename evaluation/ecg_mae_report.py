"""Report the bundled ECG MAE: ``reports/ecg_mae/metrics.json``, the val / test figures its trainer measured on
exactly these weights (as stored in ``config.json``); with ``--evaluate``, first re-evaluate the saved weights on
LUDB (no training) and rewrite their figures and model card (``cardiosynth.models.cards.ecg_mae``).

    python -m evaluation.ecg_mae_report [--out weights/ecg_mae] [--report reports/ecg_mae]   # metrics.json
    python -m evaluation.ecg_mae_report --evaluate [--out weights/ecg_mae] [--threads N]    # re-evaluate, then as above

``--report`` defaults to ``reports/<name of --out>``: reports on other weights never overwrite the bundled ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from cardiosynth.data.ludb import load_arrays
from cardiosynth.models.ecg_mae import EcgMAE
from cardiosynth.weights import read_config, resolve
from evaluation.report_command import reports_of, run_report_command
from training.train_ecg_mae import measure, save

TRAINING_KEYS = ("selected", "train_minutes", "command", "threads")  # how the weights were trained: kept as stored


def reevaluate(out: str | Path) -> dict:
    """Evaluate the weights in ``out`` on val and test again and rewrite their folder (figures and card)."""
    folder = resolve(out)
    model = EcgMAE.from_pretrained(folder)
    metrics = measure(model, load_arrays(), {k: model.metrics[k] for k in TRAINING_KEYS})
    save(folder, model, metrics, read_config(folder)["recipe"])
    return metrics


def report(out: str | Path, report_dir: Path | None = None, evaluate: bool = False) -> dict:
    """Write ``metrics.json`` (the figures stored with the weights in ``out``) into ``report_dir``."""
    metrics = reevaluate(out) if evaluate else read_config(out)["extra"]
    report_dir = reports_of(out) if report_dir is None else report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    run_report_command(__doc__, argv, {
        "--out": {"default": "weights/ecg_mae", "help": "weights folder"},
        "--report": {"type": Path, "default": None, "help": "where to write metrics.json "
                     "(default reports/<name of --out>)"},
        "--evaluate": {"action": "store_true", "help": "re-evaluate the weights on LUDB (no training) and rewrite "
                       "their metrics and model card first"}},
        lambda args: report(args.out, args.report, args.evaluate), dataset=None)


if __name__ == "__main__":
    main()
