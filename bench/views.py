"""Benchmark of the augmented views (issue 16) on a real dataset, at the project's defaults.

    KERAS_HOME=/abs/path/to/keras python -m bench.views /abs/path/to/dataset [--work DIR]
        [--before DIR] [--repeats N]

Builds a throwaway git + DVC copy of the pipeline on the dataset and prints one table:
- the first `dvc repro` (head only), its test accuracy, and what the views cost per image;
  with `--before`, a checkout of an earlier version of the project, its first `dvc repro` on
  the same dataset, in the same run;
- the seeds' approach: a linear head (10 epochs, no augmentation) trained on images through
  the frozen backbone every epoch, same split;
- `dvc exp run -S unfreeze=50` (fine-tuning on cached activations and cached views) against
  head-only, and against the ordinary augmented fine-tune of the same layers, settings and
  epochs (`-S finetune.cache_activations=false`), each timed as a whole experiment, with
  their epochs and the caching timed apart; with `--repeats N`, N pairs in turn (medians,
  with the range), and how much faster the cached one would be if caching took no time;
- the machine's raw Keras MobileNetV2 forward speed, to set the absolute times against.
"""

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import yaml

from bench.bench import classic_training, timed_experiment
from bench.common import (
    accuracy,
    dvc,
    in_own_process,
    machine,
    print_table,
    raw_forward_speed,
    repo_of_checkout,
)
from bench.sandbox import PROJECT_ROOT, commit, make_pipeline_repo
from bench.timeline import run_timed
from transfer.manifests.cache_meta import read_cache_meta
from transfer.params import HeadParams, load_params
from transfer.paths import CACHE_DIR, FINETUNE_LIVE_DIR

UNFREEZE = 50
# The seeds' head: a linear classifier, 10 epochs, patience 3, no augmentation.
SEEDS_HEAD = HeadParams(hidden=(), dropout=0.2, epochs=10, patience=3)


def first_repro_before(checkout: Path, dataset: Path, work: Path) -> tuple[float, float]:
    """(wall time, test accuracy) of the first `dvc repro` of an earlier version."""
    repo = repo_of_checkout(checkout, work / "before", {"data": {"source": str(dataset)}})
    seconds = dvc(repo, "repro")
    return seconds, accuracy(repo)


@dataclass(frozen=True)
class FineTuneRun:
    """One `dvc exp run -S unfreeze=50`: wall seconds, test accuracy, seconds caching the
    activations (0 on the ordinary path), epochs run and seconds an epoch."""

    seconds: float
    accuracy: float
    caching: float
    epochs: int
    epoch: float
    breakdown: list[str]


def fine_tune_run(repo: Path, cached: bool) -> FineTuneRun:
    """`dvc exp run -S unfreeze=50` on cached activations and views, or on the ordinary path.
    Both settings are given every time: an experiment's params stay in the workspace."""
    timeline = timed_experiment(
        repo,
        "-S",
        f"unfreeze={UNFREEZE}",
        "-S",
        f"finetune.cache_activations={str(cached).lower()}",
    )
    if not timeline.phase_seconds("train"):
        sys.exit("the experiment did not fine-tune (restored from DVC's run cache?)")
    caching = timeline.phase_seconds("cache activations")
    loss = repo / FINETUNE_LIVE_DIR / "plots/metrics/train/loss.tsv"
    epochs = len(loss.read_text().splitlines()) - 1
    epoch = (timeline.phase_seconds("train") - caching) / epochs
    return FineTuneRun(timeline.wall, accuracy(repo), caching, epochs, epoch, timeline.breakdown())


