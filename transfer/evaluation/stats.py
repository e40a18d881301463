"""How far a test-set figure can be trusted: intervals, and paired tests of two classifiers
on the same test photos, in plain NumPy (no SciPy).

Every interval is 95%. The paired functions take two boolean arrays, which photos classifier
A and classifier B got right, in the same order.
"""

import math

import numpy as np

Z_95 = 1.959963984540054  # the normal's 97.5% quantile: a two-sided 95% interval
Z_POWER_80 = 0.8416212335729143  # the normal's 80% quantile: a test with 80% power
# Student's t 97.5% quantiles for 1-9 degrees of freedom; from 10 on, a series (below)
T_95 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # a constant: the same predictions always give the same interval


def wilson_interval(successes: int, total: int) -> tuple[float, float]:
    """Wilson's score interval of a proportion, such as an accuracy (correct of total)."""
    if total <= 0:
        return 0.0, 1.0
    share = successes / total
    z2 = Z_95**2
    centre = (share + z2 / (2 * total)) / (1 + z2 / total)
    half = Z_95 * math.sqrt(share * (1 - share) / total + z2 / (4 * total**2)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def class_f1(confusion: np.ndarray) -> np.ndarray:
    """Each class's F1 score from a confusion matrix (rows actual, columns predicted): 2 TP /
    (predicted + actual), 0 for a class neither predicted nor present. Works on a stack of
    matrices too (..., classes, classes)."""
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    both = confusion.sum(axis=-1) + confusion.sum(axis=-2)
    return np.divide(2 * true_positive, both, out=np.zeros(both.shape), where=both > 0)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts of (actual, predicted) pairs; a leading axis of resamples is kept."""
    flat = np.asarray(labels, dtype=np.int64) * classes + predicted
    if flat.ndim == 1:
        return np.bincount(flat, minlength=classes**2).reshape(classes, classes)
    offsets = np.arange(len(flat))[:, None] * classes**2
    counts = np.bincount((flat + offsets).ravel(), minlength=len(flat) * classes**2)
    return counts.reshape(len(flat), classes, classes)


def bootstrap_macro_f1_interval(
    labels: np.ndarray, predicted: np.ndarray, classes: int
) -> tuple[float, float]:
    """A percentile bootstrap interval of the macro-F1: BOOTSTRAP_RESAMPLES resamples of the
    test photos, with replacement, drawn with BOOTSTRAP_SEED."""
    random = np.random.default_rng(BOOTSTRAP_SEED)
    scores = []
    for start in range(0, BOOTSTRAP_RESAMPLES, 100):  # bounds the memory of a large test set
        count = min(100, BOOTSTRAP_RESAMPLES - start)
        rows = random.integers(0, len(labels), size=(count, len(labels)))
        confusion = confusion_matrix(labels[rows], predicted[rows], classes)
        scores.append(class_f1(confusion).mean(axis=-1))
    low, high = np.percentile(np.concatenate(scores), [2.5, 97.5])
    return float(low), float(high)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """McNemar's exact test: the two-sided binomial p-value of the discordant photos (those
    only A got right, those only B got right) splitting as they did if either is as likely."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    smaller = min(only_a, only_b)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2**discordant
    return min(1.0, 2 * tail)


def paired_difference_interval(a_right: np.ndarray, b_right: np.ndarray) -> tuple[float, float]:
    """Newcombe's score interval (1998, method 10) of B's accuracy minus A's, on the same
    photos: Wilson intervals of both, combined through their correlation."""
    n = len(a_right)
    both = int(np.sum(a_right & b_right))
    only_a = int(np.sum(a_right & ~b_right))
    only_b = int(np.sum(~a_right & b_right))
    neither = n - both - only_a - only_b
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson_interval(both + only_a, n)
    low_b, high_b = wilson_interval(both + only_b, n)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    below = (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2
    above = (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2
    return p_b - p_a - math.sqrt(max(below, 0.0)), p_b - p_a + math.sqrt(max(above, 0.0))


def photos_needed(discordant_share: float, difference: float = 0.01) -> int:
    """Test photos a paired comparison needs to detect `difference` in accuracy (McNemar's
    test, 5% two-sided, 80% power; Connor 1987) when this share of photos is discordant."""
    share = max(discordant_share, difference)  # at least the difference itself disagrees
    root = Z_95 * math.sqrt(share) + Z_POWER_80 * math.sqrt(share - difference**2)
    return math.ceil(root**2 / difference**2)


def t_quantile_95(degrees: int) -> float:
    """Student's t 97.5% quantile: the table, then the Cornish-Fisher series (within 1e-4)."""
    if degrees <= len(T_95):
        return T_95[degrees - 1]
    z = Z_95
    return (
        z
        + (z**3 + z) / (4 * degrees)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * degrees**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * degrees**3)
    )


def mean_interval(values: np.ndarray) -> tuple[float, float]:
    """The t interval of a mean, such as the mean of per-split differences."""
    if len(values) < 2:
        return -math.inf, math.inf
    half = t_quantile_95(len(values) - 1) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return float(np.mean(values)) - half, float(np.mean(values)) + half
