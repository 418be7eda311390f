"""An automated Turing test: a classifier two-sample test (C2ST) between two sets of cines.

If a classifier trained to tell set A from set B cannot beat chance on cines it has not seen, the sets are
indistinguishable to it. Two classifiers look at every pair of sets, and the larger AUC is the verdict:

- ``cnn``: a small CNN trained from scratch on the cines themselves (the 16 frames as input channels), so
  it can pick up any texture, edge or motion artefact a generator leaves, frame order included;
- ``features``: an L2 logistic regression (C = ``FEATURES_C`` = 0.1, standardised inputs, balanced class
  weights) on :func:`cine_features`, pooled activations of the bundled segmenter's encoder (a network that
  knows what LV, myocardium and RV look like), which catches wrong anatomy even when the CNN has too few
  cines to learn it from scratch. It sees the mean and SD over frames, so it is blind to frame order.

Both are scored out of fold with patient-grouped folds (one patient's real and synthetic cines never sit on
both sides of a fold, else the classifier could recognise the patient rather than the generator), and the
out-of-fold ROC AUC gets a patient-bootstrap 95 % interval. Read every AUC beside the real-vs-real control
(:func:`matched_control`): that is the floor a perfect generator reaches. Under the null the out-of-fold AUC
reads a little below 0.5 on sets this small (each held-out cine is missing from its own class's training
data, which pulls the classifier away from it; 0.3-0.55 measured on val and on toy data), so "as good as
real" means "within the control's interval", not "0.5". Class weights are balanced so that a fold's class
mix does not add to this.

Speed (one CPU thread, 67 vs 67 cines of 16 x 64 x 64, 5 folds, both classifiers): about 9 s on an idle
core, 13 s on one shared with a training job (the CNN is 90 % of it; features 1.2 s, bootstrap 0.2 s).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from cardiosynth.models.segmenter import Segmenter

FEATURES_C = 0.1  # inverse L2 strength of the linear classifier: strong regularisation, ~500 features, ~100 cines
CNN_WIDTH = 24  # channels of every conv layer after the first
CNN_EPOCHS = 30
CNN_BATCH = 16
CNN_LR = 3e-3
CNN_WEIGHT_DECAY = 1e-4
CNN_SHIFT_PX = 2  # augmentation: the same random translation of every frame of a cine, zero filled


# ------------------------------------------------------------------------------------------ validation
def _check_set(frames, name: str) -> np.ndarray:
    """A float32 (N, T, H, W) array in [0, 1], or one ValueError that says what is wrong."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (N, T, H, W), not {type(frames).__name__}")
    if frames.ndim != 4:
        raise ValueError(f"{name} must have shape (N, T, H, W); got {frames.ndim} dimensions {frames.shape}")
    if 0 in frames.shape:
        raise ValueError(f"{name} is empty: shape {frames.shape}")
    if not np.issubdtype(frames.dtype, np.floating):
        hint = " (uint8 data: divide by 255 first)" if frames.dtype == np.uint8 else ""
        raise ValueError(f"{name} must be floating point in [0, 1], got dtype {frames.dtype}{hint}")
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    if not np.isfinite(frames).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(frames.min()), float(frames.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"{name} must be in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    return frames


def _check_groups(groups, n: int, name: str) -> np.ndarray:
    if groups is None:
        raise ValueError(f"{name}: patient ids are required (one per cine), so that folds can keep patients apart")
    groups = np.asarray([str(g) for g in np.asarray(groups, dtype=object).ravel()], dtype=object)
    if len(groups) != n:
        raise ValueError(f"{name}: {len(groups)} patient ids for {n} cines")
    return groups


# ------------------------------------------------------------------------------------------ features
def cine_features(segmenter, frames, batch_frames: int = 256) -> np.ndarray:
    """(N, T, H, W) float in [0, 1] -> (N, 2 D) float64: per frame, every encoder level of the segmenter
    mean-pooled over space and concatenated (D channels); per cine, the mean and the SD of that vector over
    frames (the SD carries the motion: a still cine has SD 0)."""
    frames = _check_set(frames, "frames")
    if segmenter.training:
        raise ValueError("cine_features needs the segmenter in eval mode (use Segmenter.from_pretrained)")
    n, t, h, w = frames.shape
    size = segmenter.config.image_size
    if (h, w) != (size, size):
        raise ValueError(f"frames are {h}x{w} but the segmenter expects {size}x{size}")
    x = torch.from_numpy(frames).reshape(n * t, 1, h, w)
    with torch.inference_mode():
        per_frame = torch.cat([torch.cat([level.mean(dim=(2, 3)) for level in segmenter.encoder_features(chunk)], 1)
                               for chunk in x.split(batch_frames)])
    per_frame = per_frame.reshape(n, t, -1).double()
    return torch.cat([per_frame.mean(1), per_frame.std(1, unbiased=False)], 1).numpy()


def features_scores(features: np.ndarray, labels: np.ndarray, folds: list) -> np.ndarray:
    """Out-of-fold decision values of StandardScaler + L2 logistic regression (C = ``FEATURES_C``)."""
    scores = np.empty(len(labels))
    for train, test in folds:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=FEATURES_C, class_weight="balanced", max_iter=2000))
        model.fit(features[train], labels[train])
        scores[test] = model.decision_function(features[test])
    return scores


