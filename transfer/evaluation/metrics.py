"""Classification metrics from predicted probabilities, in plain NumPy."""

import numpy as np

from transfer.evaluation.stats import (
    bootstrap_macro_f1_interval,
    class_f1,
    confusion_matrix,
    wilson_interval,
)


def classification_metrics(
    probabilities: np.ndarray, labels: np.ndarray, classes: list[str], top_k: int
) -> dict:
    """Accuracy, loss, top-k accuracy, macro/weighted F1 and per-class P/R/F1/support, with
    95% intervals of the accuracy (Wilson) and the macro-F1 (a seeded bootstrap) as flat keys
    (`accuracy_low`, `accuracy_high`, ...), so `dvc metrics show` and `dvc exp show` list them."""
    n_classes = len(classes)
    predicted = probabilities.argmax(axis=1)
    k = min(top_k, n_classes)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    true_probability = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    confusion = confusion_matrix(labels, predicted, n_classes)
    f1_scores = class_f1(confusion)
    supports = confusion.sum(axis=1)
    correct = int(np.sum(predicted == labels))
    accuracy_low, accuracy_high = wilson_interval(correct, len(labels))
    f1_low, f1_high = bootstrap_macro_f1_interval(labels, predicted, n_classes)
    per_class = {}
    for index, name in enumerate(classes):
        true_positive = int(confusion[index, index])
        predicted_count = int(confusion[:, index].sum())
        support = int(supports[index])
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": float(f1_scores[index]),
            "support": support,
        }
    return {
        "accuracy": correct / len(labels),
        "accuracy_low": accuracy_low,
        "accuracy_high": accuracy_high,
        "loss": float(-np.mean(np.log(true_probability))),
        f"top_{k}_accuracy": float(np.mean(np.any(top == labels[:, None], axis=1))),
        "macro_f1": float(np.mean(f1_scores)),
        "macro_f1_low": f1_low,
        "macro_f1_high": f1_high,
        "weighted_f1": float(np.average(f1_scores, weights=supports)),
        "test_images": len(labels),
        "per_class": per_class,
    }


def agreement_metrics(
    probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray
) -> dict[str, float]:
    """Accuracy of another model (a TFLite one, say) and how often its prediction agrees with
    the reference predictions."""
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == reference)),
    }


def leak_metrics(
    predicted: np.ndarray, labels: np.ndarray, paths: list[str], leaked: set[str]
) -> dict[str, float | int | None]:
    """Accuracy without the test images that have a near-duplicate in training: a leak shows
    as a gap between it and the accuracy on every test image."""
    clean = np.array([path not in leaked for path in paths], dtype=bool)
    accuracy = float(np.mean(predicted[clean] == labels[clean])) if clean.any() else None
    return {
        "test_images_with_train_duplicates": int(len(paths) - clean.sum()),
        "accuracy_without_train_duplicates": accuracy,
    }
