"""The audit's duplicates.csv rows, and the leaks read from it: test images with a
near-duplicate in training. Kept apart from the audit's other modules, so that `evaluate`
depends on this one file only."""

import csv
from pathlib import Path

DUPLICATE_COLUMNS = ["image_a", "image_b", "similarity", "split_a", "split_b"]
DuplicateRow = tuple[str, str, float, str, str]  # in DUPLICATE_COLUMNS' order


def leaked_test_images(duplicates_file: Path) -> set[str]:
    """The test images that have a near-duplicate in the training split."""
    leaked = set()
    with duplicates_file.open(newline="") as file:
        for row in csv.DictReader(file):
            splits = {row["split_a"]: row["image_a"], row["split_b"]: row["image_b"]}
            if set(splits) == {"train", "test"}:
                leaked.add(splits["test"])
    return leaked
