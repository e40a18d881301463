"""The per-photo outcomes of two experiments, read through DVC and paired by photo."""

import csv
import io
from dataclasses import dataclass

import numpy as np

from transfer.errors import PipelineError
from transfer.paths import PREDICTIONS_FILE

WORKSPACE = "workspace"  # the rev that names the files as they are, not a commit's


@dataclass(frozen=True)
class Paired:
    """Which of the same test photos (sorted by path) A and B each got right."""

    paths: list[str]
    a_right: np.ndarray
    b_right: np.ndarray


def read_predictions(rev: str, repo: str | None = None) -> dict[str, tuple[str, str]]:
    """{photo: (true class, predicted class)} from reports/predictions.csv at `rev` (anything
    DVC names: experiment, branch, tag, commit, or `workspace`), read through DVC's API."""
    import dvc.api  # DVC's import takes a second: only the command that reads pays for it
    from dvc.exceptions import DvcException

    try:
        text = dvc.api.read(
            str(PREDICTIONS_FILE), repo=repo, rev=None if rev == WORKSPACE else rev
        )
    except (DvcException, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PipelineError(f"cannot read {PREDICTIONS_FILE} at {rev}: {message}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"path", "true", "predicted"} <= set(rows[0]):
        raise PipelineError(f"{PREDICTIONS_FILE} at {rev} has no path,true,predicted rows")
    return {row["path"]: (row["true"], row["predicted"]) for row in rows}


def pair(
    a: dict[str, tuple[str, str]], b: dict[str, tuple[str, str]], *, names: tuple[str, str]
) -> Paired:
    """A's and B's outcomes on each photo; different test photos, or the same photos with
    other labels, are refused: those are another split or other data."""
    if a.keys() != b.keys():
        only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
        raise PipelineError(
            f"{names[0]} and {names[1]} were tested on different photos ({only_a} only in "
            f"{names[0]}, {only_b} only in {names[1]}): another split or other data; compare "
            "such runs over several splits with `compare --splits`"
        )
    relabelled = sum(a[path][0] != b[path][0] for path in a)
    if relabelled:
        raise PipelineError(
            f"{relabelled} test photos have other true labels in {names[0]} than in "
            f"{names[1]} (corrections?): accuracies on other labels do not pair; compare "
            "such runs over several splits with `compare --splits`"
        )
    paths = sorted(a)
    return Paired(
        paths=paths,
        a_right=np.array([a[path][0] == a[path][1] for path in paths], dtype=bool),
        b_right=np.array([b[path][0] == b[path][1] for path in paths], dtype=bool),
    )
