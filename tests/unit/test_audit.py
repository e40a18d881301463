"""The audit's building blocks on synthetic feature vectors and tiny images: duplicates,
label checks, outliers, unusable photos, leaks."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from transfer.atomic import write_csv
from transfer.audit.duplicates import near_duplicate_pairs
from transfer.audit.fences import lower_bar, upper_bar
from transfer.audit.findings import AuditedImages, find_suspects
from transfer.audit.label_errors import fold_of, label_issues, out_of_fold_probabilities
from transfer.audit.leaks import leaked_test_images
from transfer.audit.outliers import neighbour_distances, outliers
from transfer.audit.quality import MEMO_SPACE, measure, photo_measures
from transfer.audit.unusable import unusable
from transfer.errors import PipelineError
from transfer.evaluation.metrics import leak_metrics
from transfer.hashing import sha256_of
from transfer.memo.store import Memo, MemoCount
from transfer.params import LABEL_RULES, AuditParams
from transfer.review.items import copy_in_pair


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


@pytest.mark.parametrize("rule", LABEL_RULES)
def test_planted_label_errors_are_flagged_and_nothing_else(rule: str) -> None:
    """Every miss finds all five; cleanlab's rules at least three, as its confident joint
    counts an image as another class's only when the model is as sure of it as of that
    class's own images on average, and these, exchangeable with their class's, are often
    a little under."""
    features, labels = clusters(per_class=60)
    wrong = np.arange(0, 60, 12)  # five images of class 0 filed as class 1
    noisy = labels.copy()
    noisy[wrong] = 1
    folds = fold_of(np.random.default_rng(2).random(len(labels)), 5)
    probabilities = out_of_fold_probabilities(features, noisy, folds, 3, 0.1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)  # float32
    issues = label_issues(probabilities, noisy, rule)
    flagged = [index for index, _, _ in issues]
    assert set(flagged) <= set(wrong.tolist())
    assert len(flagged) == 5 if rule == "all_misses" else len(flagged) >= 3
    assert all(suggested == 0 for _, suggested, _ in issues)
    assert [score for _, _, score in issues] == sorted((s for _, _, s in issues), reverse=True)
    given = probabilities[flagged, noisy[flagged]]
    np.testing.assert_allclose([score for _, _, score in issues], 1 - given, atol=1e-12)


def test_the_suspects_listed_are_the_most_suspicious_max_suspects_share() -> None:
    features, labels = clusters(per_class=60)
    labels[np.arange(0, 60, 12)] = 1  # five images of class 0 filed as class 1
    paths = [f"{label}/{index}.jpg" for index, label in enumerate(labels)]
    images = AuditedImages(features, labels, paths, ["train"] * len(paths))
    classes = ("a", "b", "c")
    everything = find_suspects(
        images, classes, AuditParams(label_issues="all_misses", max_suspects=1.0), seed=0
    )
    assert everything.flagged == len(everything.suspects) == 5
    capped = find_suspects(
        images, classes, AuditParams(label_issues="all_misses", max_suspects=0.02), seed=0
    )
    assert capped.flagged == 5 and capped.suspects == everything.suspects[:3]  # 2% of 180
    assert capped.out_of_fold_accuracy == everything.out_of_fold_accuracy


def test_the_label_rules_differ_on_an_unsure_model() -> None:
    """Every rule runs; `both` is the strictest of its two prunings and stricter than every
    miss on a model that often errs."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 50)
    probabilities = rng.dirichlet(np.ones(3), len(labels))
    probabilities[np.arange(len(labels)), labels] += 0.4
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    flagged = {rule: len(label_issues(probabilities, labels, rule)) for rule in LABEL_RULES}
    misses = int((probabilities.argmax(axis=1) != labels).sum())
    assert flagged["all_misses"] == misses > 0
    assert flagged["both"] <= min(flagged["prune_by_noise_rate"], flagged["prune_by_class"])
    assert flagged["both"] < misses


def test_a_far_away_row_is_the_only_outlier() -> None:
    features, _ = clusters(per_class=40)
    far = np.random.default_rng(4).normal(0, 1, (1, features.shape[1])) * 5
    features = np.vstack([features, far])
    scores = neighbour_distances(features, 10)
    brute = (
        1
        - (features / np.linalg.norm(features, axis=1, keepdims=True))
        @ (features / np.linalg.norm(features, axis=1, keepdims=True)).T
    )
    np.fill_diagonal(brute, np.inf)
    np.testing.assert_allclose(scores, np.sort(brute, axis=1)[:, :10].mean(axis=1), atol=1e-5)
    assert [index for index, _ in outliers(scores, 2.0)] == [len(features) - 1]


