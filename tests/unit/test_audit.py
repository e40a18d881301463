"""The audit's building blocks on synthetic feature vectors: duplicates, label checks, leaks."""

from pathlib import Path

import numpy as np

from transfer.atomic import write_csv
from transfer.audit.duplicates import near_duplicate_pairs
from transfer.audit.label_errors import fold_of, label_issues, out_of_fold_probabilities
from transfer.audit.leaks import leaked_test_images
from transfer.evaluation.metrics import leak_metrics


def clusters(per_class: int = 40, width: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    random = np.random.default_rng(seed)
    centres = random.normal(0, 1, (3, width))
    labels = np.repeat(np.arange(3), per_class)
    return centres[labels] + random.normal(0, 0.4, (len(labels), width)), labels


def test_blockwise_pairs_are_every_pair_over_the_threshold_once() -> None:
    features = np.random.default_rng(1).normal(0, 1, (50, 8))
    features[30] = features[3] * 2.0  # the same direction: similarity 1
    features[40] = features[7] + 0.01
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    expected = {(i, j) for i in range(50) for j in range(i + 1, 50) if similarity[i, j] >= 0.9}
    for block_rows in (1, 7, 64):
        pairs = near_duplicate_pairs(features, 0.9, block_rows)
        assert {(i, j) for i, j, _ in pairs} == expected
        assert [s for _, _, s in pairs] == sorted((s for _, _, s in pairs), reverse=True)
    assert near_duplicate_pairs(features, 0.9)[0][:2] == (3, 30)


def test_planted_label_errors_rank_first() -> None:
    features, labels = clusters()
    wrong = np.arange(0, 40, 4)  # ten images of class 0 filed as class 1
    noisy = labels.copy()
    noisy[wrong] = 1
    folds = fold_of(np.random.default_rng(2).random(len(labels)), 5)
    probabilities = out_of_fold_probabilities(features, noisy, folds, 3, 0.1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)  # float32
    issues = label_issues(probabilities, noisy)
    assert {index for index, _, _ in issues[:10]} == set(wrong.tolist())
    assert all(suggested == 0 for index, suggested, _ in issues[:10])
    assert [score for _, _, score in issues] == sorted((s for _, _, s in issues), reverse=True)


def test_folds_come_from_positions() -> None:
    assert fold_of(np.array([0.0, 0.19, 0.2, 0.999999]), 5).tolist() == [0, 0, 1, 4]


def test_leaked_test_images_and_the_accuracy_without_them(tmp_path: Path) -> None:
    rows = [
        ("cat/a.jpg", "cat/b.jpg", 0.99, "train", "test"),  # b leaked
        ("dog/c.jpg", "dog/d.jpg", 0.98, "test", "train"),  # c leaked
        ("dog/e.jpg", "dog/f.jpg", 0.97, "test", "test"),  # within test: no leak
        ("dog/g.jpg", "dog/h.jpg", 0.96, "val", "test"),  # into test from val: not from train
    ]
    write_csv(tmp_path / "d.csv", ["image_a", "image_b", "similarity", "split_a", "split_b"], rows)
    leaked = leaked_test_images(tmp_path / "d.csv")
    assert leaked == {"cat/b.jpg", "dog/c.jpg"}
    paths = ["cat/b.jpg", "dog/c.jpg", "dog/e.jpg", "dog/h.jpg"]
    predicted, labels = np.array([0, 1, 1, 0]), np.array([0, 1, 1, 1])
    assert leak_metrics(predicted, labels, paths, leaked) == {
        "test_images_with_train_duplicates": 2,
        "accuracy_without_train_duplicates": 0.5,
    }
    assert (
        leak_metrics(predicted, labels, paths, set(paths))["accuracy_without_train_duplicates"]
        is None
    )
