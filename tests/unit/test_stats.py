"""The statistics of a test set against independent references: SciPy's binomial test,
Newcombe's published Wilson intervals, and textbook formulas worked by hand."""

import math

import numpy as np
import pytest

from transfer.evaluation.metrics import classification_metrics
from transfer.evaluation.stats import (
    bootstrap_macro_f1_interval,
    mcnemar_p,
    mean_interval,
    paired_difference_interval,
    photos_needed,
    t_quantile_95,
    wilson_interval,
)

# scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue, SciPy 1.17.1
BINOMTEST = [
    (0, 5, 0.0625),
    (3, 11, 0.057373046875),
    (10, 10, 1.0),
    (12, 30, 0.007915897334896727),
    (40, 62, 0.037066767438560584),
    (7, 0, 0.015625),
]


@pytest.mark.parametrize(("only_a", "only_b", "expected"), BINOMTEST)
def test_mcnemar_p_is_scipys_binomial_test_on_the_discordant_photos(
    only_a: int, only_b: int, expected: float
) -> None:
    assert mcnemar_p(only_a, only_b) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_p(only_b, only_a) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_p_without_discordant_photos_is_one() -> None:
    assert mcnemar_p(0, 0) == 1.0


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [
        # (p + z²/2n ± z √(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.96, worked by hand for 81/100:
        # p = 0.81, z²/2n = 0.019207, z√(0.001539 + 0.0000960) = 0.079252, 1 + z²/n = 1.038415
        (81, 100, 0.7222, 0.8749),
        # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3
        (0, 10, 0.0, 0.2775),
        (1, 29, 0.0061, 0.1718),
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
    ],
)
def test_wilson_interval_is_the_textbook_score_interval(
    successes: int, total: int, low: float, high: float
) -> None:
    assert wilson_interval(successes, total) == pytest.approx((low, high), abs=1e-4)


def test_paired_difference_interval_approaches_the_wald_interval_on_many_photos() -> None:
    only_a, only_b, both, n = 3_000, 4_000, 60_000, 100_000
    a_right = np.zeros(n, dtype=bool)
    b_right = np.zeros(n, dtype=bool)
    a_right[:only_a] = True
    b_right[only_a : only_a + only_b] = True
    a_right[-both:] = b_right[-both:] = True
    difference = (only_b - only_a) / n
    # the paired Wald interval: var = ((b + c) - (c - b)²/n) / n²
    half = 1.96 * math.sqrt((only_a + only_b) - (only_b - only_a) ** 2 / n) / n
    low, high = paired_difference_interval(a_right, b_right)
    assert low == pytest.approx(difference - half, abs=2e-4)
    assert high == pytest.approx(difference + half, abs=2e-4)


def test_paired_difference_interval_holds_the_difference_and_narrows_with_more_photos() -> None:
    a_right = np.array([True] * 70 + [False] * 30)
    b_right = np.array([True] * 60 + [False] * 5 + [True] * 20 + [False] * 15)
    low, high = paired_difference_interval(a_right, b_right)
    assert low < 0.10 < high  # B 80 right, A 70: +10 points
    wider = high - low
    low, high = paired_difference_interval(np.tile(a_right, 10), np.tile(b_right, 10))
    assert low > 0 and high - low < wider / 2


def test_bootstrap_macro_f1_interval_is_seeded_and_holds_the_macro_f1() -> None:
    random = np.random.default_rng(5)
    labels = random.integers(0, 4, 300)
    predicted = np.where(random.random(300) < 0.7, labels, random.integers(0, 4, 300))
    first = bootstrap_macro_f1_interval(labels, predicted, 4)
    assert bootstrap_macro_f1_interval(labels, predicted, 4) == first
    macro_f1 = classification_metrics(np.eye(4)[predicted], labels, list("abcd"), 1)["macro_f1"]
    assert first[0] < macro_f1 < first[1]
    assert 0.05 < first[1] - first[0] < 0.2  # about 4 standard errors of 300 photos' F1
    assert bootstrap_macro_f1_interval(labels, labels, 4) == (1.0, 1.0)


def test_metrics_carry_their_intervals_and_the_number_of_test_photos() -> None:
    labels = np.array([0] * 50 + [1] * 50)
    predicted = labels.copy()
    predicted[:19] = 1  # 81 of 100 right
    metrics = classification_metrics(np.eye(2)[predicted], labels, ["a", "b"], 1)
    assert metrics["accuracy"] == 0.81
    assert (metrics["accuracy_low"], metrics["accuracy_high"]) == pytest.approx(
        (0.7222, 0.8749), abs=1e-4
    )
    assert metrics["macro_f1_low"] < metrics["macro_f1"] < metrics["macro_f1_high"]
    assert metrics["test_images"] == 100


def test_photos_needed_to_see_one_point() -> None:
    # ((1.95996 √0.1 + 0.84162 √(0.1 - 0.0001)) / 0.01)² = (0.61979 + 0.26601)² / 1e-4 = 7846.3
    assert photos_needed(0.1) == 7847
    assert photos_needed(0.2) > photos_needed(0.1)
    assert photos_needed(0.0) == photos_needed(0.01)  # no disagreement seen: at least 1 point


def test_t_interval_of_a_mean() -> None:
    assert t_quantile_95(2) == 4.3027  # scipy.stats.t.ppf(0.975, 2) = 4.30265
    assert t_quantile_95(30) == pytest.approx(2.04227, abs=1e-4)  # the series, scipy 2.042272
    low, high = mean_interval(np.array([2.0, -1.9, 0.5]))
    half = 4.3027 * np.std([2.0, -1.9, 0.5], ddof=1) / math.sqrt(3)
    assert (low, high) == pytest.approx((0.2 - half, 0.2 + half))
