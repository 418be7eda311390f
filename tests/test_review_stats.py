"""Reader-study statistics against values worked out by hand (and against scipy / sklearn directly)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cardiosynth.review.stats import (agreement, bootstrap_weights, rating_score, study_statistics,
                                      summarise_answers, weighted_auc)

TRUTH = ["synthetic", "synthetic", "real", "real"]


def answers_table() -> pd.DataFrame:
    """Two readers, four cases. A: S5 R2 R4 S1; B: S5 S3 R4 S1 (S = synthetic, R = real, digit = confidence)."""
    rows = []
    for reader, answers in {"A": ["S5", "R2", "R4", "S1"], "B": ["S5", "S3", "R4", "S1"]}.items():
        for k, (truth, given) in enumerate(zip(TRUTH, answers)):
            rows.append({"reader_id": reader, "reader": f"Dr {reader}", "case_id": f"c{k}", "truth": truth,
                         "answer": {"S": "synthetic", "R": "real"}[given[0]], "confidence": int(given[1]),
                         "seconds": float(10 * (k + 1))})
    return pd.DataFrame(rows)


def test_rating_score_orders_sure_real_to_sure_synthetic():
    assert list(rating_score(["real"] * 5 + ["synthetic"] * 5, [5, 4, 3, 2, 1, 1, 2, 3, 4, 5])) == list(range(1, 11))


def test_per_reader_and_pooled_values_match_hand_computation():
    table = answers_table()
    result = study_statistics(table, n_cases=4, n_boot=200)
    a, b = result["readers"]
    # reader A: 2/4 correct -> p = 1; sensitivity 1/2, specificity 1/2; AUC: pos {10, 4} vs neg {2, 6} -> 3/4
    assert a["accuracy"]["value"] == 0.5 and a["accuracy"]["p_value"] == pytest.approx(1.0)
    assert a["sensitivity"]["value"] == 0.5 and a["specificity"]["value"] == 0.5
    assert a["auc"]["value"] == pytest.approx(0.75)
    # reader B: 3/4 -> two-sided p = 2 * 5/16 = 0.625, exact 95 % CI (0.194, 0.994); AUC 1
    assert b["accuracy"]["p_value"] == pytest.approx(0.625)
    assert b["accuracy"]["ci95"] == pytest.approx([0.1941, 0.9937], abs=1e-4)
    assert b["sensitivity"]["value"] == 1.0 and b["specificity"]["value"] == 0.5
    assert b["auc"]["value"] == pytest.approx(1.0)
    pooled = result["pooled"]
    # 5/8 correct: p = 2 * (C(8,5)+C(8,6)+C(8,7)+C(8,8)) / 256 = 186/256; AUC: 14 of 16 pairs -> 0.875
    assert pooled["accuracy"]["value"] == 5 / 8 and pooled["accuracy"]["p_value"] == pytest.approx(186 / 256)
    assert pooled["auc"]["value"] == pytest.approx(0.875)
    assert pooled["confusion"] == {"synthetic_called_synthetic": 3, "synthetic_called_real": 1,
                                   "real_called_real": 2, "real_called_synthetic": 2}
    assert pooled["seconds_per_case"]["median"] == pytest.approx(25.0)
    assert result["n_readers_finished"] == 2
    low, high = pooled["auc"]["ci95"]
    assert 0 <= low <= pooled["auc"]["value"] <= high <= 1


def test_fleiss_kappa_matches_hand_computation():
    # cases: SS, RS, RR, SS -> P = 3/4, p_S = 5/8, P_e = 34/64, kappa = (3/4 - 34/64) / (1 - 34/64) = 7/15
    result = agreement(answers_table(), n_boot=100)
    assert result["fleiss_kappa"] == pytest.approx(7 / 15)
    assert result["n_readers"] == 2 and result["n_cases"] == 4


def test_agreement_needs_two_complete_readers_and_two_kinds_of_answer():
    table = answers_table()
    assert agreement(table[~((table.reader_id == "B") & (table.case_id == "c3"))])["fleiss_kappa"] is None
    same = table.assign(answer="real")
    assert agreement(same)["fleiss_kappa"] is None and "same" in agreement(same)["note"]


def test_vectorised_bootstrap_auc_equals_sklearn_with_weights():
    rng = np.random.default_rng(1)
    truth = rng.random(60) < 0.5
    score = rng.integers(1, 11, 60)
    weights = bootstrap_weights(rng.integers(0, 5, 60), np.arange(60), n_boot=5, seed=2)
    fast = weighted_auc(truth, score, weights)
    for k in range(5):
        assert fast[k] == pytest.approx(roc_auc_score(truth, score, sample_weight=weights[k]))


def test_one_kind_of_case_gives_no_auc_but_no_crash():
    table = answers_table()
    only_real = table[table.truth == "real"]
    summary = summarise_answers(only_real, n_boot=50)
    assert summary["auc"]["value"] is None and summary["sensitivity"]["value"] is None
    assert summary["specificity"]["value"] == pytest.approx(2 / 4)
