"""The shapes of photo sets people bring, and where each photo goes: its path under data/raw,
its label, and its split when the set gives one.

- class folders: `<class>/<photo>`; every split is drawn.
- given splits: `train/<class>/<photo>`, with `val/` (or `valid/`, `validation/`) and `test/`
  beside it if the set has them; what is missing is drawn from train.
- a labels file (`data.labels`): a CSV inside data.source with `path,label` and an optional
  `split` column (train, val or test), paths relative to data.source.

A folder that only wraps the set (`flower_photos/`) is looked through in every shape.
"""

import csv
import io
import unicodedata
from dataclasses import dataclass
from typing import Any  # csv.reader's objects: their type is private

from transfer.errors import PipelineError

SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
SPLIT_NAMES = ("train", "val", "test")
LABEL_COLUMNS = ("path", "label")
SPLIT_COLUMN = "split"

Parts = tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    """Where a photo goes: its path under data/raw, its label and its given split (None:
    the split stage draws it)."""

    path: Parts
    label: str
    split: str | None = None


def find_class_root(paths: list[Parts]) -> Parts:
    """The folder whose subfolders are the classes (or the splits): descend while there is a
    single subfolder. A single subfolder cannot be the only class, so it is a wrapper like
    flower_photos/."""
    root: Parts = ()
    while True:
        depth = len(root)
        folders = {p[depth] for p in paths if len(p) > depth + 1 and p[:depth] == root}
        if len(folders) != 1:
            return root
        only = folders.pop()
        if not any(len(p) > depth + 2 and p[depth] == only for p in paths):
            return root  # the single folder holds files only: it is a class, not a wrapper
        root = (*root, only)


def is_split_layout(paths: list[Parts], root: Parts) -> bool:
    """Whether the folders under `root` are split folders (train/, and val/ and test/ if
    any) rather than classes."""
    depth = len(root)
    folders = {p[depth] for p in paths if len(p) > depth + 1 and p[:depth] == root}
    return "train" in folders and folders <= SPLIT_FOLDERS.keys()


def folder_placement(parts: Parts, root: Parts, *, splits: bool, image: bool) -> Placement | None:
    """The placement of a file of a folder layout, or None for a file beside the classes.
    A photo (`image`) directly in a split folder is a one-line error naming the folder."""
    relative = parts[len(root) :]
    if parts[: len(root)] != root or len(relative) < 2:
        return None
    if not splits:
        return Placement(relative, relative[0])
    if len(relative) == 2:
        if not image:
            return None
        folder = "/".join((*root, relative[0]))
        raise PipelineError(
            f"data.source: {folder}/ holds photos directly ({relative[1]}); put each in a "
            f"class folder, {folder}/<class>/{relative[1]}"
        )
    return Placement(relative, relative[1], SPLIT_FOLDERS[relative[0]])


@dataclass
class LabelsFile:
    """The rows of a labels file: each usable photo's label and split, by path (Unicode NFC),
    and why each other row cannot be used, by the path it names."""

    name: str
    rows: dict[str, tuple[str, str | None]]
    problems: dict[str, str]

    def placement(self, parts: Parts) -> Placement | str:
        """The placement of a file of data.source, or why it has none."""
        path = unicodedata.normalize("NFC", "/".join(parts))
        if path in self.problems:
            return self.problems.pop(path)
        if path not in self.rows:
            return f"no row in {self.name}"
        label, split = self.rows.pop(path)
        return Placement(parts, label, split)

    def unmatched(self) -> list[tuple[str, str]]:
        """(path, reason) of every row that named no file of data.source."""
        missing = [(path, f"in {self.name} but not in data.source") for path in self.rows]
        return sorted(missing + list(self.problems.items()))


def _header(reader: Any, name: str) -> list[str]:
    header = [cell.strip().lower() for cell in next(reader, [])]
    if not set(LABEL_COLUMNS) <= set(header) or not set(header) <= {*LABEL_COLUMNS, SPLIT_COLUMN}:
        raise PipelineError(
            f"data.labels {name}:1: the header must be path,label or path,label,split; "
            f"got {','.join(header) or 'nothing'}"
        )
    return header


def read_labels(data: bytes, name: str) -> LabelsFile:
    """Parse a labels file; a row that cannot be used is a problem named by its path, not an
    error, so the rest of the set imports."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PipelineError(f"data.labels {name} is not UTF-8 text") from None
    try:
        return _parse_labels(csv.reader(io.StringIO(text)), name)
    except csv.Error as error:
        raise PipelineError(f"data.labels {name} is not a readable CSV ({error})") from None


def _parse_labels(reader: Any, name: str) -> LabelsFile:
    header = _header(reader, name)
    labels = LabelsFile(name, {}, {})
    lines: dict[str, int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        values = dict(zip(header, (cell.strip() for cell in row), strict=False))
        path = unicodedata.normalize("NFC", values.get("path", "").removeprefix("./"))
        label, split = values.get("label", ""), values.get(SPLIT_COLUMN) or None
        where = f"{name}:{reader.line_num}"
        if not path:
            continue
        if path in lines:
            if labels.rows.get(path, (None,))[0] != label:
                labels.rows.pop(path, None)
                labels.problems[path] = (
                    f"{where}: a second row for it, with another label (line {lines[path]})"
                )
            continue
        lines[path] = reader.line_num
        if not label:
            labels.problems[path] = f"{where}: no label"
        elif split is not None and split.lower() not in SPLIT_NAMES:
            labels.problems[path] = f"{where}: split {split!r} is not train, val or test"
        else:
            labels.rows[path] = label, None if split is None else split.lower()
    return labels


def labels_entry_parts(labels: str) -> Parts:
    """data.labels as the parts of a path inside data.source; a path that leaves it is a
    one-line error (DVC tracks data.source, so the file must be inside it)."""
    parts = tuple(part for part in labels.replace("\\", "/").split("/") if part not in ("", "."))
    if labels.startswith("/") or ".." in parts or not parts:
        raise PipelineError(
            f"data.labels {labels}: give the labels file's path inside data.source "
            "(e.g. labels.csv), where DVC tracks it"
        )
    return parts


def check_classes(placed: list[Placement]) -> None:
    """Fail before a run is spent on a set that cannot train: fewer than 2 classes, or a
    class given for val or test but not for training."""
    labels = {placement.label for placement in placed}
    if len(labels) < 2:
        found = ", ".join(sorted(labels)) or "none"
        raise PipelineError(
            f"data.source needs at least 2 classes with usable images, found {found}"
        )
    given = {p.label for p in placed if p.split in ("val", "test")}
    trained = {p.label for p in placed if p.split in (None, "train")}
    for label in sorted(given - trained):
        raise PipelineError(
            f"data.source: class {label} has photos for val or test but none to train on; "
            "add it to the training photos or leave it out"
        )
