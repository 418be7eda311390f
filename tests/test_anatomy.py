"""Per-frame anatomy checks on synthetic label maps: a ringed LV with an RV on its left passes; a bare LV,
a missing LV and an RV on the wrong side each fail the check they should, and only that one."""

import numpy as np
import pytest

from cardiosynth.data.labels import LV, MYO, RV
from cardiosynth.measure import anatomy

SIZE, FRAMES = 64, 4
MID = 0.5  # a slice position where an RV is expected
APEX = 0.95  # beyond RV_EXPECTED_POSITIONS


def heart(ring: bool = True, lv: bool = True, rv_side: float | None = -1.0) -> np.ndarray:
    """(T, H, W) labels: LV disc (radius 8) at the centre, a 3 px MYO ring, an RV disc 16 px to the left
    (``rv_side`` -1) or right (+1) of the LV, or none."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    r = np.hypot(yy - 32, xx - 32)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    if rv_side is not None:
        labels[np.hypot(yy - 34, xx - 32 - rv_side * 17) <= 5] = RV
    if ring:
        labels[r <= 11] = MYO
    if lv:
        labels[r <= 8] = LV
    return np.repeat(labels[None], FRAMES, axis=0)


def checks_of(*cines, positions=None):
    positions = [MID] * len(cines) if positions is None else positions
    return anatomy.check_anatomy(np.stack(cines), positions)


def test_a_ringed_lv_with_the_rv_on_its_left_passes_everything():
    checks = checks_of(heart())
    assert set(checks) == set(anatomy.CHECKS)
    for name, passed in checks.items():
        assert passed.shape == (1, FRAMES) and passed.all(), name
    assert anatomy.lv_ring_share(heart())[0] == pytest.approx(1.0)


def test_an_lv_without_a_ring_fails_ringed_only():
    checks = checks_of(heart(ring=False))
    assert not checks["lv_ringed"].any() and not checks["all"].any()
    assert checks["lv_found"].all() and checks["rv_where_expected"].all()
    half = heart()
    half[:, :, 32:][half[:, :, 32:] == MYO] = 0  # the ring opened on one side: half the border leaks
    assert 0.3 < anatomy.lv_ring_share(half)[0] < 0.7
    assert not checks_of(half)["lv_ringed"].any()


def test_a_missing_lv_fails_found_and_ringed():
    checks = checks_of(heart(lv=False))
    assert not checks["lv_found"].any() and not checks["lv_ringed"].any() and not checks["all"].any()
    assert np.isnan(anatomy.lv_ring_share(heart(lv=False))).all()
    tiny = heart(ring=False, lv=False)
    tiny[:, 30:32, 30:33] = LV  # 6 px: below LV_MIN_PIXELS
    assert not checks_of(tiny)["lv_found"].any()


def test_the_rv_must_be_on_its_side_where_the_slice_position_expects_one():
    wrong, missing = heart(rv_side=1.0), heart(rv_side=None)
    checks = checks_of(wrong, missing)
    assert not checks["rv_where_expected"].any() and not checks["all"].any()
    assert checks["lv_found"].all() and checks["lv_ringed"].all()
    at_apex = checks_of(wrong, missing, positions=[APEX, APEX])  # no RV expected there: anything passes
    assert at_apex["rv_where_expected"].all() and at_apex["all"].all()


def test_summary_shares_and_patient_bootstrap():
    cines = [heart(), heart(), heart(ring=False), heart()]
    checks = checks_of(*cines)
    checks["lv_ringed"][0, 0] = False  # one more failing frame
    summary = anatomy.summarize_anatomy(checks, groups=["a", "a", "b", "c"], n_boot=300)
    assert summary["lv_found"]["share"] == 1.0 and summary["lv_found"]["ci95"] == [1.0, 1.0]
    assert summary["lv_ringed"]["share"] == pytest.approx(1 - (FRAMES + 1) / (4 * FRAMES))
    low, high = summary["lv_ringed"]["ci95"]
    assert low < summary["lv_ringed"]["share"] < high
    assert anatomy.summarize_anatomy(checks)["all"]["ci95"] is None  # no groups, no interval
    assert summary == anatomy.summarize_anatomy(checks, groups=["a", "a", "b", "c"], n_boot=300)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, T, H, W\)"):
        anatomy.check_anatomy(heart(), [MID])
    with pytest.raises(ValueError, match="integer label maps"):
        anatomy.check_anatomy(heart()[None].astype(float), [MID])
    with pytest.raises(ValueError, match="2 slice positions for 1 cines"):
        anatomy.check_anatomy(heart()[None], [MID, MID])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        anatomy.check_anatomy(heart()[None], [1.5])
    with pytest.raises(ValueError, match="3 group ids for 4 cines"):
        anatomy.summarize_anatomy(checks_of(heart(), heart(), heart(), heart()), groups=["a", "b", "c"])
