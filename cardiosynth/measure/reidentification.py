"""The privacy test of rendered cines: how often is a synthetic cine matched to a training patient?

Every default-path cine is made of one training exemplar's pixels, so it may be recognisable as that patient.
The re-identification network (``cardiosynth.models.reid``) scores how likely two frames show the same patient;
a cine's *best match* is its highest score against any training cine (by patient). Held-out real patients set
the bar: the threshold is the 95th percentile of held-out cines' best matches (so 5 % of real held-out cines
cross it on the split it was fitted on), and a synthetic cine above it is *matched*. Reported per generator:
the matched share (patient-bootstrap CI), and whether the patient matched is its own exemplar's.

    reference = TrainingReference.build(reid, train_frames, train_patients)
    scores, patients = reference.best_match(frames)          # (N,), (N,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cardiosynth.measure.metrics import bootstrap_ci
from cardiosynth.models.reid import ReidNet, best_match

HELDOUT_PERCENTILE = 95.0


@dataclass
class TrainingReference:
    """Embeddings of the training cines' ED frames and their patients."""

    reid: ReidNet
    embeddings: torch.Tensor  # (M, D)
    patients: np.ndarray  # (M,)

    @classmethod
    def build(cls, reid: ReidNet, ed_frames, patients) -> "TrainingReference":
        return cls(reid, reid.embed(torch.as_tensor(np.asarray(ed_frames, np.float32))), np.asarray(patients))

    def best_match(self, ed_frames) -> tuple[np.ndarray, np.ndarray]:
        """Each query ED frame's highest similarity to any training cine, and that cine's patient."""
        scores, patients = best_match(self.reid, np.asarray(ed_frames, np.float32), self.embeddings, self.patients)
        return scores, np.asarray(patients)


def heldout_threshold(scores: np.ndarray, percentile: float = HELDOUT_PERCENTILE) -> float:
    """The score that ``percentile`` % of held-out real cines' best matches stay below."""
    if len(scores) == 0:
        raise ValueError("no held-out scores to set the re-identification threshold from")
    return float(np.percentile(scores, percentile))


def matched_share(scores: np.ndarray, threshold: float, groups=None, seed: int = 0) -> dict:
    """Share of cines whose best match crosses ``threshold``, with a (patient-grouped) bootstrap 95 % CI."""
    matched = np.asarray(scores) > threshold
    low, high = bootstrap_ci(lambda idx: float(matched[idx].mean()), len(matched), groups=groups, seed=seed)
    return {"share": float(matched.mean()), "ci95": [low, high], "n": int(len(matched)),
            "median_score": float(np.median(scores))}