# ------------------------------------------------------------------------------------------ CNN
class CineCritic(nn.Sequential):
    """Four 3x3 stride-2 conv + BatchNorm + ReLU layers (frames as input channels), global average pool,
    linear -> one logit. BatchNorm, not a per-sample norm, so that a global intensity error stays visible."""

    def __init__(self, frames: int, width: int = CNN_WIDTH):
        layers, c_in = [], frames
        for c_out in (16, width, width, width):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            c_in = c_out
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))


def _shift(x: torch.Tensor, generator: torch.Generator, px: int) -> torch.Tensor:
    """Each cine translated by its own random (dy, dx) in [-px, px], all frames alike, zero filled."""
    if px <= 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (px, px, px, px))
    offsets = torch.randint(0, 2 * px + 1, (len(x), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def cnn_scores(frames: np.ndarray, labels: np.ndarray, folds: list, seed: int = 0,
               epochs: int = CNN_EPOCHS) -> np.ndarray:
    """Out-of-fold logits of a :class:`CineCritic` trained from scratch on each fold (Adam, ``epochs``
    epochs, batch ``CNN_BATCH``, ±``CNN_SHIFT_PX`` px shifts). Deterministic given ``seed`` on CPU."""
    x = torch.from_numpy(frames)
    y = torch.from_numpy(labels.astype(np.float32))
    scores = np.empty(len(labels))
    for k, (train, test) in enumerate(folds):
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1000 + k)
            model = CineCritic(frames.shape[1])
        optimiser = torch.optim.Adam(model.parameters(), lr=CNN_LR, weight_decay=CNN_WEIGHT_DECAY)
        train_t = torch.from_numpy(train)
        pos_weight = torch.tensor(float((labels[train] == 0).sum()) / max(int((labels[train] == 1).sum()), 1))
        steps_per_epoch = sum(min(CNN_BATCH, len(train) - b) >= 2 for b in range(0, len(train), CNN_BATCH))
        # cosine decay to zero: with a constant rate the AUC on one task moved 0.72-0.96 with the init alone
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, epochs * steps_per_epoch))
        model.train()
        with torch.enable_grad():  # callable from inside no_grad / inference code
            for _ in range(epochs):
                order = train_t[torch.randperm(len(train_t), generator=generator)]
                for batch in order.split(CNN_BATCH):
                    if len(batch) < 2:  # BatchNorm needs two samples
                        continue
                    logits = model(_shift(x[batch], generator, CNN_SHIFT_PX)).squeeze(1)
                    loss = F.binary_cross_entropy_with_logits(logits, y[batch], pos_weight=pos_weight)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
        model.eval()
        with torch.inference_mode():
            scores[test] = model(x[torch.from_numpy(test)]).squeeze(1).double().numpy()
    return scores


