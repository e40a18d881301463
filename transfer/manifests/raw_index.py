"""The index of data/raw: each image's path there, the SHA-256 of its bytes, its label and its
given split (empty: the split stage draws it), written by `download` with data/raw. The stages
after it depend on the index, not on data/raw itself, so that DVC walks the thousands of
photos only once a run (as download's output) instead of once per stage that reads them. The
index changes whenever any image of data/raw does; `split` passes the hashes on in
data/split, and `cache` checks each image it reads against its own."""

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from transfer.atomic import write_csv
from transfer.hashing import sha256_of
from transfer.image_files import has_image_extension

COLUMNS = ["path", "sha256", "label", "split"]


@dataclass(frozen=True)
class RawImage:
    """An image of data/raw: its bytes' SHA-256, its label, its given split or None."""

    sha256: str
    label: str
    split: str | None


def list_images(raw_dir: Path) -> list[str]:
    """Relative paths `<...>/<image>` of the images under raw_dir, sorted."""
    return sorted(
        path.relative_to(raw_dir).as_posix()
        for path in raw_dir.rglob("*")
        if path.is_file() and path.parent != raw_dir and has_image_extension(path.name)
    )


def write_raw_index(
    raw_dir: Path, index_file: Path, placed: dict[str, tuple[str, str | None]]
) -> None:
    """Index the images under raw_dir into index_file (CSV, sorted by path), atomically;
    `placed` gives each image's (label, given split) by its path (Unicode NFC)."""
    # Listed and hashed from the disk, not from the import: the names are the ones the file
    # system kept (which may normalise them), the ones the later stages open.
    by_name = {unicodedata.normalize("NFC", path): value for path, value in placed.items()}
    rows = []
    for path in list_images(raw_dir):
        label, split = by_name[unicodedata.normalize("NFC", path)]
        rows.append((path, sha256_of(raw_dir / path), label, split or ""))
    write_csv(index_file, COLUMNS, rows)


def read_raw_index(index_file: Path) -> dict[str, RawImage]:
    """Each image of data/raw by its path there, in the index's order."""
    with index_file.open(newline="") as file:
        return {
            row["path"]: RawImage(row["sha256"], row["label"], row["split"] or None)
            for row in csv.DictReader(file)
        }
