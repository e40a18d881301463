"""corrections.csv: read, applied with one-line errors naming the row, written by `correct`."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from bench.sandbox import run_command
from transfer.errors import PipelineError
from transfer.manifests.corrections import apply_corrections, read_corrections, update_corrections

PHOTOS = {"cat/a.jpg": "cat", "cat/b.jpg": "cat", "dog/c.jpg": "dog", "fox/d.jpg": "fox"}


def write(file: Path, *rows: str) -> Path:
    file.write_text("path,label\n" + "".join(f"{row}\n" for row in rows))
    return file


def test_relabels_and_drops_without_touching_the_other_photos(tmp_path: Path) -> None:
    file = write(tmp_path / "corrections.csv", "cat/a.jpg,dog", "fox/d.jpg,drop")
    labelled = apply_corrections(PHOTOS, read_corrections(file), file)
    assert labelled == {"cat/a.jpg": "dog", "cat/b.jpg": "cat", "dog/c.jpg": "dog"}


def test_no_file_corrects_nothing(tmp_path: Path) -> None:
    file = tmp_path / "corrections.csv"
    assert apply_corrections(PHOTOS, read_corrections(file), file) == PHOTOS


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["cat/a.jpg,dog", "cat/zz.jpg,dog"], r":3: cat/zz.jpg is not a photo of data.source"),
        (["cat/a.jpg,wolf"], r":2: 'wolf' is neither a class \(cat, dog, fox\) nor drop$"),
        (["cat/a.jpg,dog", "cat/a.jpg,fox"], r":3: cat/a.jpg is already corrected on line 2$"),
        (["cat/a.jpg"], r":2: expected path,label, got cat/a.jpg$"),
    ],
)
def test_a_bad_row_is_one_line_naming_it(tmp_path: Path, rows: list[str], message: str) -> None:
    file = write(tmp_path / "corrections.csv", *rows)
    with pytest.raises(PipelineError, match=rf"^{file}{message}") as error:
        apply_corrections(PHOTOS, read_corrections(file), file)
    assert "\n" not in str(error.value)


def test_a_wrong_header_is_named(tmp_path: Path) -> None:
    file = tmp_path / "corrections.csv"
    file.write_text("image,class\ncat/a.jpg,dog\n")
    with pytest.raises(PipelineError, match=r"corrections.csv:1: the header must be path,label"):
        read_corrections(file)


def test_updates_replace_or_remove_a_photos_row_and_stay_sorted(tmp_path: Path) -> None:
    file = write(tmp_path / "corrections.csv", "dog/c.jpg,fox", "cat/a.jpg,dog", "fox/d.jpg,cat")
    changes = {"cat/a.jpg": "drop", "cat/b.jpg": "fox", "fox/d.jpg": None}
    assert update_corrections(file, changes) == 3
    with file.open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["path", "label"],
            ["cat/a.jpg", "drop"],
            ["cat/b.jpg", "fox"],
            ["dog/c.jpg", "fox"],
        ]


def run_correct(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run_command([sys.executable, "-m", "transfer.review.suggestions", *args], project)


def test_correct_writes_the_suspects_suggestions_and_given_labels(tmp_path: Path) -> None:
    suspects = tmp_path / "reports" / "audit" / "suspects.csv"
    suspects.parent.mkdir(parents=True)
    suspects.write_text(
        "image,split,label,suggested,score\n"
        "cat/a.jpg,train,cat,dog,0.9\n"
        "dog/c.jpg,test,dog,fox,0.8\n"
        "cat/b.jpg,val,cat,fox,0.4\n"
    )
    write(tmp_path / "corrections.csv", "fox/d.jpg,cat")
    assert run_correct(tmp_path, "--top", "2").returncode == 0
    assert run_correct(tmp_path, "cat/b.jpg").returncode == 0
    assert run_correct(tmp_path, "--label", "drop", "fox/d.jpg").returncode == 0
    rows = {
        path: label for path, (_, label) in read_corrections(tmp_path / "corrections.csv").items()
    }
    assert rows == {
        "cat/a.jpg": "dog",
        "dog/c.jpg": "fox",
        "cat/b.jpg": "fox",
        "fox/d.jpg": "drop",
    }
    unknown = run_correct(tmp_path, "fox/zz.jpg")
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "error: fox/zz.jpg is not in reports/audit/suspects.csv: give it a class with --label\n"
    )
