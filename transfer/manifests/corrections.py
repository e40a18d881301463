"""corrections.csv: the user's own corrections to the labels, kept in git and applied when
the photos are split, without touching the photos' folder.

Columns `path,label`: `path` is the photo's path in data/raw (as in data/raw.csv, the audit's
reports and the predictions: `<class folder>/<file>` for a set of class folders), `label` a
class or `drop`, which leaves the photo out of every split.
"""

import csv
from pathlib import Path

from transfer.atomic import write_csv
from transfer.errors import PipelineError

COLUMNS = ["path", "label"]
DROP = "drop"


def read_corrections(file: Path) -> dict[str, tuple[int, str]]:
    """{path: (line number, label)} of the file's rows; a missing file has none."""
    if not file.exists():
        return {}
    corrections: dict[str, tuple[int, str]] = {}
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != COLUMNS:
            raise PipelineError(f"{file}:1: the header must be {','.join(COLUMNS)}, got {header}")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise PipelineError(f"{file}:{line}: expected path,label, got {','.join(row)}")
            path, label = row[0].strip(), row[1].strip()
            if path in corrections:
                first = corrections[path][0]
                raise PipelineError(f"{file}:{line}: {path} is already corrected on line {first}")
            corrections[path] = (line, label)
    return corrections


def apply_corrections(
    photos: dict[str, str], corrections: dict[str, tuple[int, str]], file: Path
) -> dict[str, str]:
    """{path: label} of the photos (`photos` gives each one its label, data/raw.csv's) after the
    corrections: relabelled, or left out when dropped. A row naming a photo that is not
    there, or a label that is neither a class nor `drop`, is a one-line error naming it."""
    classes = set(photos.values())
    labelled = dict(photos)
    for path, (line, label) in corrections.items():
        if path not in photos:
            raise PipelineError(
                f"{file}:{line}: {path} is not a photo of data.source "
                "(or it was skipped: see reports/download/skipped.csv)"
            )
        if label == DROP:
            del labelled[path]
        elif label in classes:
            labelled[path] = label
        else:
            raise PipelineError(
                f"{file}:{line}: {label!r} is neither a class ({', '.join(sorted(classes))}) "
                f"nor {DROP}"
            )
    return labelled


def update_corrections(file: Path, changes: dict[str, str | None]) -> int:
    """Write `changes` ({path: label, or None to remove the path's row}) into the file, each
    replacing the row of its path if there is one, sorted by path (atomically); return how
    many rows the file holds."""
    merged = {path: label for path, (_, label) in read_corrections(file).items()}
    for path, label in changes.items():
        if label is None:
            merged.pop(path, None)
        else:
            merged[path] = label
    write_csv(file, COLUMNS, sorted(merged.items()))
    return len(merged)