# ------------------------------------------------------------------------------------------ the test
def _auc_fast(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (ties get average ranks, as in sklearn); NaN with one class."""
    from scipy.stats import rankdata

    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grouped_auc_ci(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of the AUC over patient-bootstrap resamples of the out-of-fold scores
    (whole patients drawn with replacement; resamples holding one class only are skipped)."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        value = _auc_fast(labels[idx], scores[idx])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return (float("nan"), float("nan"))
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


def grouped_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> list:
    """Patient-grouped, label-stratified folds; every training part must hold both sets."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = list(splitter.split(np.zeros(len(labels)), labels, groups))
    for k, (train, _) in enumerate(out):
        if len(np.unique(labels[train])) < 2:
            raise ValueError(f"fold {k} would train on one set only: the patients separate the two sets too "
                             "cleanly for grouped folds; give each set cines of more patients")
    return out


def matched_control(heldout: pd.DataFrame, train: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """The real-vs-real control as a "generator" that answers every held-out cine with a real training cine:
    entry j is the ``train`` row given for ``heldout`` row j. Each held-out patient is matched by a random
    unused training patient of the same diagnostic group, and each of its cines by that patient's cine
    nearest in slice position (no reuse while the patient has enough slices).

    Test the returned cines with the held-out patients' ids as groups, as a generator's: a matched pair
    then never straddles a fold. Why all this: a random subset of ~10 training patients differs from the
    held-out ones in its mix of pathologies, which a classifier learns (0.70-0.80 on val unmatched); and
    with matched but separately grouped patients, holding out one member of a pair while training on the
    other teaches the classifier the opposite of the truth (0.25-0.55). Falls back to any unused patient
    when a group has none left. ``heldout`` and ``train`` need columns ``subject``, ``group``,
    ``slice_position``."""
    from scipy.optimize import linear_sum_assignment

    for table, name in ((heldout, "heldout"), (train, "train")):
        missing = {"subject", "group", "slice_position"} - set(table.columns)
        if missing:
            raise ValueError(f"{name} table lacks columns {sorted(missing)}")
    heldout, train = heldout.reset_index(drop=True), train.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    rows = {s: np.flatnonzero(train["subject"].to_numpy() == s) for s in pd.unique(train["subject"])}
    group_of = train.groupby("subject")["group"].first()
    unused = set(rows)
    answer = np.full(len(heldout), -1, dtype=int)
    for subject in rng.permutation(pd.unique(heldout["subject"])):
        mine = np.flatnonzero(heldout["subject"].to_numpy() == subject)
        group, k = heldout["group"].iloc[mine[0]], len(mine)
        tiers = [[s for s in sorted(unused) if group_of[s] == group and len(rows[s]) >= k],
                 [s for s in sorted(unused) if len(rows[s]) >= k], sorted(unused), sorted(rows)]
        pick = rng.choice(next(t for t in tiers if t))
        unused.discard(pick)
        positions = train["slice_position"].to_numpy(float)[rows[pick]]
        cost = np.abs(heldout["slice_position"].to_numpy(float)[mine][:, None] - positions[None, :])
        if len(positions) >= k:  # one training cine per held-out cine, nearest in position overall
            assigned, columns = linear_sum_assignment(cost)
            answer[mine[assigned]] = rows[pick][columns]
        else:  # a patient with fewer slices: nearest, with reuse
            answer[mine] = rows[pick][cost.argmin(axis=1)]
    return answer


def classifier_two_sample_test(first, second, first_groups, second_groups, segmenter=None, folds: int = 5,
                               seed: int = 0, n_boot: int = 1000) -> dict:
    """How well classifiers tell ``first`` (label 0, e.g. real held-out cines) from ``second`` (label 1).

    ``first`` and ``second``: float (N, T, H, W) in [0, 1], same (T, H, W); ``*_groups``: the patient id of
    each cine (a synthetic cine requested for a patient carries that patient's id). Folds =
    ``min(folds, number of patients)``, grouped by patient, stratified by set, shuffled with ``seed``.
    Returns ``{"cnn": {"auc", "ci95"}, "features": {"auc", "ci95"}, "max_auc", "n_first", "n_second",
    "n_groups", "folds", "seconds"}``; judge by ``max_auc`` beside a real-vs-real control.
    """
    started = time.perf_counter()
    first, second = _check_set(first, "first set"), _check_set(second, "second set")
    if first.shape[1:] != second.shape[1:]:
        raise ValueError(f"the two sets have different cine shapes: {first.shape[1:]} vs {second.shape[1:]}")
    for frames, name in ((first, "first set"), (second, "second set")):
        if len(frames) < 4:
            raise ValueError(f"{name} has {len(frames)} cines; the test needs at least 4 per set")
    groups = np.concatenate([_check_groups(first_groups, len(first), "first_groups"),
                             _check_groups(second_groups, len(second), "second_groups")])
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"all cines belong to {n_groups} patient; grouped folds need at least 2 patients")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    folds = min(int(folds), n_groups)
    frames = np.concatenate([first, second])
    labels = np.concatenate([np.zeros(len(first), int), np.ones(len(second), int)])
    splits = grouped_folds(labels, groups, folds, seed)
    if segmenter is None:
        segmenter = Segmenter.from_pretrained()
    result = {}
    for name, scores in (("cnn", cnn_scores(frames, labels, splits, seed)),
                         ("features", features_scores(cine_features(segmenter, frames), labels, splits))):
        result[name] = {"auc": float(roc_auc_score(labels, scores)),
                        "ci95": list(grouped_auc_ci(labels, scores, groups, n_boot, seed))}
    result.update(max_auc=max(result["cnn"]["auc"], result["features"]["auc"]), n_first=len(first),
                  n_second=len(second), n_groups=n_groups, folds=folds, seed=int(seed),
                  seconds=round(time.perf_counter() - started, 2))
    return result
