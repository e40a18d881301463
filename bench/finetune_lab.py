"""Benchmark lab: ways to fine-tune `unfreeze=50`, tried one after the other on one finished
run's cached activations.

    KERAS_HOME=/abs/path/to/keras TRANSFER_MEMO=<memo> python -m bench.finetune_lab \
        <workspace> TRIAL [TRIAL ...] [--views N]

<workspace> is a pipeline repo after a run (bench.finetune_splits leaves one in
<work>/after): its params.yaml, data/cache and models/ (extractor, trained head) are read.
The activations of the frozen layers below the cut come from the memo (the computed ones go
into it) and are kept in memory; then each TRIAL (see TRIALS) trains the top 50 backbone
layers and the head from the trained head, with finetune's own pieces, changed as the trial
says. Printed per epoch: training and validation accuracy, validation loss and the accuracy
on the clean test images (no mirror TTA, so a little below `evaluate`'s); then the test
accuracy of the weights early stopping kept, and the val and test accuracy of three mixes of
them with the trained head's (WiSE-FT). --views caches more augmented views of each
training image than the run's `augment.views`. One process: a trial costs its training
only, so many can be compared on one split; a winner is then judged over three splits by
bench.finetune_splits.
"""

import argparse
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from bench.common import in_own_process, machine, raw_forward_speed
from transfer.manifests.cache_meta import read_cache_meta
from transfer.memo.store import open_memo
from transfer.models.cut import build_top_model, unfreeze_top
from transfer.models.factories import BACKBONE_LAYER
from transfer.models.files import load_model
from transfer.params import FinetuneParams, Params, load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, HEAD_FILE
from transfer.row_order import TrainingVariants
from transfer.tfdata import read_record_index
from transfer.training.activation_cache import below_cut_forward, cache_activations
from transfer.training.backbone import learning_rate_schedule
from transfer.training.batches import ViewBatches
from transfer.views import Views

UNFREEZE = 50


@dataclass(frozen=True)
class Trial:
    """One way to fine-tune: finetune params changed, and what params cannot say."""

    finetune: dict
    dropout: float | None = None  # the head's dropout rate while fine-tuning (None: its own)
    optimizer: str = "params"  # params (finetune.optimizer), sgd_momentum, lamb, adam_eps
    epsilon: float = 1e-7  # adam_eps's
    backbone_learning_rate: float | None = None  # the unfrozen layers' own (the head's: params)
    head_trainable: bool = True
    freeze_depthwise: bool = False
    ema_momentum: float | None = None  # of a weight EMA, put in the weights each epoch
    batchnorm_trainable: bool = False  # the unfrozen layers' BatchNorm trains (batch statistics)


TRIALS = {
    "defaults": Trial({}),
    "dropout_0.5": Trial({}, dropout=0.5),
    "dropout_0.7": Trial({}, dropout=0.7),
    "dropout_0.5_20_epochs": Trial({"epochs": 20, "patience": 5}, dropout=0.5),
    "label_smoothing_0.1": Trial({"label_smoothing": 0.1}),
    "head_frozen": Trial({}, head_trainable=False),
    "depthwise_frozen": Trial({}, freeze_depthwise=True),
    "sgd_momentum_0.01": Trial({"learning_rate": 0.01}, optimizer="sgd_momentum"),
    "sgd_momentum_0.001": Trial({"learning_rate": 0.001}, optimizer="sgd_momentum"),
    "adam_epsilon_1e-3": Trial({}, optimizer="adam_eps", epsilon=1e-3),
    "lamb_1e-3": Trial({"learning_rate": 0.001}, optimizer="lamb"),
    "backbone_2e-5": Trial({}, backbone_learning_rate=2e-5),
    "ema_0.99": Trial({}, ema_momentum=0.99),
    "ema_0.995": Trial({}, ema_momentum=0.995),
    "batchnorm_trainable": Trial({}, batchnorm_trainable=True),
}


Cached = dict[str, tuple[tuple[np.ndarray, ...], np.ndarray]]


def cached_activations(params: Params, views: int) -> Cached:
    """(activations, labels) of each split as finetune caches them: the training images
    with `views` augmented views each, the val and test images clean."""
    meta = read_cache_meta(CACHE_DIR)
    extractor = load_model(EXTRACTOR_FILE)
    lower, _ = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), UNFREEZE).split()
    forward, version = below_cut_forward(extractor, lower, params.backbone.engine)
    memo = open_memo()
    cached = {}
    for split in ("train", "val", "test"):
        files = meta.split_files(CACHE_DIR, split)
        index = read_record_index(files)
        variants = TrainingVariants(len(index.labels), views if split == "train" else 0)
        drawn = Views(params.augment, params.seed)
        blocks = [drawn.block(version, index, block) for block in variants.blocks]
        arrays, count = cache_activations(
            forward, files, blocks, lower=lower, directory=None, dtype="float32", memo=memo,
            batch_size=params.finetune.batch_size,
        )  # fmt: skip
        print(f"{split}: {count.computed} activation rows computed, {count.reused} from the memo")
        cached[split] = arrays, index.labels
    return cached


