"""split and cache: stable assignments, byte-identical TFRecords, bounded shards."""

import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
import yaml

from stages import cache, download, split
from tests.helpers import ROOT, make_image_folder, tiny_params, write_image
from transfer.errors import PipelineError
from transfer.paths import CACHE_DIR, SPLIT_DIR
from transfer.records.schema import ENCODED, FILENAME, LABEL, serialize_example
from transfer.splitting import assign_split, list_images, read_split, split_images


def test_adding_images_moves_no_existing_image() -> None:
    before = [f"{c}/img_{i:03d}.jpg" for c in ("a", "b") for i in range(200)]
    after = before + [f"a/new_{i:03d}.jpg" for i in range(100)]
    first, second = split_images(before, 7, 0.2, 0.2), split_images(after, 7, 0.2, 0.2)
    where = {path: name for name, paths in second.items() for path in paths}
    for name, paths in first.items():
        assert all(where[path] == name for path in paths)


def test_split_is_seeded_and_stratified() -> None:
    paths = [f"{c}/img_{i:04d}.jpg" for c in ("a", "b", "c") for i in range(2000)]
    assert split_images(paths, 1, 0.15, 0.15) == split_images(paths, 1, 0.15, 0.15)
    assert split_images(paths, 1, 0.15, 0.15) != split_images(paths, 2, 0.15, 0.15)
    splits = split_images(paths, 1, 0.15, 0.15)
    for label in ("a", "b", "c"):
        share = sum(p.startswith(label) for p in splits["test"]) / 2000
        assert 0.12 < share < 0.18


def test_class_without_training_image_is_named() -> None:
    # Find a seed that sends the only image of class "lonely" to the test split.
    seed = next(s for s in range(1000) if assign_split("lonely/x.jpg", s, 0.2, 0.4) == "test")
    paths = ["lonely/x.jpg"] + [f"big/{i}.jpg" for i in range(50)]
    with pytest.raises(PipelineError, match="^class lonely has no training image"):
        split_images(paths, seed, 0.2, 0.4)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with params.yaml and the downloaded, split synthetic images."""
    photos = make_image_folder(tmp_path / "photos", per_class=8)
    params = tiny_params(photos)
    params["image"]["shard_size"] = 5
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path / "project")
    download.main()
    split.main()
    return tmp_path / "project"


def test_split_files_are_readable_lists(project: Path) -> None:
    rows = read_split(SPLIT_DIR, "train")
    assert rows and all(path.split("/")[0] == label for path, label in rows)
    total = sum(len(read_split(SPLIT_DIR, n)) for n in ("train", "val", "test"))
    assert total == len(list_images(Path("data/raw"))) == 24


def test_cache_twice_gives_identical_bytes_in_bounded_shards(project: Path) -> None:
    cache.main()
    first = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    cache.main()
    second = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    assert first == second
    train = sorted(name for name in first if name.startswith("train-"))
    count = len(read_split(SPLIT_DIR, "train"))
    assert len(train) == -(-count // 5) and train[0].endswith(f"-of-{len(train):05d}.tfrecord")
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(str(CACHE_DIR / n))) for n in train]
    assert max(sizes) <= 5 and sum(sizes) == count


def test_a_record_has_the_same_bytes_in_every_process() -> None:
    """Protobuf may write a map's entries in another order in another process; sorted, not."""
    record = serialize_example(b"jpeg", 1, "cat/1.jpg")
    offsets = [record.index(key.encode()) for key in sorted((ENCODED, FILENAME, LABEL))]
    assert offsets == sorted(offsets)
    code = (
        "import sys; from transfer.records.schema import serialize_example; "
        "sys.stdout.buffer.write(serialize_example(b'jpeg', 1, 'cat/1.jpg'))"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True)
    assert other.stdout == record


def test_failed_stage_leaves_no_output_and_a_stale_partial_is_cleared(project: Path) -> None:
    cache.main()
    complete = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    write_image(Path("data/raw/cat/img_00.jpg"), (0, 0, 0), 0)  # a changed input ...
    Path("data/raw/dog/img_03.jpg").write_bytes(b"garbage")  # ... and one that breaks it
    with pytest.raises(PipelineError, match=r"data/raw/.*: not an image.*dvc repro -f download"):
        cache.main()
    assert not list(Path("data").glob(".cache.partial*"))
    # The previous complete output is untouched, not half-overwritten.
    assert {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()} == complete
    Path("data/.cache.partial").mkdir()  # as if a killed run left it behind
    Path("data/raw/dog/img_03.jpg").unlink()
    split.main()
    cache.main()
    assert (CACHE_DIR / "meta.json").exists()
    assert not Path("data/.cache.partial").exists()


def test_bad_param_is_one_line_on_stderr(tmp_path: Path) -> None:
    params = tiny_params(tmp_path)
    params["unfreeze"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "stages.split"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: params.yaml: unfreeze must be a layer count of 0 or more, got -3\n"
    )
