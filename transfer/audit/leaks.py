"""Leaks from the audit's duplicates.csv: test images with a near-duplicate in training."""

import csv
from pathlib import Path


def leaked_test_images(duplicates_file: Path) -> set[str]:
    """The test images that have a near-duplicate in the training split."""
    leaked = set()
    with duplicates_file.open(newline="") as file:
        for row in csv.DictReader(file):
            splits = {row["split_a"]: row["image_a"], row["split_b"]: row["image_b"]}
            if set(splits) == {"train", "test"}:
                leaked.add(splits["test"])
    return leaked