def optimizer_for(
    trial: Trial, params: FinetuneParams, steps: int, head: keras.Model
) -> keras.optimizers.Optimizer:
    """The trial's optimizer on finetune's schedule (`steps` batches an epoch)."""
    schedule = learning_rate_schedule(params, steps)
    if trial.ema_momentum is not None:
        return keras.optimizers.get(
            {
                "class_name": params.optimizer,
                "config": {
                    "learning_rate": schedule,
                    "use_ema": True,
                    "ema_momentum": trial.ema_momentum,
                    "ema_overwrite_frequency": steps,
                },
            }
        )
    if trial.optimizer == "sgd_momentum":
        return keras.optimizers.SGD(schedule, momentum=0.9)
    if trial.optimizer == "lamb":
        return keras.optimizers.Lamb(schedule)
    if trial.optimizer == "adam_eps":
        return keras.optimizers.Adam(schedule, epsilon=trial.epsilon)
    chosen = keras.optimizers.get(
        {"class_name": params.optimizer, "config": {"learning_rate": schedule}}
    )
    if trial.backbone_learning_rate is None:
        return chosen
    backbone_params = replace(params, learning_rate=trial.backbone_learning_rate)
    backbone = keras.optimizers.get(
        {
            "class_name": params.optimizer,
            "config": {"learning_rate": learning_rate_schedule(backbone_params, steps)},
        }
    )
    head_variables = {id(variable) for variable in head.trainable_variables}
    return keras.optimizers.MultiOptimizer(
        lambda variable: chosen if id(variable) in head_variables else backbone
    )


def clean_test_accuracy(
    model: keras.Model, test: tuple[tuple[np.ndarray, ...], np.ndarray]
) -> float:
    arrays, labels = test
    inputs = arrays[0] if len(arrays) == 1 else list(arrays)
    probabilities = model.predict(inputs, batch_size=64, verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == labels))


class PrintEpoch(keras.callbacks.Callback):
    def __init__(self, test: tuple[tuple[np.ndarray, ...], np.ndarray]) -> None:
        super().__init__()
        self.test = test

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        test = clean_test_accuracy(self.model, self.test)
        print(
            f"  epoch {epoch + 1:2d}: train {logs['accuracy']:.4f},"
            f" val {logs['val_accuracy']:.4f}, val loss {logs['val_loss']:.4f}, test {test:.4f}",
            flush=True,
        )


def run_trial(name: str, params: Params, cached: Cached, views: int) -> float:
    """Train the trial from the trained head; the kept weights' clean test accuracy."""
    trial = TRIALS[name]
    finetune = replace(params.finetune, **trial.finetune)
    print(f"\n{name}: {trial}", flush=True)
    keras.utils.set_random_seed(params.seed)
    extractor = load_model(EXTRACTOR_FILE)
    head = load_model(HEAD_FILE)
    if trial.dropout is not None:
        for layer in head.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = trial.dropout
    head.trainable = trial.head_trainable
    lower, upper = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), UNFREEZE).split()
    if trial.batchnorm_trainable:
        for layer in upper.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = True
    if trial.freeze_depthwise:
        for layer in upper.layers:
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                layer.trainable = False
    model = build_top_model(lower, upper, head)
    n_classes = read_cache_meta(CACHE_DIR).n_classes
    train_arrays, train_labels = cached["train"]
    variants = TrainingVariants(len(train_labels), views)
    batch = finetune.batch_size
    train = ViewBatches(train_arrays, train_labels, variants, n_classes, batch, params.seed)
    val_arrays, val_labels = cached["val"]
    val = ViewBatches(
        val_arrays, val_labels, TrainingVariants(len(val_labels), 0), n_classes, batch
    )
    optimizer = optimizer_for(trial, finetune, len(train), head)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=finetune.label_smoothing),
        metrics=["accuracy"],
    )
    start_loss, start_accuracy = model.evaluate(val, verbose=0)
    print(
        f"  epoch  0: val {start_accuracy:.4f}, val loss {start_loss:.4f},"
        f" test {clean_test_accuracy(model, cached['test']):.4f}"
    )
    stopping = keras.callbacks.EarlyStopping(
        f"val_{finetune.watch}", patience=finetune.patience, restore_best_weights=True
    )
    start_weights = model.get_weights()
    start = time.perf_counter()
    model.fit(
        train,
        validation_data=val,
        epochs=finetune.epochs,
        callbacks=[PrintEpoch(cached["test"]), stopping],
        verbose=0,
    )
    kept = clean_test_accuracy(model, cached["test"])
    print(f"  kept: test {kept:.4f} ({time.perf_counter() - start:.0f} s of training)")
    print_interpolations(model, start_weights, val, cached["test"])
    return kept


def print_interpolations(
    model: keras.Model,
    start_weights: list[np.ndarray],
    val: ViewBatches,
    test: tuple[tuple[np.ndarray, ...], np.ndarray],
) -> None:
    """Val and clean test accuracy of the weights part way from the trained head's
    (alpha 0) to the kept ones (alpha 1): a weight-space ensemble (WiSE-FT)."""
    kept_weights = model.get_weights()
    for alpha in (0.25, 0.5, 0.75):
        model.set_weights(
            [(1 - alpha) * a + alpha * b for a, b in zip(start_weights, kept_weights, strict=True)]
        )
        _, val_accuracy = model.evaluate(val, verbose=0)
        print(
            f"  alpha {alpha}: val {val_accuracy:.4f}, test {clean_test_accuracy(model, test):.4f}"
        )
    model.set_weights(kept_weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("trials", nargs="+", choices=sorted(TRIALS))
    parser.add_argument("--views", type=int, help="augmented views cached per training image")
    args = parser.parse_args()
    os.chdir(args.workspace)
    params = load_params()
    views = params.augment.views if args.views is None else args.views
    speed = in_own_process(raw_forward_speed)
    print(f"{args.workspace}: {machine()}; raw Keras MobileNetV2 forward {speed:.1f} images/s")
    cached = cached_activations(params, views)
    results = {name: run_trial(name, params, cached, views) for name in args.trials}
    print("\n| trial | clean test accuracy |\n| --- | --- |")
    for name, kept in results.items():
        print(f"| {name} | {kept:.4f} |")


if __name__ == "__main__":
    main()
