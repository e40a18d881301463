"""Assign each image to train, val or test by a hash of its path and the seed; the split lists."""

import csv
import hashlib
from collections import Counter
from pathlib import Path

from transfer.atomic import write_csv
from transfer.errors import PipelineError
from transfer.ingest.image_files import has_image_extension
from transfer.paths import SPLITS


def list_images(raw_dir: Path) -> list[str]:
    """Relative paths `<class>/<...>/<image>` of the images under raw_dir, sorted."""
    return sorted(
        path.relative_to(raw_dir).as_posix()
        for path in raw_dir.rglob("*")
        if path.is_file() and path.parent != raw_dir and has_image_extension(path.name)
    )


def hash_position(relative_path: str, seed: int) -> float:
    """A number in [0, 1), uniform over paths, that depends only on the path and the seed."""
    digest = hashlib.sha256(f"{seed}:{relative_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(relative_path: str, seed: int, val: float, test: float) -> str:
    """The split of one image; it depends on nothing else, so adding images moves no other."""
    position = hash_position(relative_path, seed)
    if position < test:
        return "test"
    return "val" if position < test + val else "train"


def split_images(paths: list[str], seed: int, val: float, test: float) -> dict[str, list[str]]:
    """Split the images by the same expected ratios in every class; each class must train."""
    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for path in paths:
        splits[assign_split(path, seed, val, test)].append(path)
    train_classes = Counter(path.split("/")[0] for path in splits["train"])
    for name in sorted({path.split("/")[0] for path in paths}):
        if not train_classes[name]:
            raise PipelineError(
                f"class {name} has no training image with split.val={val} and split.test={test}; "
                "add images to it or lower the ratios"
            )
    for name, ratio in (("val", val), ("test", test)):
        if ratio > 0 and not splits[name]:
            raise PipelineError(
                f"split.{name}={ratio} leaves the {name} split empty with {len(paths)} images; "
                f"add images or raise split.{name}"
            )
    return splits


def write_split(path: Path, images: list[str]) -> None:
    """A human-readable CSV: one image per row with its class."""
    write_csv(path, ["path", "label"], ((image, image.split("/")[0]) for image in images))


def read_split(split_dir: Path, name: str) -> list[tuple[str, str]]:
    """The (path, label) rows of one split."""
    with split_file(split_dir, name).open(newline="") as file:
        return [(row["path"], row["label"]) for row in csv.DictReader(file)]


def split_file(split_dir: Path, name: str) -> Path:
    """The CSV list of one split."""
    return split_dir / f"{name}.csv"


def seeded_order(rows: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """The (path, label) rows in a seeded order that mixes the classes, so that any run of
    records (a shuffle buffer, the int8 calibration images) holds every class."""
    return sorted(rows, key=lambda row: hash_position(row[0], seed))
