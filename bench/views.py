"""Benchmark of the augmented views (issue 16) on a real dataset, at the project's defaults.

    KERAS_HOME=/abs/path/to/keras python -m bench.views /abs/path/to/dataset [--work DIR]
        [--before DIR]

Builds a throwaway git + DVC copy of the pipeline on the dataset and prints one table:
- the first `dvc repro` (head only), its test accuracy, and what the views cost per image;
  with `--before`, a checkout of an earlier version of the project, its first `dvc repro` on
  the same dataset, in the same run;
- the seeds' approach: a linear head (10 epochs, no augmentation) trained on images through
  the frozen backbone every epoch, same split;
- `dvc exp run -S unfreeze=50` (fine-tuning on cached activations and cached views) against
  head-only, and against the ordinary augmented fine-tune of the same layers, settings and
  epochs (`-S finetune.cache_activations=false`), each timed as a whole experiment;
- the machine's raw Keras MobileNetV2 forward speed, to set the absolute times against.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from bench.bench import classic_training, cpu_model, dvc, print_table, timed, timed_experiment
from transfer.litert import available_cores
from transfer.models.factories import build_feature_extractor
from transfer.params import HeadParams, load_params
from transfer.paths import CACHE_DIR, METRICS_FILE
from transfer.records.cache_meta import read_cache_meta
from transfer.sandbox import PROJECT_ROOT, commit, make_pipeline_repo
from transfer.timing import TIMINGS_ENV

UNFREEZE = 50
# The seeds' head: a linear classifier, 10 epochs, patience 3, no augmentation.
SEEDS_HEAD = HeadParams(hidden=(), dropout=0.2, epochs=10, patience=3)
MAKE_REPO = """
import sys, yaml
from pathlib import Path
from transfer.sandbox import make_pipeline_repo, PROJECT_ROOT
params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
params["data"]["source"] = sys.argv[1]
make_pipeline_repo(Path(sys.argv[2]), params)
"""


def raw_forward_speed() -> float:
    """Images/s of a plain Keras MobileNetV2 (224 px, batch 32) on random images."""
    model = build_feature_extractor("MobileNetV2", 224, None)
    images = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
    model.predict(images, verbose=0)
    start = time.perf_counter()
    for _ in range(5):
        model.predict(images, verbose=0)
    return 5 * 32 / (time.perf_counter() - start)


def accuracy(repo: Path) -> float:
    return json.loads((repo / METRICS_FILE).read_text())["accuracy"]


def first_repro_before(checkout: Path, dataset: Path, work: Path) -> tuple[float, float]:
    """(wall time, test accuracy) of the first `dvc repro` of an earlier version."""
    repo = work / "before"
    python = sys.executable
    timed([python, "-c", MAKE_REPO, str(dataset), str(repo)], checkout)
    seconds = dvc(repo, "repro")
    return seconds, accuracy(repo)


def phase_seconds(timings: Path, name: str) -> float:
    entries = [json.loads(line) for line in timings.read_text().splitlines()]
    return sum(e["seconds"] for e in entries if e.get("phase") == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--work", type=Path, help="where to build the throwaway repos")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-views-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset.resolve()
    rows = []
    raw = raw_forward_speed()
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
    timings = work / "first-repro.jsonl"
    first = timed([sys.executable, "-m", "dvc", "repro"], repo, {TIMINGS_ENV: str(timings)})
    head_only = accuracy(repo)
    meta = read_cache_meta(repo / CACHE_DIR)
    loaded = load_params(repo / "params.yaml")
    views = loaded.augment.views * meta.counts["train"]
    view_seconds = phase_seconds(timings, "extract views")
    clean_seconds = phase_seconds(timings, "extract train")
    rows += [
        ("first dvc repro (head only)", f"{first:.1f} s, test accuracy {head_only:.4f}"),
        (
            f"views in extract: {loaded.augment.views} x {meta.counts['train']} images",
            f"{view_seconds:.1f} s, {1000 * view_seconds / views:.1f} ms a view "
            f"(a clean training image: {1000 * clean_seconds / meta.counts['train']:.1f} ms)",
        ),
    ]
    commit(repo, "head only")
    keras.backend.clear_session()
    classic_seconds, classic_accuracy = classic_training(repo, meta, SEEDS_HEAD, loaded.seed)
    rows.append(
        (
            "seeds' approach: linear head on images through the backbone every epoch",
            f"{classic_seconds:.1f} s, test accuracy {classic_accuracy:.4f} "
            f"(head-only now: {head_only - classic_accuracy:+.4f})",
        )
    )
    unfreeze = f"unfreeze={UNFREEZE}"
    cached_rows = meta.counts["train"] * (1 + loaded.augment.views) + meta.counts["val"]
    cached_seconds, cached_lines = timed_experiment(repo, work, "-S", unfreeze)
    cached_accuracy = accuracy(repo)
    experiment_timings = max(work.glob("timings-*.jsonl"), key=lambda path: path.stat().st_mtime)
    caching = phase_seconds(experiment_timings, "cache activations")
    training = phase_seconds(experiment_timings, "train") - caching
    epochs = (
        len((repo / "reports/finetune/plots/metrics/train/loss.tsv").read_text().splitlines()) - 1
    )
    ordinary_seconds, _ = timed_experiment(
        repo, work, "-S", unfreeze, "-S", "finetune.cache_activations=false"
    )
    ordinary_accuracy = accuracy(repo)
    rows += [
        (
            f"dvc exp run -S {unfreeze} (cached activations and views)",
            f"{cached_seconds:.1f} s, test accuracy {cached_accuracy:.4f} "
            f"({cached_accuracy - head_only:+.4f} against head-only)",
        ),
        (
            "  its finetune stage",
            f"caching {caching:.1f} s ({1000 * caching / cached_rows:.1f} ms a row of "
            f"{cached_rows}), training {training:.1f} s ({epochs} epochs)",
        ),
        (
            f"dvc exp run -S {unfreeze} -S finetune.cache_activations=false",
            f"{ordinary_seconds:.1f} s, test accuracy {ordinary_accuracy:.4f}; cached: "
            f"{ordinary_seconds / cached_seconds:.1f}x faster, "
            f"{cached_accuracy - ordinary_accuracy:+.4f}",
        ),
    ]
    print_table(f"{dataset.name}: {cpu_model()}, {available_cores()} cores", rows)
    print(f"\nWhere the time of `dvc exp run -S {unfreeze}` went (seconds):")
    print("\n".join(cached_lines))


if __name__ == "__main__":
    main()
