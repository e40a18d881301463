"""Benchmark: the pipeline's fast paths against the tutorials' way, on a real dataset.

    KERAS_HOME=/abs/path/to/keras python -m bench.bench /abs/path/to/dataset [--work DIR]

Builds a throwaway git + DVC copy of the pipeline on the dataset (defaults otherwise:
MobileNetV2, ImageNet weights, 224 px, 10 head epochs) and prints one table:
the first `dvc repro` with each frozen-forward engine (litert, keras), a no-op `dvc repro`,
raw Keras backbone vs `extract` throughput with each engine, head-only experiments (`dvc exp
run evaluate`, and the full `dvc exp run` with the export) vs the classic
every-image-every-epoch training, with where each experiment's time goes, and fine-tuning
epochs on cached activations (cached by each engine) vs ordinary fine-tuning of the same
layers.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import yaml

from bench.common import dvc, machine, print_table
from bench.sandbox import PROJECT_ROOT, commit, make_pipeline_repo, run_command
from bench.timeline import Timeline, run_timed
from transfer.evaluation.metrics import classification_metrics
from transfer.features import labels_file
from transfer.inference import predict_probabilities
from transfer.manifests.cache_meta import CacheMeta, read_cache_meta
from transfer.models.cut import unfreeze_top
from transfer.models.factories import BACKBONE_LAYER, build_classifier
from transfer.models.files import load_model
from transfer.params import ENGINES, HeadParams, load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FEATURES_DIR, HEAD_FILE, METRICS_FILE
from transfer.tfdata import make_dataset, read_images, with_one_hot
from transfer.training.backbone import fit_on_activations, fit_on_images, training_splits
from transfer.training.callbacks import training_callbacks
from transfer.training.head import steps_per_epoch, train_head
from transfer.views import Views

EXPERIMENT_DROPOUT = 0.25  # the head param the head-only experiments change...
FULL_EXPERIMENT_DROPOUT = 0.3  # ...to another value for the full one: nothing is restored


class EpochTimer(keras.callbacks.Callback):
    """Wall time and validation accuracy of every epoch."""

    def on_train_begin(self, logs=None) -> None:
        self.seconds, self.val_accuracy = [], []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self.start)
        self.val_accuracy.append(logs["val_accuracy"])


def timed_experiment(repo: Path, *args: str) -> Timeline:
    """`dvc exp run *args`, timed stage by stage (bench.timeline)."""
    return run_timed(["exp", "run", *args], repo)


def engine_speeds(repo: Path, engine: str) -> dict[str, Any]:
    """bench.extract_speed's figures for `engine`, measured in a process of its own."""
    args = [sys.executable, "-m", "bench.extract_speed", str(repo), engine]
    result = run_command(args, PROJECT_ROOT)
    if result.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def classic_training(
    repo: Path, meta: CacheMeta, head_params: HeadParams, seed: int
) -> tuple[float, float]:
    """The tutorials' way: frozen backbone + head trained on images, every image every epoch,
    without augmentation.

    The same function as `train_head` trains it, with the same seed, initial weights, class
    weights and callbacks; the inputs are images through the frozen extractor (Keras) instead
    of its cached outputs. Timed from the start of training to the test accuracy, as the
    experiment ends with evaluate.
    """
    extractor = load_model(repo / EXTRACTOR_FILE)
    batch_size = head_params.batch_size
    count = meta.counts["train"]
    keras.utils.set_random_seed(seed)  # before the datasets, as in train_head
    files = {
        split: meta.split_files(repo / CACHE_DIR, split) for split in ("train", "val", "test")
    }
    train = make_dataset(files["train"], batch_size, seed, shuffle_buffer=count)
    train = train.apply(
        tf.data.experimental.assert_cardinality(steps_per_epoch(count, batch_size))
    )
    has_val = meta.counts["val"] > 0
    start = time.perf_counter()
    n_classes = meta.n_classes
    head = train_head(
        with_one_hot(train, n_classes),
        with_one_hot(make_dataset(files["val"], batch_size), n_classes) if has_val else None,
        np.load(labels_file(repo / FEATURES_DIR, "train")),
        width=extractor.output_shape[-1],
        n_classes=n_classes,
        params=head_params,
        seed=seed,
        callbacks=training_callbacks(head_params.patience, None, has_val, reduce_on_plateau=True),
        extractor=extractor,
    )
    images, labels, _ = read_images(files["test"], batch_size)
    probabilities = predict_probabilities(build_classifier(extractor, head), images, batch_size)
    metrics = classification_metrics(probabilities, labels, list(meta.classes), 1)
    return time.perf_counter() - start, metrics["accuracy"]


