"""Data changes cost what changed: the tracked photo folder, the per-image memo and
corrections.csv, checked against runs that never use the memo."""

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from bench.sandbox import commit, make_pipeline_repo
from tests.helpers import dvc, make_image_folder, tiny_params, write_image

pytestmark = pytest.mark.e2e
UNFREEZE = 20  # fine-tuning on cached activations: their memo too
# What a data change must leave as a run from scratch would: every file under data/ but the
# photos' copy, and the classifier's test probabilities.
COMPARED = ("data/split", "data/cache", "data/features", "models")
MODEL_FILES = re.compile(r"models/(head_test_.*probabilities\.npy|finetuned/test_.*\.npy)$")


def outputs(repo: Path) -> dict[str, str]:
    """SHA-256 of each compared output file, by its path in the repo."""
    found = {}
    for folder in COMPARED:
        for path in sorted((repo / folder).rglob("*")):
            name = path.relative_to(repo).as_posix()
            if path.is_file() and (folder != "models" or MODEL_FILES.search(name)):
                found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def memo_counts(output: str) -> dict[str, tuple[int, int]]:
    """(computed, from the memo) of the per-image stages, from their log lines."""
    patterns = {
        "cache": r"\((\d+) resized, (\d+) from the memo\)",
        "extract": r"(\d+) feature rows computed, (\d+) from the memo",
        "finetune": r"(\d+) activation rows computed, (\d+) from the memo",
    }
    counts = {}
    for stage, pattern in patterns.items():
        if match := re.search(pattern, output):
            counts[stage] = (int(match.group(1)), int(match.group(2)))
    return counts


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(photos, memoized, reference): two repos on one photo folder; `reference` never uses
    the memo, so every stage it runs computes everything from the photos."""
    base = tmp_path_factory.mktemp("data_changes")
    photos = make_image_folder(base / "photos", per_class=10)
    params = {**tiny_params(photos), "unfreeze": UNFREEZE}
    memoized = make_pipeline_repo(base / "memoized", params)
    reference = make_pipeline_repo(base / "reference", params)
    return photos, memoized, reference


def reproduce(repo: Path, *args: str, memo: bool = True) -> str:
    """`dvc repro finetune` (the stages that write the compared outputs): what it printed."""
    result = dvc(repo, "repro", *args, "finetune", env={} if memo else {"TRANSFER_MEMO": "off"})
    return result.stdout + result.stderr


def test_a_first_run_fills_the_memo_and_an_untouched_folder_runs_nothing(repos) -> None:
    _, memoized, reference = repos
    first = memo_counts(reproduce(memoized))
    assert {stage: reused for stage, (_, reused) in first.items()} == dict.fromkeys(first, 0)
    reproduce(reference, memo=False)
    assert outputs(memoized) == outputs(reference)
    assert "Data and pipelines are up to date" in reproduce(memoized)


def test_new_photos_are_the_only_ones_computed(repos) -> None:
    photos, memoized, reference = repos
    for index in range(3):
        write_image(photos / "dog" / f"new_{index}.jpg", (40, 200, 40), 500 + index)
    counts = memo_counts(reproduce(memoized))
    assert counts["cache"][0] == 3  # resized: the new photos only
    # A photo's clean features, and its views' (train) or its mirror image's (test).
    assert 3 <= counts["extract"][0] <= 3 * (1 + 3)
    computed, reused = counts["finetune"]
    assert computed <= 3 * (1 + 3) and reused > 0  # train and val photos only
    reproduce(reference, memo=False)
    assert outputs(memoized) == outputs(reference)


def test_corrections_relabel_and_drop_without_any_photo_through_the_backbone(repos) -> None:
    _, memoized, reference = repos
    rows = "path,label\ncat/img_00.jpg,dog\ncat/img_01.jpg,fox\nfox/img_02.jpg,drop\n"
    for repo in (memoized, reference):
        (repo / "corrections.csv").write_text(rows)
    counts = memo_counts(reproduce(memoized))
    assert {stage: computed for stage, (computed, _) in counts.items()} == dict.fromkeys(counts, 0)
    labels = {
        line.split(",")[0]: line.split(",")[1]
        for name in ("train", "val", "test")
        for line in (memoized / f"data/split/{name}.csv").read_text().splitlines()[1:]
    }
    assert labels["cat/img_00.jpg"] == "dog" and labels["cat/img_01.jpg"] == "fox"
    assert "fox/img_02.jpg" not in labels
    reproduce(reference, memo=False)
    assert outputs(memoized) == outputs(reference)


def test_another_split_regroups_what_the_memo_holds(repos) -> None:
    _, memoized, reference = repos
    for repo in (memoized, reference):
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["split"]["seed"] = 7
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    counts = memo_counts(reproduce(memoized))
    # Images that move into train need their views; none needs its clean features again.
    assert counts["cache"][0] == 0
    reproduce(reference, memo=False)
    assert outputs(memoized) == outputs(reference)


def test_a_damaged_memo_entry_is_computed_again(repos) -> None:
    _, memoized, reference = repos
    entries = sorted(path for path in (memoized / ".memo").rglob("*") if path.is_file())
    damaged = entries[:: max(1, len(entries) // 12)]
    for number, path in enumerate(damaged):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if number % 2 else b"junk" * 10)
    counts = memo_counts(reproduce(memoized, "--force"))
    assert sum(computed for computed, _ in counts.values()) > 0
    assert outputs(memoized) == outputs(reference)
    commit(memoized, "after the data changes")
