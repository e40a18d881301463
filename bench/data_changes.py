"""Benchmark: what a data change costs, against the first `dvc repro` of the same run.

    KERAS_HOME=/abs/path/to/keras python -m bench.data_changes /abs/path/to/dataset [--work DIR]

Copies the dataset into a scratch folder, holding back 2% of its photos, builds a throwaway
git + DVC copy of the pipeline on it (default params) and times, stage by stage:
the first `dvc repro` (cold memo); `dvc repro` on the untouched folder (the median of
NO_OP_RUNS, a run being about a second long and the machine's speed drifting); 1% of the photos
added back; 10 relabels written by `correct --top 10` (the audit's most suspicious photos);
`split.seed` 43; then `unfreeze: 50` and the other 1% of photos added back. Prints
Markdown tables: each run's stages against the first run's, the rows each per-image stage
computed and took from the memo, and the machine's raw Keras MobileNetV2 forward speed.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import accuracy, in_own_process, machine, memo_counts, raw_forward_speed, timed
from bench.sandbox import PROJECT_ROOT, commit, make_pipeline_repo
from bench.timeline import Timeline, run_timed
from transfer.image_files import has_image_extension

PER_IMAGE = ("cache", "extract")
NO_OP_RUNS = 5
FIXED_PHASES = ("load models", "convert")  # start-up work that does not grow with the photos


def copy_holding_back(dataset: Path, photos: Path, held: Path) -> tuple[list[Path], list[Path]]:
    """Copy the dataset's images into `photos` but two 1% batches (every 100th image, from
    the 1st and from the 51st, in path order), which go to `held`; return both batches'
    files in `held`."""
    images = sorted(
        path for path in dataset.rglob("*") if path.is_file() and has_image_extension(path.name)
    )
    batches: tuple[list[Path], list[Path]] = ([], [])
    for number, image in enumerate(images):
        relative = image.relative_to(dataset)
        batch = {0: batches[0], 50: batches[1]}.get(number % 100)
        target = (held if batch is not None else photos) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
        if batch is not None:
            batch.append(target)
    return batches


def add_back(batch: list[Path], held: Path, photos: Path) -> None:
    for file in batch:
        target = photos / file.relative_to(held)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(file, target)


def fixed_seconds(timeline: Timeline, stage: str) -> float:
    """A stage's start-up (DVC starting it, Python, the imports) and its model building or
    conversion: what it pays whatever the number of photos."""
    start, end = timeline.spans[stage]
    inside = [e for e in timeline.phases if start <= e["start"] <= end]
    first = min((e["start"] for e in inside), default=end)
    return first - start + sum(e["seconds"] for e in inside if e["phase"] in FIXED_PHASES)


def stage_table(first: Timeline, runs: dict[str, Timeline]) -> list[str]:
    """Markdown: each run's wall time and each stage's seconds, as a share of the first run's
    (the whole, or the same stage's)."""
    stages = list(first.spans)
    header = "| run | whole `dvc repro` | " + " | ".join(f"`{s}`" for s in stages) + " |"
    lines = [header, "|" + " --- |" * (len(stages) + 2)]
    for name, run in {"first `dvc repro`": first, **runs}.items():
        cells = [f"{run.wall:.1f} s ({run.wall / first.wall:.0%})"]
        for stage in stages:
            seconds = run.stage_seconds(stage)
            base = first.stage_seconds(stage)
            cells.append(f"{seconds:.1f} ({seconds / base:.0%})" if seconds else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def per_image_table(first: Timeline, tuned: Timeline, runs: dict[str, Timeline]) -> list[str]:
    """Markdown: the per-image stages beyond their fixed start-up, against their first run
    (for `finetune`, the first run with `unfreeze: 50`, `tuned`)."""
    lines = [
        "| run | stage | seconds | fixed start-up | beyond it | beyond it / first run's |"
        " computed, from the memo |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    every = {"first `dvc repro`": first, "first with `unfreeze: 50`": tuned, **runs}
    for name, run in every.items():
        counts = memo_counts(run.output)
        for stage in (*PER_IMAGE, "finetune"):
            if stage not in run.spans or (stage == "finetune" and stage not in counts):
                continue
            seconds, fixed = run.stage_seconds(stage), fixed_seconds(run, stage)
            base = (tuned if stage == "finetune" else first).stage_seconds(stage)
            computed, reused = counts.get(stage, (0, 0))
            lines.append(
                f"| {name} | `{stage}` | {seconds:.1f} | {fixed:.1f} | {seconds - fixed:.1f} | "
                f"{(seconds - fixed) / base:.1%} | {computed}, {reused} |"
            )
    return lines


def set_params(repo: Path, **changes: object) -> None:
    """Set top-level params or `section.key` ones (a `__` for the dot) in params.yaml."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for name, value in changes.items():
        *sections, key = name.split("__")
        target = params
        for section in sections:
            target = target[section]
        target[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-data-"))
    photos, held = work / "photos", work / "held"
    batches = copy_holding_back(args.dataset.resolve(), photos, held)
    raw = in_own_process(raw_forward_speed)
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(photos)
    repo = make_pipeline_repo(work / "repo", params)

    first = run_timed(["repro"], repo)
    head_only = accuracy(repo)
    commit(repo, "first run")
    untouched = sorted(
        (run_timed(["repro"], repo) for _ in range(NO_OP_RUNS)), key=lambda run: run.wall
    )
    print("untouched folder, seconds:", " ".join(f"{run.wall:.2f}" for run in untouched))
    runs = {"untouched folder": untouched[NO_OP_RUNS // 2]}
    add_back(batches[0], held, photos)
    runs[f"{len(batches[0])} photos added (1%)"] = run_timed(["repro"], repo)
    timed([sys.executable, "-m", "transfer.review.suggestions", "--top", "10"], repo)
    runs["10 relabels (`correct --top 10`)"] = run_timed(["repro"], repo)
    set_params(repo, split__seed=43)
    runs["`split.seed` 43"] = run_timed(["repro"], repo)
    set_params(repo, unfreeze=50)
    tuned = run_timed(["repro"], repo)
    add_back(batches[1], held, photos)
    runs[f"`unfreeze: 50`, {len(batches[1])} photos added (1%)"] = run_timed(["repro"], repo)

    print(f"\n{args.dataset.name}: {machine()}; raw Keras MobileNetV2 forward {raw:.1f} images/s")
    print(f"first `dvc repro` {first.wall:.1f} s, test accuracy {head_only:.4f}\n")
    print("\n".join(stage_table(first, runs)))
    print()
    print("\n".join(per_image_table(first, tuned, runs)))
    computed, reused = memo_counts(tuned.output)["finetune"]
    print(
        f"\n`unfreeze: 50` first: {tuned.wall:.1f} s, {computed} activation rows computed, "
        f"{reused} from the memo"
    )
    print("\nWhere the last run's time went (seconds):")
    print("\n".join(list(runs.values())[-1].breakdown()))


if __name__ == "__main__":
    main()
