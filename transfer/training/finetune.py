"""Fine-tune the top of the backbone with the head: on images, or on cached activations."""

import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live

from transfer.distribution import computing_in, precision_for, strategy_for
from transfer.inference import predict_records
from transfer.litert import frozen_forward
from transfer.models.cut import below_cut, build_top_model, split_at_cut
from transfer.models.factories import (
    BACKBONE_LAYER,
    build_classifier,
    compile_model,
    unfreeze_top,
)
from transfer.models.files import load_model
from transfer.params import FinetuneParams, Params
from transfer.records.cache_meta import CacheMeta, read_cache_meta
from transfer.tfdata import build_augmentation, make_dataset, with_one_hot
from transfer.timing import phase
from transfer.training.activations import ActivationBatches, activation_bytes, cache_activations
from transfer.training.callbacks import training_callbacks

log = logging.getLogger(__name__)


def training_splits(cache_dir: Path, meta: CacheMeta) -> dict[str, tuple[list[Path], int]]:
    """Train, and val unless it is empty: (TFRecord files, image count) of each."""
    return {
        split: (meta.split_files(cache_dir, split), meta.counts[split])
        for split in ("train", "val")
        if meta.counts[split]
    }


def fit_on_images(
    classifier: keras.Model,
    train_files: list[Path],
    val_files: list[Path],
    n_classes: int,
    params: FinetuneParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    precision: str = "float32",
) -> None:
    """Ordinary fine-tuning: every image goes through the whole backbone on every epoch.

    Trains in the dtype policy `precision`, under the strategy the classifier was built in.
    """
    augmentation = build_augmentation(params.augment, seed) if params.augment.enabled else None
    train = make_dataset(train_files, params.batch_size, seed, augmentation)
    val = make_dataset(val_files, params.batch_size) if val_files else None
    with computing_in(precision, classifier):
        compile_model(classifier, params.optimizer, params.learning_rate)
        classifier.fit(
            with_one_hot(train, n_classes),
            validation_data=None if val is None else with_one_hot(val, n_classes),
            epochs=params.epochs,
            callbacks=callbacks,
            verbose=2,
        )


def fit_on_activations(
    extractor: keras.Model,
    head: keras.Model,
    splits: dict[str, tuple[list[Path], int]],
    n_classes: int,
    unfreeze: int,
    params: FinetuneParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    engine: str = "keras",
    precision: str = "float32",
) -> None:
    """Fine-tuning on the cached outputs of the frozen layers; trains the layers in place.

    `splits` maps train, and val unless it is empty, to (TFRecord files, image count); the
    frozen layers run on `engine` (keras or litert), training stays in Keras, in the dtype
    policy `precision`. In a distribution strategy's scope, both run on its replicas.
    """
    lower, upper = split_at_cut(extractor.get_layer(BACKBONE_LAYER), unfreeze)
    total = sum(activation_bytes(lower, count) for _, count in splits.values())
    on_disk = total > params.activation_memory_mb * 2**20
    log.info(
        "caching %.0f MB of activations %s", total / 2**20, "on disk" if on_disk else "in memory"
    )
    forward = frozen_forward(below_cut(extractor, lower), engine, tf.distribute.get_strategy())
    cached = {}
    with ExitStack() as stack:
        for split, (files, count) in splits.items():
            directory = None
            if on_disk:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=split)))
            dataset = make_dataset(files, params.batch_size)
            cached[split] = cache_activations(forward, dataset, lower, count, directory)
        model = build_top_model(lower, upper, head)
        train = ActivationBatches(*cached["train"], n_classes, params.batch_size, seed)
        val = None
        if "val" in cached:
            val = ActivationBatches(*cached["val"], n_classes, params.batch_size)
        with computing_in(precision, model):
            compile_model(model, params.optimizer, params.learning_rate)
            model.fit(
                train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2
            )


def finetune_classifier(
    params: Params, cache_dir: Path, extractor_file: Path, head_file: Path, live: Live
) -> tuple[keras.Model, np.ndarray]:
    """Fine-tune the top `params.unfreeze` backbone layers with the head (unfreeze >= 1).

    On cached activations, unless augmentation or `finetune.cache_activations: false` asks
    for the ordinary path; under the `distribute` strategy, in the `precision` policy.
    Returns the classifier (float32) and its class probabilities for the test images, in
    the cached order.
    """
    strategy = strategy_for(params.distribute)  # first: before TensorFlow starts
    precision = precision_for(params.precision)
    keras.utils.set_random_seed(params.seed)
    meta = read_cache_meta(cache_dir)
    finetune = params.finetune
    with phase("load models"), strategy.scope():
        extractor = load_model(extractor_file)
        head = load_model(head_file)
        classifier = build_classifier(extractor, head)
    unfreeze_top(extractor.get_layer(BACKBONE_LAYER), params.unfreeze)
    splits = training_splits(cache_dir, meta)
    callbacks = training_callbacks(finetune.patience, live, "val" in splits)
    with phase("train"), strategy.scope():
        if finetune.augment.enabled or not finetune.cache_activations:
            val_files = splits["val"][0] if "val" in splits else []
            fit_on_images(
                classifier,
                splits["train"][0],
                val_files,
                meta.n_classes,
                finetune,
                params.seed,
                callbacks,
                precision,
            )
        else:
            fit_on_activations(
                extractor,
                head,
                splits,
                meta.n_classes,
                params.unfreeze,
                finetune,
                params.seed,
                callbacks,
                params.backbone.engine,
                precision,
            )
    with phase("predict"):
        test_files = meta.split_files(cache_dir, "test")
        probabilities = predict_records(
            classifier, test_files, meta.counts["test"], finetune.batch_size, strategy
        )
    return classifier, probabilities
