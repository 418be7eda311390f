"""An optional filter for rendered cines: redraw any cine the re-identification network matches to a training
patient above the held-out threshold (EchoNet-Synthetic's practice). Used by ``PhenotypeToCine(...,
privacy_filter=True)``; the redraws and each cine's score are recorded in its conditions.

The reference is the anatomy bank's own ED frames (the training exemplars the cines are made of); the threshold
is the one fitted with the network on held-out patients (``weights/reid/config.json``: ``threshold``)."""

from __future__ import annotations

import numpy as np

from cardiosynth.models.reid import ReidNet, best_match
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.weights import WeightsError

MAX_REDRAWS = 10  # after these the last draw is kept and flagged


class ReidentificationFilter:
    def __init__(self, reid: ReidNet, bank: AnatomyBank):
        threshold = reid.metrics.get("threshold") if hasattr(reid, "metrics") else None
        if threshold is None:
            raise WeightsError("the re-identification network has no held-out threshold (retrain it with "
                               "python -m training.train_reid)")
        self.reid, self.threshold = reid, float(threshold)
        frames = bank.ed.float() / 255.0
        self.embeddings = reid.embed(frames)
        self.patients = np.array([i.split("/")[0] for i in bank.ids])

    def scores(self, ed_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best-match score and patient of each ED frame (N, H, W)."""
        scores, patients = best_match(self.reid, np.asarray(ed_frames, np.float32), self.embeddings, self.patients)
        return scores, np.asarray(patients)

    def matched(self, ed_frames: np.ndarray) -> np.ndarray:
        return self.scores(ed_frames)[0] > self.threshold
