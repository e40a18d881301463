"""Stage `split`: assign each image to train, val or test by a hash of its path and the seed."""

import csv
import hashlib
import logging
from collections import Counter
from pathlib import Path

from stages.atomic import atomic_output, write_csv
from stages.cli import PipelineError, run
from stages.images import has_image_extension
from stages.params import load_params
from stages.paths import RAW_DIR, SPLIT_DIR, SPLITS

log = logging.getLogger("split")


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
    with (split_dir / f"{name}.csv").open(newline="") as file:
        return [(row["path"], row["label"]) for row in csv.DictReader(file)]


def main() -> None:
    params = load_params()
    paths = list_images(RAW_DIR)
    splits = split_images(paths, params.seed, params.split.val, params.split.test)
    with atomic_output(SPLIT_DIR) as split_dir:
        split_dir.mkdir()
        for name, images in splits.items():
            write_split(split_dir / f"{name}.csv", images)
    log.info(", ".join(f"{name} {len(images)}" for name, images in splits.items()))


if __name__ == "__main__":
    run(main)
