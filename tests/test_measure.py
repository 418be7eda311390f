import numpy as np
import pandas as pd
import pytest

from cardiosynth.measure import metrics
from cardiosynth.measure.curves import NOT_MEASURABLE, measure_labels, parabolic_minimum, readable, unreadable_reason
from cardiosynth.measure.estimator import PhenotypeEstimator
from cardiosynth.measure.timing import time_callable

SPACING = (2.2, 2.2)


def disc_phantom(radii, size=64, centre=(32.3, 31.7), myo_width=4.0):
    """(T, H, W) labels: LV disc of radius radii[t] (pixels) inside a myocardial ring of fixed width."""
    rows, cols = np.mgrid[:size, :size]
    r = np.hypot(rows - centre[0], cols - centre[1])
    labels = np.zeros((len(radii), size, size), np.uint8)
    for t, radius in enumerate(radii):
        labels[t][r <= radius + myo_width] = 2
        labels[t][r <= radius] = 3
    return labels


def test_disc_phantom_area_and_fac_match_analytic_values():
    t = np.arange(16)
    radii = 14 - 5 * np.sin(np.pi * t / 12).clip(0)  # ED at t = 0, ES at t = 6
    m = measure_labels(disc_phantom(radii), SPACING)
    analytic = np.pi * radii**2 * SPACING[0] * SPACING[1]
    np.testing.assert_allclose(m.lv_area_mm2, analytic, rtol=0.03)
    assert (m.ed_frame, m.es_frame) == (0, 6)
    analytic_fac = 1 - (9 / 14) ** 2
    assert m.lv_fac == pytest.approx(analytic_fac, rel=0.03)
    assert m.myo_area_ed_mm2 == pytest.approx(np.pi * (18**2 - 14**2) * 2.2**2, rel=0.03)
    assert m.rv_area_mm2.max() == 0 and np.isnan(m.rv_fac)


def test_subframe_es_from_a_parabola():
    curve = (np.arange(10) - 4.3) ** 2 + 1.0
    assert parabolic_minimum(curve, int(np.argmin(curve))) == pytest.approx(4.3)


def test_read_back_is_unreadable_when_the_lv_vanishes_in_a_frame():
    radii = np.array([12.0, 10, 8, 6, 5, 6, 8, 10])
    healthy = measure_labels(disc_phantom(radii), SPACING)
    assert healthy.lv_found_in_every_frame and readable("est_LVEF", 55.0, healthy.lv_area_mm2)
    lost = radii.copy()
    lost[4] = -1  # the segmenter finds no LV cavity in frame 4 (the ring of myocardium remains)
    apex = measure_labels(disc_phantom(lost), SPACING)
    assert apex.lv_area_mm2[4] == 0 and not apex.lv_found_in_every_frame
    assert unreadable_reason("est_LVEF", 55.0, apex.lv_area_mm2) == "the segmenter finds no LV in frame 4"
    assert not readable("est_LVEDV", 80.0, apex.lv_area_mm2)  # every estimate from those curves
    nowhere = measure_labels(disc_phantom(np.full(8, -1.0)), SPACING)  # no LV at all, ED area 0
    assert nowhere.lv_area_mm2[nowhere.ed_frame] == 0
    assert unreadable_reason("est_LVEF", -28.0, nowhere.lv_area_mm2) == "the segmenter finds no LV in any frame"
    assert NOT_MEASURABLE == "not measurable on this slice"


@pytest.mark.parametrize("name, value, ok", [
    ("est_LVEF", -28.0, False), ("LVEF", 100.5, False), ("est_LVEF", 0.0, True), ("est_LVEF", 62.0, True),
    ("est_LVEDV", -3.0, False), ("est_LVEDV", 0.0, False), ("est_RVEDV", 140.0, True), ("LVSV", -1.0, False),
    ("LVSV", 0.0, True), ("LVESV", 0.0, False), ("LVM", 0.0, False), ("est_LVEF", float("nan"), False),
    ("est_LVEF", None, False),
])
def test_read_back_values_outside_the_physical_range_are_unreadable(name, value, ok):
    assert readable(name, value) is ok
    if not ok and value is not None and np.isfinite(value):
        assert "outside the physical range" in unreadable_reason(name, value)


