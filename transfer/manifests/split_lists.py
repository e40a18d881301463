"""data/split/<split>.csv: the photos of each split, with their label and their bytes' SHA-256,
as `split` writes them and `cache` reads them."""

import csv
from dataclasses import dataclass
from pathlib import Path

from transfer.atomic import write_csv

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
