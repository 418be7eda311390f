"""An optional filter for rendered cines: redraw any cine the re-identification network matches to a training
patient above the held-out threshold (EchoNet-Synthetic's practice). Used by ``PhenotypeToCine(...,
privacy_filter=True)``; the redraws and each cine's score are recorded in its conditions.

The reference is the anatomy bank's own ED frames (the training exemplars the cines are made of); the threshold
is the one fitted with the network on held-out patients (``weights/reid/config.json``: ``threshold``)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from cardiosynth.models.reid import ReidNet, best_match
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.weights import WeightsError, read_config

MAX_REDRAWS = 10  # after these the last draw is kept and flagged


class ReidentificationFilter:
    """Reads its threshold at construction (config.json only); loads the network and embeds the bank's 319 ED
    frames on first use, so a pipeline that never filters pays nothing at start-up."""

    def __init__(self, reid_folder: str | Path, bank: AnatomyBank):
        threshold = read_config(reid_folder).get("extra", {}).get("threshold")
        if threshold is None:
            raise WeightsError("the re-identification network has no held-out threshold (retrain it with "
                               "python -m training.train_reid)")
        self.folder, self.bank, self.threshold = Path(reid_folder), bank, float(threshold)
        self.patients = np.array([i.split("/")[0] for i in bank.ids])
        self._loaded: tuple[ReidNet, torch.Tensor] | None = None
        self._lock = threading.Lock()

    def _network(self) -> tuple[ReidNet, torch.Tensor]:
        with self._lock:
            if self._loaded is None:
                reid = ReidNet.from_pretrained(self.folder)  # sha256 checked
                self._loaded = (reid, reid.embed(self.bank.ed.float() / 255.0))
            return self._loaded

    def scores(self, ed_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best-match score and patient of each ED frame (N, H, W)."""
        reid, embeddings = self._network()
        scores, patients = best_match(reid, np.asarray(ed_frames, np.float32), embeddings, self.patients)
        return scores, np.asarray(patients)
