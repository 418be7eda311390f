"""The re-identification network and the privacy test built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cardiosynth.measure.reidentification import TrainingReference, heldout_threshold, matched_share
from cardiosynth.models.reid import ReidNet


def test_reid_separates_same_patient_from_other_patient_pairs_on_unseen_patients(prepared_default, one_thread):
    """Val patients (never trained on): two slices of one patient score higher than slices of two patients,
    also across cardiac phases (ED of one slice against mid-cycle of another)."""
    val = prepared_default.split("val")
    reid = ReidNet.from_pretrained()
    ed = reid.embed(torch.from_numpy(val.cines[:, 0].astype(np.float32) / 255)).numpy()
    mid = reid.embed(torch.from_numpy(val.cines[:, 8].astype(np.float32) / 255)).numpy()
    subjects = val.table["subject"].to_numpy()
    same = subjects[:, None] == subjects[None]
    off_diagonal = ~np.eye(len(subjects), dtype=bool)
    assert roc_auc_score(same[off_diagonal], (ed @ mid.T)[off_diagonal]) > 0.85


def test_matched_share_against_the_heldout_threshold(prepared_default, one_thread):
    """A training cine itself is matched (to its own patient); held-out cines cross their own 95th percentile 5 %
    of the time."""
    dataset = prepared_default
    train, val = dataset.split("train"), dataset.split("val")
    reid = ReidNet.from_pretrained()
    reference = TrainingReference.build(reid, train.cines[:, 0] / 255.0, train.table["subject"])
    held_scores, _ = reference.best_match(val.cines[:, 0] / 255.0)
    threshold = heldout_threshold(held_scores)
    assert matched_share(held_scores, threshold)["share"] == pytest.approx(0.05, abs=0.02)
    copies, patients = reference.best_match(train.cines[:12, 0] / 255.0)
    assert matched_share(copies, threshold)["share"] == 1.0
    assert list(patients) == train.table["subject"].iloc[:12].tolist()
    with pytest.raises(ValueError, match="no held-out"):
        heldout_threshold(np.array([]))
