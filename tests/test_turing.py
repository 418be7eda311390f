"""The automated Turing test (classifier two-sample test) on toy cines: it must tell sets apart that differ
(blur, scrambled motion), not tell apart two draws of one set, and refuse bad input with one clear message.

The toy cines need no data: a bright LV disc in a grey myocardial ring that contracts and relaxes once per
cycle, an RV disc to its left, noise; a few slices per "patient" share its size."""

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from cardiosynth.measure import turing
from cardiosynth.models.segmenter import Segmenter

pytestmark = pytest.mark.usefixtures("one_thread")


def moving_hearts(patients: int = 12, per_patient: int = 3, frames: int = 16, size: int = 64, seed: int = 0):
    """(patients * per_patient, frames, size, size) float32 cines in [0, 1] and their patient ids."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    phase = np.arange(frames) / frames
    cines, groups = [], []
    for p in range(patients):
        r0, wall = rng.uniform(7, 10), rng.uniform(2.5, 4)
        for s in range(per_patient):
            cy, cx = size / 2 + rng.uniform(-3, 3, 2)
            es = rng.uniform(0.3, 0.45)
            shrink = np.where(phase < es, np.sin(np.pi / 2 * phase / es), np.cos(np.pi / 2 * (phase - es) / (1 - es)))
            radius = (r0 - s) * (1 - rng.uniform(0.25, 0.4) * shrink)
            r = np.hypot(yy - cy, xx - cx)
            cine = np.full((frames, size, size), 0.12, np.float32)
            for t in range(frames):
                cine[t][r <= radius[t] + wall] = 0.35
                cine[t][r <= radius[t]] = 0.85
                cine[t][np.hypot(yy - cy - 2, xx - cx + radius[t] + wall + 6) <= 6 + 0.2 * radius[t]] = 0.75
            cines.append(np.clip(cine + rng.normal(0, 0.04, cine.shape).astype(np.float32), 0, 1))
            groups.append(f"p{p:02d}")
    return np.stack(cines), np.array(groups)


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter.from_pretrained()


@pytest.fixture(scope="module")
def two_draws():
    """Two independent draws of the same toy distribution; the second's cines are "requested" for the
    first's patients (same ids), as a generator's are."""
    first, groups = moving_hearts(seed=0)
    second, _ = moving_hearts(seed=1)
    return first, second, groups


def test_blurred_cines_are_told_apart(two_draws, segmenter):
    first, second, groups = two_draws
    blurred = np.clip(gaussian_filter(second, (0, 0, 1.0, 1.0)), 0, 1).astype(np.float32)
    result = turing.classifier_two_sample_test(first, blurred, groups, groups, segmenter=segmenter, n_boot=200)
    assert result["max_auc"] > 0.9 and result["features"]["auc"] > 0.9  # measured 1.00 / 1.00
    assert result["n_first"] == result["n_second"] == 36 and result["n_groups"] == 12 and result["folds"] == 5
    low, high = result["cnn"]["ci95"]
    assert 0 <= low <= result["cnn"]["auc"] <= high <= 1


def test_scrambled_motion_is_told_apart_by_the_cnn(two_draws, segmenter):
    """Frames shuffled in time: every frame is a fine toy heart, only the motion is wrong. The features
    classifier (mean and SD over frames) cannot see frame order by design; the CNN must."""
    first, second, groups = two_draws
    rng = np.random.default_rng(0)
    scrambled = np.stack([cine[rng.permutation(len(cine))] for cine in second])
    result = turing.classifier_two_sample_test(first, scrambled, groups, groups, segmenter=segmenter, n_boot=200)
    assert result["cnn"]["auc"] > 0.9 and result["max_auc"] > 0.9  # measured 1.00


def test_two_draws_of_one_set_are_not_told_apart(two_draws, segmenter):
    first, second, groups = two_draws
    result = turing.classifier_two_sample_test(first, second, groups, groups, segmenter=segmenter, n_boot=200)
    for name in ("cnn", "features"):  # measured 0.38 / 0.32: grouped CV reads a little below 0.5 under the null
        auc, (low, high) = result[name]["auc"], result[name]["ci95"]
        assert auc < 0.75 or low <= 0.5 <= high, (name, result[name])


def test_cnn_scores_are_deterministic_given_a_seed():
    frames, groups = moving_hearts(patients=4, per_patient=2, seed=3)
    labels = np.tile([0, 1], len(frames) // 2)
    folds = turing.grouped_folds(labels, groups, 2, seed=0)
    first = turing.cnn_scores(frames, labels, folds, seed=5, epochs=2)
    assert np.array_equal(first, turing.cnn_scores(frames, labels, folds, seed=5, epochs=2))
    assert not np.array_equal(first, turing.cnn_scores(frames, labels, folds, seed=6, epochs=2))


def test_cine_features_pool_every_encoder_level(segmenter):
    frames, _ = moving_hearts(patients=2, per_patient=2, seed=4)
    features = turing.cine_features(segmenter, frames)
    channels = sum(segmenter.config.channels)  # every encoder level and the bottleneck
    assert features.shape == (4, 2 * channels) and np.isfinite(features).all()
    still = np.repeat(frames[:, :1], frames.shape[1], axis=1)  # a cine that does not move has SD 0
    assert np.allclose(turing.cine_features(segmenter, still)[:, channels:], 0, atol=1e-5)


def test_fast_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    scores = rng.integers(0, 5, 50).astype(float)  # many ties
    assert turing._auc_fast(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(turing._auc_fast(np.zeros(5, int), scores[:5]))


def test_matched_control_answers_every_heldout_cine_from_a_matched_patient():
    heldout = pd.DataFrame({"subject": ["a", "a", "a", "b", "b"], "group": ["NOR", "NOR", "NOR", "DCM", "DCM"],
                            "slice_position": [0.1, 0.5, 0.9, 0.2, 0.8]})
    train = pd.DataFrame({"subject": ["x"] * 4 + ["y"] * 3 + ["z"] * 2,
                          "group": ["DCM"] * 4 + ["NOR"] * 3 + ["HCM"] * 2,
                          "slice_position": [0.0, 0.3, 0.6, 0.9, 0.2, 0.5, 0.8, 0.1, 0.9]})
    rows = turing.matched_control(heldout, train, seed=0)
    assert list(train["subject"].iloc[rows]) == ["y", "y", "y", "x", "x"]  # same group, whole patients
    assert list(rows[:3]) == [4, 5, 6] and list(rows[3:]) == [1, 3]  # nearest positions, no reuse
    assert np.array_equal(rows, turing.matched_control(heldout, train, seed=0))
    with pytest.raises(ValueError, match="lacks columns"):
        turing.matched_control(heldout.drop(columns=["group"]), train)


@pytest.mark.parametrize("change, message", [
    (lambda a: a[0], "shape \\(N, T, H, W\\)"),
    (lambda a: np.where(a > 0.5, np.nan, a).astype(np.float32), "NaN or infinite"),
    (lambda a: a * 2, "must be in \\[0, 1\\]"),
    (lambda a: (a * 255).astype(np.uint8), "divide by 255"),
    (lambda a: a[:, :8], "different cine shapes"),
    (lambda a: a[:3], "at least 4 per set"),
])
def test_bad_input_is_refused_with_one_clear_message(change, message):
    first, groups = moving_hearts(patients=3, per_patient=2, seed=2)
    second = change(first.copy())
    second_groups = groups[:len(second)] if second.ndim == 4 else groups
    with pytest.raises(ValueError, match=message):
        turing.classifier_two_sample_test(first, second, groups, second_groups, segmenter=object())


def test_too_few_patients_or_mismatched_ids_are_refused():
    first, groups = moving_hearts(patients=1, per_patient=4, seed=2)
    with pytest.raises(ValueError, match="at least 2 patients"):
        turing.classifier_two_sample_test(first, first, groups, groups, segmenter=object())
    with pytest.raises(ValueError, match="3 patient ids for 4 cines"):
        turing.classifier_two_sample_test(first, first, groups[:3], groups, segmenter=object())
