"""Write outputs so that an interrupted stage leaves nothing that looks complete."""

import csv
import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from transfer.errors import PipelineError

# A full disk, a full quota, or a file larger than the process may write (RLIMIT_FSIZE).
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextmanager
def disk_full_named(path: Path) -> Iterator[None]:
    """A write in the block that finds no room stops the stage with one line naming the
    file (the error's own, or else `path`)."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        raise PipelineError(
            f"cannot write {error.filename or path} ({error.strerror}); free some space and "
            "run it again"
        ) from None


def remove(path: Path) -> None:
    """Delete a file or a directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it replaces `path` only if the block succeeds.

    The sibling lives in the same directory, so the final rename is atomic on every file system.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same suffix as the target, because some writers (keras' model.save) insist on it.
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    remove(temporary)
    try:
        with disk_full_named(path):
            yield temporary
    except BaseException:
        remove(temporary)
        raise
    remove(path)
    os.replace(temporary, path)


def write_json(path: Path, value: Any) -> None:
    """Write `value` as indented, key-sorted JSON, atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, header: list[str], rows: Iterable[Iterable]) -> None:
    """Write a header row and `rows` as CSV, atomically."""
    with atomic_output(path) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def write_npy(path: Path, array: Any) -> None:
    """Save `array` as a .npy file, atomically."""
    with atomic_output(path) as temporary, temporary.open("wb") as file:
        np.save(file, array)
