"""Fine-tune the top of the backbone with the head: on images, or on cached activations."""

import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

import keras

from transfer.litert import frozen_forward
from transfer.models.cut import below_cut, build_top_model, split_at_cut
from transfer.models.factories import BACKBONE_LAYER, compile_model
from transfer.params import FinetuneParams
from transfer.records.cache_meta import CacheMeta
from transfer.tfdata import build_augmentation, make_dataset, with_one_hot
from transfer.training.activations import ActivationBatches, activation_bytes, cache_activations

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
) -> None:
    """Ordinary fine-tuning: every image goes through the whole backbone on every epoch."""
    augmentation = build_augmentation(params.augment, seed) if params.augment.enabled else None
    train = make_dataset(train_files, params.batch_size, seed, augmentation)
    val = make_dataset(val_files, params.batch_size) if val_files else None
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
) -> None:
    """Fine-tuning on the cached outputs of the frozen layers; trains the layers in place.

    `splits` maps train, and val unless it is empty, to (TFRecord files, image count); the
    frozen layers run on `engine` (keras or litert), training stays in Keras.
    """
    lower, upper = split_at_cut(extractor.get_layer(BACKBONE_LAYER), unfreeze)
    total = sum(activation_bytes(lower, count) for _, count in splits.values())
    on_disk = total > params.activation_memory_mb * 2**20
    log.info(
        "caching %.0f MB of activations %s", total / 2**20, "on disk" if on_disk else "in memory"
    )
    forward = frozen_forward(below_cut(extractor, lower), engine)
    cached = {}
    with ExitStack() as stack:
        for split, (files, count) in splits.items():
            directory = None
            if on_disk:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=split)))
            dataset = make_dataset(files, params.batch_size)
            cached[split] = cache_activations(forward, dataset, lower, count, directory)
        model = build_top_model(lower, upper, head)
        compile_model(model, params.optimizer, params.learning_rate)
        train = ActivationBatches(*cached["train"], n_classes, params.batch_size, seed)
        val = None
        if "val" in cached:
            val = ActivationBatches(*cached["val"], n_classes, params.batch_size)
        model.fit(train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2)
