"""Fit the slice-measurements -> phenotypes estimator on the real training split; report it on validation.

    python -m training.fit_phenotype_estimator [--out weights/phenotype_estimator]

The bundled segmenter measures every training cine; one ridge regression per phenotype is fitted (alpha by
per-subject cross-validation). Its validation accuracy is the ceiling of any generator's adherence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cardiosynth import phenotypes as ph
from cardiosynth.data.dataset import load_prepared
from cardiosynth.measure.estimator import EstimatorConfig, PhenotypeEstimator
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.measure.metrics import adherence
from cardiosynth.models.cards.phenotype_estimator import model_card
from cardiosynth.weights import resolve


def measured_table(measurer: CineMeasurer, dataset) -> "pd.DataFrame":  # noqa: F821
    table, _ = measurer.measure([dataset.cine(i) for i in range(len(dataset))])
    for column in ("subject", *ph.NAMES):
        table[column] = dataset.table[column].to_numpy()
    return table


def fit(out: Path, dataset_name: str = "default", segmenter: str = "segmenter") -> dict:
    dataset = load_prepared(dataset_name)
    measurer = CineMeasurer(segmenter, estimator=None)
    train, val = measured_table(measurer, dataset.split("train")), measured_table(measurer, dataset.split("val"))
    estimator = PhenotypeEstimator(EstimatorConfig()).fit(train, groups=train["subject"].to_numpy())
    predicted = estimator.predict(val)
    scores = {name: adherence(val[name].to_numpy(float), predicted[name].to_numpy(), groups=val["subject"].to_numpy())
              for name in ph.NAMES}
    card = model_card(scores, len(train), train["subject"].nunique(), len(val), val["subject"].nunique())
    estimator.save_pretrained(out, card, extra={"val_scores": scores}, depends_on={"segmenter": resolve(segmenter)})
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="weights/phenotype_estimator")
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--segmenter", default="segmenter")
    args = parser.parse_args()
    scores = fit(Path(args.out), args.dataset, args.segmenter)
    print(json.dumps({n: {"r": round(s["pearson_r"], 3), "mae": round(s["mae"], 2)} for n, s in scores.items()}, indent=2))


if __name__ == "__main__":
    main()