def spread(values: list[float], form: str = ".1f") -> str:
    """The median, and the range when there are several."""
    if len(values) == 1:
        return format(values[0], form)
    middle, low, high = (format(v, form) for v in (median(values), min(values), max(values)))
    return f"{middle} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--work", type=Path, help="where to build the throwaway repos")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version")
    parser.add_argument(
        "--repeats", type=int, default=1, help="cached and ordinary fine-tunes, in turn"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-views-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset.resolve()
    rows = []
    raw = in_own_process(raw_forward_speed)
    rows.append(("raw Keras MobileNetV2 forward (224 px, batch 32)", f"{raw:.1f} images/s"))

    if args.before:
        seconds, before_accuracy = first_repro_before(args.before.resolve(), dataset, work)
        rows.append(
            (
                "first dvc repro before (head only)",
                f"{seconds:.1f} s, test accuracy {before_accuracy:.4f}",
            )
        )
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(dataset)
    repo = make_pipeline_repo(work / "repo", params)
    first_repro = run_timed(["repro"], repo)
    first = first_repro.wall
    head_only = accuracy(repo)
    meta = read_cache_meta(repo / CACHE_DIR)
    loaded = load_params(repo / "params.yaml")
    views = loaded.augment.views * meta.counts["train"]
    view_seconds = first_repro.phase_seconds("extract views")
    clean_seconds = first_repro.phase_seconds("extract train")
    rows += [
        ("first dvc repro (head only)", f"{first:.1f} s, test accuracy {head_only:.4f}"),
        (
            f"views in extract: {loaded.augment.views} x {meta.counts['train']} images",
            f"{view_seconds:.1f} s, {1000 * view_seconds / views:.1f} ms a view "
            f"(a clean training image: {1000 * clean_seconds / meta.counts['train']:.1f} ms)",
        ),
    ]
    commit(repo, "head only")
    classic_seconds, classic_accuracy = in_own_process(
        classic_training, repo, meta, SEEDS_HEAD, loaded.seed
    )
    rows.append(
        (
            "seeds' approach: linear head on images through the backbone every epoch",
            f"{classic_seconds:.1f} s, test accuracy {classic_accuracy:.4f} "
            f"(head-only now: {head_only - classic_accuracy:+.4f})",
        )
    )
    # Cached, then ordinary, `--repeats` times in turn: pairing keeps the ratio meaningful
    # when the machine's speed drifts (on this 2-core VM it switched by up to 1.9x).
    runs: dict[str, list[FineTuneRun]] = {"cached": [], "ordinary": []}
    for _ in range(args.repeats):
        for path in runs:
            runs[path].append(fine_tune_run(repo, path == "cached"))
    cached, ordinary = runs["cached"], runs["ordinary"]
    ratios = [o.seconds / c.seconds for c, o in zip(cached, ordinary, strict=True)]
    cached_accuracy, ordinary_accuracy = cached[0].accuracy, ordinary[0].accuracy
    cached_rows = meta.counts["train"] * (1 + loaded.augment.views) + meta.counts["val"]
    caching = [run.caching for run in cached]
    free_caching = [
        o.seconds / (c.seconds - c.caching) for c, o in zip(cached, ordinary, strict=True)
    ]
    unfreeze = f"unfreeze={UNFREEZE}"
    rows += [
        (
            f"dvc exp run -S {unfreeze} (cached activations and views)",
            f"{spread([run.seconds for run in cached])} s, test accuracy "
            f"{cached_accuracy:.4f} ({cached_accuracy - head_only:+.4f} against head-only)",
        ),
        (
            "  its caching",
            f"{spread(caching)} s ({1000 * median(caching) / cached_rows:.1f} ms a row of "
            f"{cached_rows})",
        ),
        (
            "  its epochs",
            f"{spread([run.epoch for run in cached])} s an epoch ({cached[0].epochs} epochs)",
        ),
        (
            f"dvc exp run -S {unfreeze} -S finetune.cache_activations=false",
            f"{spread([run.seconds for run in ordinary])} s, test accuracy "
            f"{ordinary_accuracy:.4f}",
        ),
        (
            "  its epochs",
            f"{spread([run.epoch for run in ordinary])} s an epoch ({ordinary[0].epochs} epochs)",
        ),
        (
            "cached against ordinary, pair by pair",
            f"{spread(ratios, '.2f')}x faster, "
            f"accuracy {cached_accuracy - ordinary_accuracy:+.4f}",
        ),
        ("  the same if caching took no time", f"{spread(free_caching, '.2f')}x faster"),
    ]
    for path, path_runs in runs.items():
        if len({run.accuracy for run in path_runs}) > 1:
            accuracies = ", ".join(f"{run.accuracy:.4f}" for run in path_runs)
            rows.append((f"{path} test accuracies differ between repeats", accuracies))
    print_table(f"{dataset.name}: {machine()}", rows)
    print(f"\nWhere the time of the first `dvc exp run -S {unfreeze}` went (seconds):")
    print("\n".join(cached[0].breakdown))


if __name__ == "__main__":
    main()
