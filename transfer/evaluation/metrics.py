"""Classification metrics from predicted probabilities, in plain NumPy."""

import numpy as np


def classification_metrics(
    probabilities: np.ndarray, labels: np.ndarray, classes: list[str], top_k: int
) -> dict:
    """Accuracy, loss, top-k accuracy, macro/weighted F1 and per-class P/R/F1/support."""
    n_classes = len(classes)
    predicted = probabilities.argmax(axis=1)
    k = min(top_k, n_classes)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    true_probability = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    per_class = {}
    f1_scores, supports = [], []
    for index, name in enumerate(classes):
        true_positive = int(np.sum((predicted == index) & (labels == index)))
        predicted_count = int(np.sum(predicted == index))
        support = int(np.sum(labels == index))
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        f1_scores.append(f1)
        supports.append(support)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(true_probability))),
        f"top_{k}_accuracy": float(np.mean(np.any(top == labels[:, None], axis=1))),
        "macro_f1": float(np.mean(f1_scores)),
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
