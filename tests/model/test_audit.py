"""The audit stage on a synthetic photo set with planted duplicates and misfiled images."""

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFilter

from stages import audit, cache, download, extract, split
from tests.helpers import tiny_params
from transfer.manifests.split_lists import read_split
from transfer.paths import AUDIT_DIR, SPLIT_DIR

pytestmark = pytest.mark.model
COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}


def pattern_image(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    """A background of the class's colour with five random rectangles: every image differs."""
    random = np.random.default_rng(seed)
    background = np.clip(np.array(colour) + random.normal(0, 20, 3), 0, 255).astype(int)
    image = Image.new("RGB", (48, 48), tuple(background.tolist()))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        (x, y), (w, h) = random.integers(0, 40, 2), random.integers(6, 24, 2)
        fill = tuple(random.integers(0, 256, 3).tolist())
        draw.rectangle([int(x), int(y), int(x + w), int(y + h)], fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after download, split, cache, extract (random VGG16, whose features still
    tell images apart) and audit, on 60 images a class plus 10 red ones filed as dog, an exact
    copy, a re-encoded, resized copy, a near-black photo and a blurred one."""
    base = tmp_path_factory.mktemp("audit")
    photos = base / "photos"
    for offset, (name, colour) in enumerate(COLOURS.items()):
        for index in range(60):
            pattern_image(photos / name / f"img_{index:02d}.jpg", colour, offset * 1000 + index)
    for index in range(10):
        pattern_image(photos / "dog" / f"misfiled_{index}.jpg", COLOURS["cat"], 5000 + index)
    shutil.copy(photos / "cat/img_03.jpg", photos / "cat/copy_03.jpg")
    with Image.open(photos / "cat/img_05.jpg") as original:
        original.resize((45, 45)).save(photos / "cat/altered_05.jpg", quality=70)
    with Image.open(photos / "fox/img_07.jpg") as original:
        original.point(lambda value: value // 20).save(photos / "fox/dark_07.jpg", quality=95)
        blurred = original.filter(ImageFilter.GaussianBlur(8))
        blurred.save(photos / "fox/blurred_07.jpg", quality=95)
    params = tiny_params(photos)
    params["backbone"]["name"] = "VGG16"
    params["audit"]["duplicate_similarity"] = 0.995  # random features: distinct images reach 0.99
    project = base / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        for stage in (download, split, cache, extract, audit):
            stage.main()
    return project


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def split_of(project: Path) -> dict[str, str]:
    return {
        photo.path: name
        for name in ("train", "val", "test")
        for photo in read_split(project / SPLIT_DIR, name)
    }


def test_copies_are_reported_as_pairs_with_their_splits(audited: Path) -> None:
    rows = read_rows(audited / AUDIT_DIR / "duplicates.csv")
    pairs = {frozenset((row["image_a"], row["image_b"])): row for row in rows}
    where = split_of(audited)
    for original, copy in (
        ("cat/img_03.jpg", "cat/copy_03.jpg"),
        ("cat/img_05.jpg", "cat/altered_05.jpg"),
    ):
        row = pairs[frozenset((original, copy))]
        assert float(row["similarity"]) >= 0.995
        assert {row["split_a"], row["split_b"]} == {where[original], where[copy]}
        assert row["split_a"] == where[row["image_a"]]
    exact = pairs[frozenset(("cat/img_03.jpg", "cat/copy_03.jpg"))]
    assert float(exact["similarity"]) == 1.0
    assert exact["split_a"] == exact["split_b"]  # byte-identical copies share a split
    metrics = (audited / AUDIT_DIR / "metrics.json").read_text()
    crossing = sum(row["split_a"] != row["split_b"] for row in rows)
    assert f'"cross_split_duplicate_pairs": {crossing}' in metrics


def test_the_misfiled_images_are_the_top_suspects(audited: Path) -> None:
    rows = read_rows(audited / AUDIT_DIR / "suspects.csv")
    misfiled = [row for row in rows if row["image"].startswith("dog/misfiled_")]
    # Confident learning (`both`, audit.label_issues' default) lists half of the planted ones:
    # exchangeable with the cat images, the model is about as sure of the other half as of
    # an average cat image, and the confident joint does not count them.
    assert len(misfiled) >= 5 and len(rows) <= len(misfiled) + 2
    assert {row["image"] for row in misfiled} == {row["image"] for row in rows[: len(misfiled)]}
    assert {(row["label"], row["suggested"]) for row in misfiled} == {("dog", "cat")}
    assert [float(row["score"]) for row in rows] == sorted(
        (float(row["score"]) for row in rows), reverse=True
    )
    where = split_of(audited)
    assert all(row["split"] == where[row["image"]] for row in rows)
    # The suggested class is the likeliest: at least as likely as the filed one (1 - score).
    assert all(1 - float(row["score"]) <= float(row["suggested_probability"]) <= 1 for row in rows)
    with Image.open(audited / AUDIT_DIR / "suspects.png") as picture:
        columns = math.ceil(math.sqrt(len(rows)))  # a square grid of the suspects
        assert picture.size[0] == 160 * columns
    with Image.open(audited / AUDIT_DIR / "duplicates.png") as picture:
        assert picture.size[0] == 2 * 160  # pairs side by side


def test_a_rerun_writes_the_same_bytes(audited: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p.name: p.read_bytes() for p in (audited / AUDIT_DIR).iterdir()}
    monkeypatch.chdir(audited)
    audit.main()
    assert {p.name: p.read_bytes() for p in (audited / AUDIT_DIR).iterdir()} == before
    assert set(before) == {
        "duplicates.csv", "suspects.csv", "outliers.csv", "quality.csv", "metrics.json",
        "suspects.png", "duplicates.png",
    }  # fmt: skip


def test_the_unusable_photos_and_the_exact_copy_are_in_quality_csv(audited: Path) -> None:
    rows = read_rows(audited / AUDIT_DIR / "quality.csv")
    issues = {row["image"]: row["issue"] for row in rows}
    assert issues.pop("fox/dark_07.jpg") == "dark"
    assert issues.pop("fox/blurred_07.jpg") == "blurry"
    assert issues.pop("cat/copy_03.jpg") == "exact_duplicate"  # the longer name of the two
    # The others are cartoon-flat (a background and five rectangles): under 3 bits of grey.
    assert set(issues.values()) <= {"low_information"}
    where = split_of(audited)
    assert all(row["split"] == where[row["image"]] for row in rows)
    assert all(row["label"] == row["image"].split("/")[0] for row in rows)
    outliers = read_rows(audited / AUDIT_DIR / "outliers.csv")
    assert len(outliers) <= 10  # a few: the set's far 5% set the bar
    scores = [float(row["score"]) for row in outliers]
    assert scores == sorted(scores, reverse=True)
