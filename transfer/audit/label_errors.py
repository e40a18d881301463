"""Likely label errors: images whose class disagrees with confident out-of-fold predictions.

A softmax regression on the cached features is trained k times, each time without one fold,
and predicts that fold: each image is judged by a model that never saw it.
"""

import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

from transfer.params import ALL_MISSES

ITERATIONS = 300


def fold_of(positions: np.ndarray, folds: int) -> np.ndarray:
    """Fold numbers from positions in [0, 1) (a hash of each image's path)."""
    return np.minimum((positions * folds).astype(np.int64), folds - 1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_softmax_regression(
    features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, weights, bias) of an L2-regularised softmax regression on standardised
    features, by Nesterov's accelerated gradient with the step 1/L: deterministic, no seed."""
    mean = features.mean(axis=0)
    scale = np.maximum(features.std(axis=0), 1e-6)
    x = (features - mean) / scale
    x = np.hstack([x, np.ones((len(x), 1), x.dtype)])  # the bias as a last column
    targets = np.eye(n_classes, dtype=x.dtype)[labels]
    # Lipschitz constant of the gradient: half the largest eigenvalue of x'x/n, plus l2.
    vector = np.ones(x.shape[1], x.dtype)
    for _ in range(30):
        vector = x.T @ (x @ vector) / len(x)
        vector /= np.linalg.norm(vector)
    step = 1.0 / (0.5 * float(vector @ (x.T @ (x @ vector))) / len(x) + l2)
    weights = np.zeros((x.shape[1], n_classes), x.dtype)
    previous = weights
    for iteration in range(1, ITERATIONS + 1):
        look_ahead = weights + (iteration - 1) / (iteration + 2) * (weights - previous)
        gradient = x.T @ (_softmax(x @ look_ahead) - targets) / len(x) + l2 * look_ahead
        previous, weights = weights, look_ahead - step * gradient
    return mean, scale, weights[:-1], weights[-1]


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, folds: np.ndarray, n_classes: int, l2: float
) -> np.ndarray:
    """Each image's class probabilities from a model that never saw it. In float32: the
    fits read the features hundreds of times, and at half the bytes they take half the time
    for the same suspects (docs/benchmarks.md, "Figures behind the code's choices")."""
    features = features.astype(np.float32)
    probabilities = np.zeros((len(labels), n_classes))
    for fold in np.unique(folds):
        held_out = folds == fold
        mean, scale, weights, bias = fit_softmax_regression(
            features[~held_out], labels[~held_out], n_classes, l2
        )
        logits = ((features[held_out] - mean) / scale) @ weights + bias
        probabilities[held_out] = _softmax(logits)
    return probabilities


def label_issues(
    probabilities: np.ndarray, labels: np.ndarray, rule: str
) -> list[tuple[int, int, float]]:
    """(index, suggested class, score) of the images the rule flags, most suspicious first:
    the score is 1 - the out-of-fold probability of the given class (cleanlab's
    self-confidence ranking), the suggested class the likeliest other one.

    `rule` is one of cleanlab's `filter_by` modes (`find_label_issues`), or `all_misses`:
    every image whose likeliest class is another (`predicted_neq_given`, but also for a class
    too small for cleanlab's estimates). docs/benchmarks.md, "What the audit found", compares
    them on real sets with planted errors.
    """
    if rule == ALL_MISSES:
        flagged = probabilities.argmax(axis=1) != labels
    else:
        flagged = find_label_issues(labels, probabilities, filter_by=rule, n_jobs=1)
    scores = 1.0 - get_label_quality_scores(labels, probabilities, method="self_confidence")
    others = probabilities.copy()
    others[np.arange(len(labels)), labels] = -1.0
    suggested = others.argmax(axis=1)
    issues = [(int(i), int(suggested[i]), float(scores[i])) for i in np.flatnonzero(flagged)]
    return sorted(issues, key=lambda issue: (-issue[2], issue[0]))