def test_a_group_of_foreign_rows_is_found_with_more_neighbours_than_its_size() -> None:
    features, _ = clusters(per_class=40)
    foreign = np.random.default_rng(5).normal(0, 1, features.shape[1]) * 5
    group = foreign + np.random.default_rng(6).normal(0, 0.4, (4, features.shape[1]))
    features = np.vstack([features, group])  # 4 of 124 rows: under the 5% that set the bar
    found = {index for index, _ in outliers(neighbour_distances(features, 10), 2.0)}
    assert found == set(range(120, 124))
    assert not {index for index, _ in outliers(neighbour_distances(features, 3), 2.0)} & found


def test_bars_lie_the_fence_times_the_tail_from_the_median() -> None:
    values = np.arange(101.0)  # median 50, 5th percentile 5, 95th 95
    assert upper_bar(values, 2.0) == 50 + 2 * 45
    assert lower_bar(values, 1.0) == 5.0


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


def photo(kind: str, seed: int = 0) -> bytes:
    """A 48 px JPEG: a textured, noisy scene, the same near-black or blurred, flat grey, or
    stretched to a strip."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (48, 48), tuple(rng.integers(60, 200, 3).tolist()))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        (x, y), (w, h) = rng.integers(0, 40, 2), rng.integers(3, 16, 2)
        draw.rectangle(
            [int(x), int(y), int(x + w), int(y + h)], fill=tuple(rng.integers(0, 256, 3).tolist())
        )
    noise = rng.normal(0, 12, (48, 48, 3))
    image = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))
    if kind == "dark":
        image = image.point(lambda value: value // 20)
    elif kind == "blurred":
        image = image.filter(ImageFilter.GaussianBlur(8))
    elif kind == "flat":
        image = Image.new("RGB", (48, 48), (128, 128, 128))
    elif kind == "strip":
        image = image.resize((96, 16))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_dark_blurred_flat_odd_and_copied_photos_are_unusable() -> None:
    kinds = ["dark", "blurred", "flat", "strip"]
    # Blur is judged against the set: the bad ones are under the 5% that set its bar.
    data = [photo("scene", seed) for seed in range(100)] + [photo(k, 999) for k in kinds]
    data.append(data[7])  # a byte-identical copy of a photo, under a later name
    paths = [f"c/{index:03d}.jpg" for index in range(len(data))]
    hashes = [str(hash(item)) for item in data]
    found = unusable([measure(item) for item in data], paths, hashes, blur_fence=2.0)
    assert {paths[i]: issue for i, issue, _ in found} == {
        "c/100.jpg": "dark",
        "c/101.jpg": "blurry",
        "c/102.jpg": "low_information",
        "c/103.jpg": "odd_aspect_ratio",
        "c/104.jpg": "exact_duplicate",
    }
    assert all(0 < score <= 1 for _, _, score in found)


def test_of_two_same_bytes_the_longer_name_is_the_copy_whatever_the_order() -> None:
    same = [photo("scene", 3)] * 2
    for paths, expected in (
        (["c/a (copy).jpg", "c/a.jpg"], "c/a (copy).jpg"),
        (["c/b.jpg", "c/a_1.jpg"], "c/a_1.jpg"),
    ):
        found = unusable([measure(item) for item in same], paths, ["h", "h"], blur_fence=2.0)
        assert [(paths[i], issue) for i, issue, _ in found] == [(expected, "exact_duplicate")]
        assert copy_in_pair(paths, ["val", "val"], Path("nowhere"), identical=True) == expected


def test_measures_come_from_the_memo_and_a_changed_photo_fails(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "c").mkdir(parents=True)
    for name, kind in (("a.jpg", "scene"), ("b.jpg", "dark")):
        (raw / "c" / name).write_bytes(photo(kind))
    photos = [(f"c/{name}", sha256_of(raw / "c" / name)) for name in ("a.jpg", "b.jpg")]
    memo, first, second = Memo(tmp_path / "memo"), MemoCount(), MemoCount()
    measured = photo_measures(photos, raw, memo=memo, count=first)
    assert (first.computed, first.reused) == (2, 0)
    assert photo_measures(photos, raw, memo=memo, count=second) == measured
    assert (second.computed, second.reused) == (0, 2)
    assert measured[1].brightest < 0.1 < measured[0].brightest
    entries = [path for path in (tmp_path / "memo" / MEMO_SPACE).rglob("*") if path.is_file()]
    assert len(entries) == 2  # one a photo, by its bytes
    (raw / "c" / "a.jpg").write_bytes(photo("scene", 1))
    with pytest.raises(PipelineError, match="a.jpg changed since the split"):
        photo_measures(photos, raw, memo=Memo(tmp_path / "empty"), count=MemoCount())
