"""Benchmark: the same photos in the three shapes `download` reads give the same model.

    KERAS_HOME=/abs/path/to/keras python -m bench.layouts /abs/path/to/dataset [--work DIR]

Builds a throwaway git + DVC copy of the pipeline on the dataset as class folders and runs it
to `evaluate` (head only, default params, cold memo). Then rearranges the same files (hard
links) as `train/ val/ test/` folders by that run's own split, and as one flat folder with a
`labels.csv` (path,label,split), and runs each to `evaluate` on the same memo. Prints, for each
shape: its time, test accuracy, whether its test photos are exactly the given test photos,
and the rows `cache` and `extract` computed and took from the memo.
"""

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import accuracy, machine, memo_counts, print_table, raw_forward_speed
from bench.sandbox import PROJECT_ROOT, make_pipeline_repo, run_command
from transfer.manifests.split_lists import read_split
from transfer.paths import PREDICTIONS_FILE, SPLIT_DIR, SPLITS


def run_to_evaluate(repo: Path, memo: Path) -> tuple[float, str]:
    """`dvc repro evaluate` in the repo on the shared memo: (seconds, its output)."""
    env = {"TRANSFER_MEMO": str(memo)}
    start = os.times().elapsed
    result = run_command([sys.executable, "-m", "dvc", "repro", "evaluate"], repo, env)
    if result.returncode:
        sys.exit(f"dvc repro evaluate failed in {repo}:\n{result.stdout}\n{result.stderr}")
    return os.times().elapsed - start, result.stdout + result.stderr


def memo_rows(output: str) -> str:
    """`cache` and `extract`'s rows: computed / from the memo."""
    counts = memo_counts(output)
    return ", ".join(
        f"{stage} {'/'.join(map(str, counts[stage]))}" if stage in counts else f"{stage} ?"
        for stage in ("cache", "extract")
    )


def link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)


Shape = tuple[Path, str | None, set[str]]  # data.source, data.labels, the given test photos


def rearrange(dataset: Path, repo: Path, work: Path) -> dict[str, Shape]:
    """The dataset as split folders and as a labelled flat folder, by the repo's split."""
    splits = {name: read_split(repo / SPLIT_DIR, name) for name in SPLITS}
    folders, flat = work / "as_splits", work / "as_labels"
    rows, tests = [], {"folders": set(), "flat": set()}
    for name, photos in splits.items():
        for number, photo in enumerate(photos):
            link(dataset / photo.path, folders / name / photo.path)
            flat_name = f"photos/{name}_{number:05d}{Path(photo.path).suffix}"
            link(dataset / photo.path, flat / flat_name)
            rows.append((flat_name, photo.label, name))
            if name == "test":
                tests["folders"].add(f"test/{photo.path}")
                tests["flat"].add(flat_name)
    with (flat / "labels.csv").open("w", newline="") as file:
        csv.writer(file).writerows([("path", "label", "split"), *rows])
    return {
        "split folders": (folders, None, tests["folders"]),
        "labels.csv": (flat, "labels.csv", tests["flat"]),
    }


def test_photos(repo: Path) -> list[str]:
    with (repo / PREDICTIONS_FILE).open(newline="") as file:
        return sorted(row["path"] for row in csv.DictReader(file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--work", type=Path, help="where to build the throwaway repos")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-layouts-"))
    memo = work / "memo"
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(args.dataset.resolve())
    base = make_pipeline_repo(work / "class_folders", params)
    seconds, output = run_to_evaluate(base, memo)
    rows = [
        (
            "class folders (cold memo)",
            f"{seconds:.1f} s, test accuracy {accuracy(base):.4f}, {memo_rows(output)}",
        )
    ]
    for shape, (folder, labels, given_test) in rearrange(
        args.dataset.resolve(), base, work
    ).items():
        data = {**params["data"], "source": str(folder), "labels": labels}
        repo = make_pipeline_repo(work / shape.replace(" ", "_"), {**params, "data": data})
        seconds, output = run_to_evaluate(repo, memo)
        tested = test_photos(repo)
        same = set(tested) == given_test
        rows.append(
            (
                shape,
                f"{seconds:.1f} s, test accuracy {accuracy(repo):.4f}, {len(tested)} test photos "
                f"({'all' if same else 'NOT all'} given as test), {memo_rows(output)}",
            )
        )
    print_table(f"{machine()}; raw Keras MobileNetV2 {raw_forward_speed():.1f} images/s", rows)


if __name__ == "__main__":
    main()
