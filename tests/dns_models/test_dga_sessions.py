"""The infected-client arithmetic of the DGA session report (tutela/dns/training/dga_sessions.py)."""

from __future__ import annotations

import itertools
import math

import pytest

from tutela.dns.training import dga_sessions as S


def brute_detected_within(names: int, suspicious: int, threshold: int, n: int) -> float:
    """Every ordered draw of n names out of `names`, counted: the definition, not a formula."""
    pool = [1] * suspicious + [0] * (names - suspicious)
    draws = list(itertools.permutations(range(names), n))
    return sum(1 for d in draws if sum(pool[i] for i in d) >= threshold) / len(draws)


@pytest.mark.parametrize(
    ("names", "suspicious", "threshold", "n"), [(7, 3, 2, 4), (8, 5, 3, 5), (6, 6, 4, 4), (6, 2, 3, 5)]
)
def test_detected_within_is_the_hypergeometric_tail(names: int, suspicious: int, threshold: int, n: int) -> None:
    assert S.detected_within(names, suspicious, threshold, n) == pytest.approx(
        brute_detected_within(names, suspicious, threshold, n)
    )


def test_detected_within_edges() -> None:
    assert S.detected_within(100, 4, 5, 100) == 0.0  # fewer suspicious names than the threshold
    assert S.detected_within(100, 100, 5, 5) == 1.0  # every name suspicious: the 5th answer reports
    assert S.detected_within(100, 100, 5, 4) == 0.0
    assert S.detected_within(10, 10, 5, 50) == 1.0  # n beyond the family's names is capped


def test_answers_to_detect_is_the_median() -> None:
    n = S.answers_to_detect(1000, 300, 5)
    assert n is not None
    assert S.detected_within(1000, 300, 5, n) >= 0.5 > S.detected_within(1000, 300, 5, n - 1)
    assert S.answers_to_detect(1000, 1000, 5) == 5
    assert S.answers_to_detect(1000, 4, 5) is None


def test_false_alarm_is_the_binomial_tail() -> None:
    r, k, n = 0.01, 3, 30
    direct = sum(math.comb(n, j) * r**j * (1 - r) ** (n - j) for j in range(k, n + 1))
    assert S.false_alarm(r, k, n) == pytest.approx(direct, rel=1e-9)
    assert S.false_alarm(0.0, 1, 10) == 0.0
    assert S.false_alarm(0.5, 20, 10) == 0.0  # fewer domains than the threshold never report


def test_unseen_counts_use_each_folds_own_threshold() -> None:
    doc = {
        "folds": [
            {"families": ["a"], "val_fpr": [0.005, 0.01], "threshold_logit": [2.0, 1.0], "test_fpr": [0.004, 0.02]},
            {"families": ["b"], "val_fpr": [0.005, 0.01], "threshold_logit": [5.0, 4.0], "test_fpr": [0.006, 0.0]},
        ],
        "logits": {"a": [0.5, 1.5, 2.5], "b": [3.0, 4.5, 6.0, 7.0]},
    }
    counts, rate = S.unseen_counts(doc, 0.01)
    assert counts == {"a": (3, 2), "b": (4, 3)}
    assert rate == pytest.approx(0.01)
    with pytest.raises(ValueError, match="not in the dumped grid"):
        S.unseen_counts(doc, 0.02)


def test_shipped_scores_file_matches_the_leave_group_out_families() -> None:
    doc = S.load_lofo_scores()
    assert doc is not None
    folds = [f for fold in doc["folds"] for f in fold["families"]]
    assert sorted(folds) == sorted(doc["logits"]) and len(folds) == len(set(folds))
    for fold in doc["folds"]:
        assert fold["threshold_logit"] == sorted(fold["threshold_logit"], reverse=True)  # higher FPR, lower bar
