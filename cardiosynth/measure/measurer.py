"""Cines -> measurements: segment every frame, read the area curves, estimate the subject's phenotypes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cardiosynth.cine import Cine
from cardiosynth.measure.curves import CineMeasurements, measure_labels
from cardiosynth.measure.estimator import PhenotypeEstimator
from cardiosynth.models.segmenter import Segmenter, segment_cine


class CineMeasurer:
    """Holds the bundled segmenter (and phenotype estimator, when fitted) and measures lists of cines."""

    def __init__(self, segmenter="segmenter", estimator: str | PhenotypeEstimator | None = "phenotype_estimator"):
        self.segmenter = Segmenter.from_pretrained(segmenter) if isinstance(segmenter, str) else segmenter
        if isinstance(estimator, str):
            estimator = PhenotypeEstimator.from_pretrained(estimator)
        self.estimator = estimator

    def segment(self, cines: Sequence[Cine]) -> list[np.ndarray]:
        """The segmenter's (T, H, W) uint8 labels of every cine, not masked by ``valid`` (the anatomy checks
        want them so; ``measure_labels`` masks padding itself)."""
        if len(cines) == 0:
            raise ValueError("No cines to measure")
        for cine in cines:
            if not isinstance(cine, Cine):
                raise TypeError(f"Expected Cine objects, got {type(cine).__name__}")
        if len({c.shape for c in cines}) == 1:  # one batched pass
            return list(segment_cine(self.segmenter, np.stack([c.frames for c in cines])))
        return [segment_cine(self.segmenter, c.frames) for c in cines]

    def curves(self, cines: Sequence[Cine], labels: Sequence[np.ndarray] | None = None) -> list[CineMeasurements]:
        """Area curves of every cine, from ``labels`` when given (from :meth:`segment`), else segmenting."""
        labels = self.segment(cines) if labels is None else labels
        if len(labels) != len(cines):
            raise ValueError(f"{len(labels)} label maps for {len(cines)} cines")
        return [measure_labels(lab, c.spacing_mm, c.valid) for lab, c in zip(labels, cines)]

    def measure(self, cines: Sequence[Cine], labels: Sequence[np.ndarray] | None = None
                ) -> tuple[pd.DataFrame, list[CineMeasurements]]:
        """One row per cine: area features, ED/ES, FAC, slice position and (if fitted) estimated phenotypes."""
        curves = self.curves(cines, labels)
        table = pd.DataFrame([c.as_row() for c in curves])
        table["slice_position"] = [c.slice_position for c in cines]
        if self.estimator is not None:
            estimates = self.estimator.predict(table).add_prefix("est_")
            table = pd.concat([table, estimates], axis=1)
        return table, curves

    def measure_with_labels(self, cines: Sequence[Cine]) -> tuple[pd.DataFrame, list[CineMeasurements], list[np.ndarray]]:
        """:meth:`measure` plus the label maps it read, segmenting once (for the anatomy checks)."""
        labels = self.segment(cines)
        table, curves = self.measure(cines, labels)
        return table, curves, labels


def stack_frames(cines: Sequence[Cine]) -> np.ndarray:
    """(N, T, H, W) array of a list of equally shaped cines, with a clear error when shapes differ."""
    shapes = {c.shape for c in cines}
    if len(shapes) != 1:
        raise ValueError(f"Cines of different shapes cannot be compared as one set: {sorted(shapes)}")
    return np.stack([c.frames for c in cines])
