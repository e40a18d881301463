"""The index of data/raw: each image's path there and the SHA-256 of its bytes, written by
`download` with data/raw. The stages after it depend on the index, not on data/raw itself, so
that DVC walks the thousands of photos only once a run (as download's output) instead of once
per stage that reads them. The index changes whenever any image of data/raw does; `split`
passes the hashes on in data/split, and `cache` checks each image it reads against its own."""

import csv
from pathlib import Path

from transfer.atomic import write_csv
from transfer.hashing import sha256_of
from transfer.image_files import has_image_extension

COLUMNS = ["path", "sha256"]


def list_images(raw_dir: Path) -> list[str]:
    """Relative paths `<class>/<...>/<image>` of the images under raw_dir, sorted."""
    return sorted(
        path.relative_to(raw_dir).as_posix()
        for path in raw_dir.rglob("*")
        if path.is_file() and path.parent != raw_dir and has_image_extension(path.name)
    )


def write_raw_index(raw_dir: Path, index_file: Path) -> None:
    """Index the images under raw_dir into index_file (CSV, sorted by path), atomically."""
    # Listed and hashed from the disk, not from the import: the names are the ones the file
    # system kept (which may normalise them), the ones the later stages open.
    rows = ((path, sha256_of(raw_dir / path)) for path in list_images(raw_dir))
    write_csv(index_file, COLUMNS, rows)


def read_raw_index(index_file: Path) -> dict[str, str]:
    """The SHA-256 of each image of data/raw, by its path there, in the index's order."""
    with index_file.open(newline="") as file:
        return {row["path"]: row["sha256"] for row in csv.DictReader(file)}
