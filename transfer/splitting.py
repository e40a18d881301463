"""The photos with their labels, assigned to train, val or test by a hash of their content and
the split's seed; the split lists."""

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from transfer.atomic import write_csv
from transfer.errors import PipelineError
from transfer.paths import SPLITS

COLUMNS = ["path", "label", "sha256"]


@dataclass(frozen=True)
class Photo:
    """A photo of data/raw: its path there (`<class folder>/<file>`, as in the source), its
    label (its folder's, or the one corrections.csv gives it) and the SHA-256 of its bytes,
    its identity: what the split, the augmented views and the memo are keyed by, so that a
    relabelled or moved photo keeps its split and every result computed from it."""

    path: str
    label: str
    sha256: str


def hash_position(text: str, seed: int) -> float:
    """A number in [0, 1), uniform over texts, that depends only on the text and the seed."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(sha256: str, seed: int, val: float, test: float) -> str:
    """The split of a photo, by its content; it depends on nothing else, so adding photos
    moves no other, and two copies of one photo always share a split."""
    position = hash_position(sha256, seed)
    if position < test:
        return "test"
    return "val" if position < test + val else "train"


def split_images(
    photos: list[Photo], seed: int, val: float, test: float
) -> dict[str, list[Photo]]:
    """Split the photos by the same expected ratios in every class; each class must train."""
    splits: dict[str, list[Photo]] = {name: [] for name in SPLITS}
    for photo in photos:
        splits[assign_split(photo.sha256, seed, val, test)].append(photo)
    train_classes = Counter(photo.label for photo in splits["train"])
    for name in sorted({photo.label for photo in photos}):
        if not train_classes[name]:
            raise PipelineError(
                f"class {name} has no training image with split.val={val} and split.test={test}; "
                "add images to it or lower the ratios"
            )
    for name, ratio in (("val", val), ("test", test)):
        if ratio > 0 and not splits[name]:
            raise PipelineError(
                f"split.{name}={ratio} leaves the {name} split empty with {len(photos)} images; "
                f"add images or raise split.{name}"
            )
    return splits


def write_split(path: Path, photos: list[Photo]) -> None:
    """A human-readable CSV: one photo per row with its label and its bytes' SHA-256."""
    write_csv(path, COLUMNS, ((photo.path, photo.label, photo.sha256) for photo in photos))


def read_split(split_dir: Path, name: str) -> list[Photo]:
    """The photos of one split."""
    with split_file(split_dir, name).open(newline="") as file:
        return [Photo(row["path"], row["label"], row["sha256"]) for row in csv.DictReader(file)]


def split_file(split_dir: Path, name: str) -> Path:
    """The CSV list of one split."""
    return split_dir / f"{name}.csv"


def seeded_order(photos: list[Photo], seed: int) -> list[Photo]:
    """The photos in a seeded order that mixes the classes, so that any run of records (a
    shuffle buffer, the int8 calibration images) holds every class."""
    return sorted(photos, key=lambda photo: hash_position(photo.path, seed))