def finetune_epochs(
    repo: Path, meta: CacheMeta, params, unfreeze: int, cached: bool, engine: str = "keras"
) -> EpochTimer:
    """Fine-tune the top `unfreeze` layers, on images or on activations cached by `engine`;
    each epoch's time and val accuracy, and the total (caching included)."""
    keras.utils.set_random_seed(params.seed)
    extractor = load_model(repo / EXTRACTOR_FILE)
    head = load_model(repo / HEAD_FILE)
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), unfreeze)
    timer = EpochTimer()
    n_classes = meta.n_classes
    splits = training_splits(repo / CACHE_DIR, meta)
    start = time.perf_counter()
    if cached:
        fit_on_activations(
            extractor,
            head,
            splits,
            n_classes,
            top=top,
            params=params.finetune,
            views=Views(params.augment, params.seed),
            callbacks=[timer],
            engine=engine,
        )
    else:
        classifier = build_classifier(extractor, head)
        fit_on_images(
            classifier,
            splits,
            n_classes,
            params=params.finetune,
            views=Views(params.augment, params.seed),
            callbacks=[timer],
        )
    timer.total = time.perf_counter() - start
    return timer


def repro_rows(work: Path, params: dict) -> tuple[Path, list[tuple[str, str]]]:
    """The first `dvc repro` on each engine, and a no-op repro: (the litert repo, rows)."""
    rows = []
    repos = {}
    for engine in ("litert", "keras"):
        engine_params = {**params, "backbone": {**params["backbone"], "engine": engine}}
        name = "repo" if engine == "litert" else f"{engine}_repo"
        repos[engine] = make_pipeline_repo(work / name, engine_params)
        first_repro = dvc(repos[engine], "repro")
        accuracy = json.loads((repos[engine] / METRICS_FILE).read_text())["accuracy"]
        rows.append(
            (
                f"first dvc repro (all stages), backbone.engine={engine}",
                f"{first_repro:.1f} s, test accuracy {accuracy:.4f}",
            )
        )
    repo = repos["litert"]
    commit(repo, "baseline")
    no_op = sorted(dvc(repo, "repro") for _ in range(5))
    rows.append(
        (
            "dvc repro with nothing to do, 5 runs",
            f"median {no_op[2]:.2f} s, min {no_op[0]:.2f}, max {no_op[-1]:.2f}",
        )
    )
    return repo, rows


def engine_rows(repo: Path) -> list[tuple[str, str]]:
    """Each engine's raw forward speed and its extract loop's."""
    speeds = {engine: engine_speeds(repo, engine) for engine in ENGINES}
    raw = speeds["keras"]["raw"]
    rows = []
    for engine, figures in speeds.items():
        loops = figures["loops"]
        median = float(np.median(loops))
        rows += [
            (
                f"{engine} forward, random tensors",
                f"{figures['raw']:.1f} images/s ({figures['raw'] / raw:.2f}x raw Keras), "
                f"conversion {figures['conversion']:.1f} s",
            ),
            (
                f"extract loop (TFRecords), {engine}, {len(loops)} runs",
                f"median {median:.1f} images/s ({median / raw:.2f}x raw Keras), "
                f"min {loops[0]:.1f}, max {loops[-1]:.1f}",
            ),
        ]
    return rows


