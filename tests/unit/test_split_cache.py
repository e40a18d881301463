"""split and cache: stable assignments, byte-identical TFRecords, bounded shards."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
import yaml

from stages import cache, download, split
from tests.helpers import ROOT, make_image_folder, tiny_params, write_image
from transfer.errors import PipelineError
from transfer.hashing import sha256_of
from transfer.manifests.raw_index import list_images, read_raw_index, write_raw_index
from transfer.manifests.split_lists import Photo, read_split
from transfer.paths import CACHE_DIR, SPLIT_DIR
from transfer.records.schema import ENCODED, FILENAME, KEY, LABEL, serialize_example
from transfer.splitting import assign_split, split_images


def photo(path: str, label: str | None = None, content: str | None = None) -> Photo:
    """A photo whose bytes' hash is that of `content` (by default, its path)."""
    digest = hashlib.sha256((content or path).encode()).hexdigest()
    return Photo(path, label or path.split("/")[0], digest)


def reindex() -> None:
    """data/raw.csv of a class-folder data/raw, as download writes it."""
    raw = Path("data/raw")
    placed = {path: (path.split("/")[0], None) for path in list_images(raw)}
    write_raw_index(raw, Path("data/raw.csv"), placed)


def where(splits: dict[str, list[Photo]]) -> dict[str, str]:
    return {photo.path: name for name, photos in splits.items() for photo in photos}


def test_adding_images_moves_no_existing_image() -> None:
    before = [photo(f"{c}/img_{i:03d}.jpg") for c in ("a", "b") for i in range(200)]
    after = before + [photo(f"a/new_{i:03d}.jpg") for i in range(100)]
    first = where(split_images(before, 7, 0.2, 0.2))
    second = where(split_images(after, 7, 0.2, 0.2))
    assert all(second[path] == name for path, name in first.items())


def test_a_photo_keeps_its_split_when_relabelled_or_moved_and_copies_share_one() -> None:
    photos = [photo(f"{c}/img_{i:03d}.jpg") for c in ("a", "b") for i in range(200)]
    before = where(split_images(photos, 7, 0.2, 0.2))
    relabelled = [Photo(p.path, "b", p.sha256) if p.path < "a/img_050" else p for p in photos]
    assert where(split_images(relabelled, 7, 0.2, 0.2)) == before
    moved = [Photo(f"c/{p.path}", p.label, p.sha256) for p in photos]
    after_move = where(split_images(moved, 7, 0.2, 0.2))
    assert {path.removeprefix("c/"): name for path, name in after_move.items()} == before
    copies = [photo(f"b/copy_{i:03d}.jpg", content=f"a/img_{i:03d}.jpg") for i in range(200)]
    placed = where(split_images(photos + copies, 7, 0.2, 0.2))
    assert all(placed[f"b/copy_{i:03d}.jpg"] == placed[f"a/img_{i:03d}.jpg"] for i in range(200))


def test_split_is_seeded_and_stratified() -> None:
    photos = [photo(f"{c}/img_{i:04d}.jpg") for c in ("a", "b", "c") for i in range(2000)]
    assert split_images(photos, 1, 0.15, 0.15) == split_images(photos, 1, 0.15, 0.15)
    assert split_images(photos, 1, 0.15, 0.15) != split_images(photos, 2, 0.15, 0.15)
    splits = split_images(photos, 1, 0.15, 0.15)
    for label in ("a", "b", "c"):
        share = sum(p.label == label for p in splits["test"]) / 2000
        assert 0.12 < share < 0.18


def test_class_without_training_image_is_named() -> None:
    lonely = photo("lonely/x.jpg")
    # Find a seed that sends the only image of class "lonely" to the test split.
    seed = next(s for s in range(1000) if assign_split(lonely.sha256, s, 0.2, 0.4) == "test")
    photos = [lonely] + [photo(f"big/{i}.jpg") for i in range(50)]
    with pytest.raises(PipelineError, match="^class lonely has no training image"):
        split_images(photos, seed, 0.2, 0.4)


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
    assert rows and all(row.path.split("/")[0] == row.label for row in rows)
    assert all(row.sha256 == sha256_of(Path("data/raw") / row.path) for row in rows)
    total = sum(len(read_split(SPLIT_DIR, n)) for n in ("train", "val", "test"))
    assert total == len(list_images(Path("data/raw"))) == 24
    index = read_raw_index(Path("data/raw.csv"))  # what split read: every image, hashed
    assert list(index) == list_images(Path("data/raw"))
    assert all(index[path].sha256 == sha256_of(Path("data/raw") / path) for path in index)
    assert all(
        index[path].label == path.split("/")[0] and index[path].split is None for path in index
    )


def test_cache_twice_gives_identical_bytes_in_bounded_shards(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.main()
    first = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    assert list(Path(".memo/images").rglob("*"))  # each resized photo is in the memo
    cache.main()  # from the memo
    assert {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()} == first
    monkeypatch.setenv("TRANSFER_MEMO", "off")
    cache.main()  # every photo resized again
    second = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    assert first == second
    train = sorted(name for name in first if name.startswith("train-"))
    count = len(read_split(SPLIT_DIR, "train"))
    assert len(train) == -(-count // 5) and train[0].endswith(f"-of-{len(train):05d}.tfrecord")
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(str(CACHE_DIR / n))) for n in train]
    assert max(sizes) <= 5 and sum(sizes) == count


def test_a_record_has_the_same_bytes_in_every_process() -> None:
    """Protobuf may write a map's entries in another order in another process; sorted, not."""
    record = serialize_example(b"jpeg", 1, "cat/1.jpg", "ab" * 32)
    offsets = [record.index(key.encode()) for key in sorted((ENCODED, FILENAME, KEY, LABEL))]
    assert offsets == sorted(offsets)
    code = (
        "import sys; from transfer.records.schema import serialize_example; "
        "sys.stdout.buffer.write(serialize_example(b'jpeg', 1, 'cat/1.jpg', 'ab' * 32))"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True)
    assert other.stdout == record


def test_failed_stage_leaves_no_output_and_a_stale_partial_is_cleared(project: Path) -> None:
    cache.main()
    complete = {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()}
    write_image(Path("data/raw/cat/img_00.jpg"), (0, 0, 0), 0)  # a changed input ...
    Path("data/raw/dog/img_03.jpg").write_bytes(b"garbage")  # ... and one that breaks it
    reindex()  # as download would
    split.main()  # new keys: the memo has neither
    with pytest.raises(PipelineError, match=r"^data/raw/dog/img_03.jpg: not an image.*dvc repro"):
        cache.main()
    assert not list(Path("data").glob(".cache.partial*"))
    # The previous complete output is untouched, not half-overwritten.
    assert {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()} == complete
    Path("data/raw/dog/img_03.jpg").unlink()
    reindex()
    split.main()
    write_image(Path("data/raw/cat/img_00.jpg"), (9, 9, 9), 9)  # changed after the split
    with pytest.raises(PipelineError, match=r"^data/raw/cat/img_00.jpg changed since the split"):
        cache.main()
    assert {p.name: p.read_bytes() for p in CACHE_DIR.iterdir()} == complete
    write_image(Path("data/raw/cat/img_00.jpg"), (0, 0, 0), 0)
    Path("data/.cache.partial").mkdir()  # as if a killed run left it behind
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