def test_valid_mask_excludes_padding():
    labels = disc_phantom([10, 8, 6, 8])
    valid = np.ones((64, 64), bool)
    valid[:, :32] = False
    full, half = measure_labels(labels, SPACING), measure_labels(labels, SPACING, valid)
    assert half.lv_area_mm2[0] == pytest.approx(full.lv_area_mm2[0] / 2, rel=0.1)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="T >= 3"):
        measure_labels(np.zeros((64, 64)), SPACING)


def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    distances = [metrics.frechet_distance(a, a + shift) for shift in (0.1, 0.5, 1.0)]
    assert distances == sorted(distances)
    assert distances[2] == pytest.approx(8 * 1.0**2, rel=1e-3)  # a pure mean shift of 1 in 8 dimensions
    wider = metrics.frechet_distance(a, a * 2)
    assert wider > 1.0


@pytest.mark.parametrize("a, b, message", [
    (np.zeros((1, 4)), np.zeros((5, 4)), "at least two"),
    (np.zeros((5, 4)), np.zeros((5, 3)), "Feature sizes differ"),
    (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
])
def test_frechet_refuses_bad_sets(a, b, message):
    with pytest.raises(ValueError, match=message):
        metrics.frechet_distance(a, b)


def test_adherence_statistics():
    rng = np.random.default_rng(1)
    requested = rng.uniform(80, 250, 60)
    perfect = metrics.adherence(requested, requested)
    assert perfect["pearson_r"] == pytest.approx(1) and perfect["mae"] == 0
    noisy = metrics.adherence(requested, requested + rng.normal(0, 20, 60) + 5, groups=np.repeat(np.arange(12), 5))
    assert 0.7 < noisy["pearson_r"] < 0.99
    assert noisy["pearson_r_ci95"][0] <= noisy["pearson_r"] <= noisy["pearson_r_ci95"][1]
    assert noisy["mae_ci95"][0] < noisy["mae"] < noisy["mae_ci95"][1]
    assert noisy["bias"] == pytest.approx(5, abs=6)
    with pytest.raises(ValueError, match="at least three"):
        metrics.adherence([1.0, np.nan], [1.0, 2.0])


def test_nearest_neighbour_and_diversity():
    rng = np.random.default_rng(2)
    reference = rng.uniform(size=(10, 4, 8, 8)).astype(np.float32)
    queries = np.concatenate([reference[3:4], reference[5:6] + 0.1])
    distance, index = metrics.nearest_neighbour_rmse(queries, reference)
    assert index.tolist() == [3, 5] and distance[0] == pytest.approx(0, abs=1e-3)
    assert distance[1] == pytest.approx(0.1, rel=0.05)
    assert metrics.mean_pairwise_distance(np.zeros((5, 3))) == 0


def test_estimator_recovers_a_known_relation():
    rng = np.random.default_rng(3)
    n = 120
    table = pd.DataFrame({
        "lv_area_ed_mm2": rng.uniform(500, 3000, n), "lv_area_es_mm2": rng.uniform(200, 1500, n),
        "myo_area_ed_mm2": rng.uniform(400, 1500, n), "rv_area_ed_mm2": rng.uniform(300, 2500, n),
        "rv_area_es_mm2": rng.uniform(100, 1200, n), "lv_fac": rng.uniform(0.1, 0.7, n),
        "rv_fac": rng.uniform(0.1, 0.6, n), "slice_position": rng.uniform(0, 1, n)})
    for name in ("LVEDV", "LVESV", "LVSV", "LVM", "RVEDV", "RVESV", "RVSV"):
        table[name] = 0.1 * table["lv_area_ed_mm2"] * (1.2 - 0.5 * table["slice_position"])
    table["LVEF"] = table["RVEF"] = 100 * table["lv_fac"]
    estimator = PhenotypeEstimator().fit(table, groups=np.arange(n) // 4)
    predicted = estimator.predict(table)
    assert np.corrcoef(predicted["LVEDV"], table["LVEDV"])[0, 1] > 0.98
    assert np.corrcoef(predicted["LVEF"], table["LVEF"])[0, 1] > 0.98


def test_benchmark_reports_json_fields():
    result = time_callable(lambda: sum(range(1000)), batch_size=4, warmup=1, repeats=3)
    assert result["batch_size"] == 4 and len(result["seconds_per_batch_all"]) == 3
    assert result["seconds_per_cine"] == pytest.approx(result["seconds_per_batch_median"] / 4, rel=0.01, abs=1e-4)
    with pytest.raises(ValueError):
        time_callable(lambda: None, batch_size=0)