def experiment_rows(repo: Path, meta: CacheMeta) -> tuple[list[tuple[str, str]], list]:
    """Head-only experiments against the classic training: (rows, their timelines)."""
    dropout = f"head.dropout={EXPERIMENT_DROPOUT}"
    to_evaluate = timed_experiment(repo, "evaluate", "-S", dropout)
    exp_accuracy = json.loads((repo / METRICS_FILE).read_text())["accuracy"]
    experiment_params = load_params(repo / "params.yaml")  # as the experiment left them
    if experiment_params.head.dropout != EXPERIMENT_DROPOUT:
        sys.exit("dvc exp run did not leave the experiment's params in the workspace")
    full_dropout = f"head.dropout={FULL_EXPERIMENT_DROPOUT}"
    full = timed_experiment(repo, "-S", full_dropout)
    full_accuracy = json.loads((repo / METRICS_FILE).read_text())["accuracy"]
    classic_seconds, classic_accuracy = classic_training(
        repo, meta, experiment_params.head, experiment_params.seed
    )
    rows = [
        (
            f"head-only dvc exp run evaluate -S {dropout}",
            f"{to_evaluate.wall:.1f} s, test accuracy {exp_accuracy:.4f}, "
            f"{classic_seconds / to_evaluate.wall:.1f}x faster than the classic",
        ),
        (
            f"head-only dvc exp run -S {full_dropout} (export included)",
            f"{full.wall:.1f} s, test accuracy {full_accuracy:.4f}, "
            f"{classic_seconds / full.wall:.1f}x faster than the classic",
        ),
        (
            f"classic: the head ({dropout}), images through the backbone every epoch",
            f"{classic_seconds:.1f} s, test accuracy {classic_accuracy:.4f}",
        ),
    ]
    timelines = [
        (f"dvc exp run evaluate -S {dropout}", to_evaluate),
        (f"dvc exp run -S {full_dropout}", full),
    ]
    return rows, timelines


def finetune_rows(repo: Path, meta: CacheMeta, unfreeze: int) -> list[tuple[str, str]]:
    """The ordinary fine-tune's epochs against the cached ones, on each engine."""
    loaded = load_params(repo / "params.yaml")
    ordinary = finetune_epochs(repo, meta, loaded, unfreeze, cached=False)
    rows = [
        (
            f"fine-tune unfreeze={unfreeze}, ordinary",
            f"{np.mean(ordinary.seconds):.1f} s/epoch, val accuracy {ordinary.val_accuracy}, "
            f"total {ordinary.total:.1f} s",
        )
    ]
    for engine in ENGINES:
        cached = finetune_epochs(repo, meta, loaded, unfreeze, cached=True, engine=engine)
        caching = cached.total - sum(cached.seconds)
        rows.append(
            (
                f"fine-tune unfreeze={unfreeze}, activations cached by {engine}",
                f"{np.mean(cached.seconds):.1f} s/epoch "
                f"({np.mean(ordinary.seconds) / np.mean(cached.seconds):.1f}x ordinary), "
                f"caching {caching:.1f} s, val accuracy {cached.val_accuracy}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--work", type=Path, help="where to build the throwaway repo")
    parser.add_argument("--unfreeze", type=int, default=50)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-"))
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(args.dataset.resolve())
    params["finetune"]["epochs"] = args.finetune_epochs
    params["finetune"]["patience"] = args.finetune_epochs  # time every epoch
    repo, rows = repro_rows(work, params)
    meta = read_cache_meta(repo / CACHE_DIR)
    rows += engine_rows(repo)
    experiments, timelines = experiment_rows(repo, meta)
    rows += experiments
    rows += finetune_rows(repo, meta, args.unfreeze)
    print_table(machine(), rows)
    for title, timeline in timelines:
        print(f"\nWhere the time of `{title}` went (seconds):")
        print("\n".join(timeline.breakdown()))


if __name__ == "__main__":
    main()
