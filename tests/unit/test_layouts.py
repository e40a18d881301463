"""Photo sets as people have them: class folders, given train/ val/ test/ folders, a labels
file; where each photo lands, and each layout mistake's one-line message."""

import hashlib
from pathlib import Path

import pytest

from tests.helpers import write_image
from transfer.errors import PipelineError
from transfer.ingest.archives import open_source
from transfer.ingest.importer import ImportReport, import_images
from transfer.manifests.split_lists import Photo
from transfer.splitting import split_images

COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40)}


def photos(root: Path, folder: str, count: int, seed: int) -> list[str]:
    """`count` photos of each class under root/folder/<class>/, distinct by seed."""
    written = []
    for offset, (name, colour) in enumerate(COLOURS.items()):
        for index in range(count):
            path = f"{folder}/{name}/p{seed}_{index}.jpg".lstrip("/")
            write_image(root / path, colour, seed * 100 + offset * 10 + index, size=16)
            written.append(path)
    return written


def place_and_split(
    source: Path, tmp_path: Path, labels: str | None = None
) -> tuple[dict[str, str], dict[str, str], ImportReport]:
    """({data/raw path: split}, {data/raw path: label}, the import's report), as download
    and split leave them, with split.val and split.test at 0.25."""
    out_dir = tmp_path / "raw"
    out_dir.mkdir(parents=True)
    with open_source(source) as listing:
        report = import_images(listing, out_dir, 10**6, 1 << 20, labels=labels)
    given, found = {}, []
    for placement in report.placed:
        path = "/".join(placement.path)
        digest = hashlib.sha256((out_dir / path).read_bytes()).hexdigest()
        found.append(Photo(path, placement.label, digest))
        given[path] = placement.split
    splits = split_images(found, 42, 0.25, 0.25, given=given)
    where = {photo.path: name for name, chosen in splits.items() for photo in chosen}
    return where, {photo.path: photo.label for photo in found}, report


def test_class_folders_draw_every_split(tmp_path: Path) -> None:
    source = tmp_path / "src"
    written = photos(source, "", 12, 1)
    where, labels, _ = place_and_split(source, tmp_path)
    assert set(where) == set(written)
    assert set(where.values()) == {"train", "val", "test"}
    assert all(labels[path] == path.split("/")[0] for path in where)


def test_given_splits_are_kept_and_the_class_set_is_their_union(tmp_path: Path) -> None:
    source = tmp_path / "src" / "chest_xray"  # a wrapper folder, looked through
    train = photos(source, "train", 6, 1)
    val = photos(source, "valid", 2, 2)
    test = photos(source, "test", 3, 3)
    where, labels, _ = place_and_split(tmp_path / "src", tmp_path)
    assert {path: where[path] for path in train} == dict.fromkeys(train, "train")
    assert {path: where[path] for path in val} == dict.fromkeys(val, "val")
    assert {path: where[path] for path in test} == dict.fromkeys(test, "test")
    assert labels["train/cat/p1_0.jpg"] == "cat" and labels["valid/dog/p2_1.jpg"] == "dog"


def test_without_a_val_folder_val_is_drawn_from_train_alone(tmp_path: Path) -> None:
    source = tmp_path / "src"
    train = photos(source, "train", 20, 1)
    test = photos(source, "test", 3, 3)
    where, _, _ = place_and_split(source, tmp_path)
    assert all(where[path] == "test" for path in test)
    assert {where[path] for path in train} == {"train", "val"}  # no test drawn from train


def test_a_labels_file_with_and_without_a_split_column(tmp_path: Path) -> None:
    source = tmp_path / "src"
    labels = {f"images/{i}.jpg": "cat" if i % 2 else "dog" for i in range(24)}
    for index, path in enumerate(labels):
        write_image(source / path, (10 * index, 0, 0), index, size=16)
    given = {path: "test" if path in ("images/0.jpg", "images/1.jpg") else "" for path in labels}
    rows = "".join(f"{path},{label},{given[path]}\n" for path, label in labels.items())
    (source / "labels.csv").write_text("path,label,split\n" + rows)
    where, found, report = place_and_split(source, tmp_path / "a", labels="labels.csv")
    assert found == labels and not report.skipped
    assert [path for path in where if where[path] == "test"] == ["images/0.jpg", "images/1.jpg"]

    rows = "".join(f"{path},{label}\n" for path, label in labels.items())
    (source / "labels.csv").write_text("path,label\n" + rows)
    where, found, _ = place_and_split(source, tmp_path / "b", labels="labels.csv")
    assert found == labels
    assert len([path for path in where if where[path] == "test"]) > 2  # drawn, by content


def test_a_labels_files_problems_are_each_reported_by_name(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for index in range(6):
        write_image(source / f"{index}.jpg", (40 * index, 0, 0), index, size=16)
    (source / "labels.csv").write_text(
        "path,label,split\n"
        "0.jpg,cat,\n1.jpg,cat,\n2.jpg,dog,\n3.jpg,dog,\n"
        "4.jpg,dog,holdout\n"  # an unknown split
        "gone.jpg,cat,\n"  # no such file
        "2.jpg,cat,\n"  # a second row for 2.jpg, another label
    )
    (tmp_path / "raw").mkdir()
    with open_source(source) as listing:
        report = import_images(listing, tmp_path / "raw", 10**6, 1 << 20, labels="labels.csv")
    reasons = dict(report.skipped)
    assert reasons["4.jpg"] == "labels.csv:6: split 'holdout' is not train, val or test"
    assert reasons["gone.jpg"] == "in labels.csv but not in data.source"
    assert reasons["2.jpg"] == "labels.csv:8: a second row for it, with another label (line 4)"
    assert reasons["5.jpg"] == "no row in labels.csv"
    assert {"/".join(p.path): p.label for p in report.placed} == {
        "0.jpg": "cat", "1.jpg": "cat", "3.jpg": "dog"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("make", "labels", "message"),
    [
        (
            lambda root: (
                photos(root, "train", 2, 1),
                write_image(root / "test/x.jpg", (0, 0, 0), 0),
            ),
            None,
            r"^data.source: test/ holds photos directly \(x.jpg\); put each in a class folder, "
            r"test/<class>/x.jpg$",
        ),
        (
            lambda root: (
                photos(root, "train", 2, 1),
                write_image(root / "test/fox/x.jpg", (0, 0, 0), 0),
            ),
            None,
            r"^data.source: class fox has photos for val or test but none to train on",
        ),
        (
            lambda root: write_image(root / "cat/x.jpg", (0, 0, 0), 0),
            None,
            r"^data.source needs at least 2 classes with usable images, found cat$",
        ),
        (
            lambda root: (
                photos(root, "", 2, 1),
                (root / "labels.csv").write_text("file,class\n"),
            ),
            "labels.csv",
            r"^data.labels labels.csv:1: the header must be path,label or path,label,split",
        ),
        (
            lambda root: photos(root, "", 2, 1),
            "../labels.csv",
            r"^data.labels ../labels.csv: give",
        ),
        (lambda root: photos(root, "", 2, 1), "nope.csv", r"^data.labels nope.csv is not a file"),
    ],
    ids=[
        "photo-in-split-folder",
        "class-only-in-test",
        "one-class",
        "bad-header",
        "outside",
        "missing",
    ],
)
def test_a_layout_mistake_is_one_line_naming_what_to_do(
    tmp_path: Path, make, labels: str | None, message: str
) -> None:
    make(tmp_path / "src")
    with pytest.raises(PipelineError, match=message):
        place_and_split(tmp_path / "src", tmp_path, labels=labels)
