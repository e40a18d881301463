"""Stage `finetune`: unfreeze the top `unfreeze` backbone layers and train them with the head."""

import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

import keras

from stages.activations import (
    ActivationBatches,
    activation_bytes,
    build_top_model,
    cache_activations,
    lower_forward,
    split_at_cut,
)
from stages.atomic import atomic_output
from stages.cli import run
from stages.meta import read_meta, split_files
from stages.model_files import load_model, save_model
from stages.models import BACKBONE_LAYER, build_classifier, compile_model, unfreeze_top
from stages.params import FinetuneParams, load_params
from stages.paths import CACHE_DIR, EXTRACTOR_FILE, FINETUNE_LIVE_DIR, HEAD_FILE, MODEL_FILE
from stages.tfdata import build_augmentation, make_dataset
from stages.training import open_live, training_callbacks

log = logging.getLogger("finetune")


def training_splits(cache_dir: Path, meta: dict) -> dict[str, tuple[list[Path], int]]:
    """Train, and val unless it is empty: (TFRecord files, image count) of each."""
    return {
        split: (split_files(cache_dir, meta, split), meta["counts"][split])
        for split in ("train", "val")
        if meta["counts"][split]
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
    train = make_dataset(train_files, n_classes, params.batch_size, seed, augmentation)
    val = make_dataset(val_files, n_classes, params.batch_size) if val_files else None
    compile_model(classifier, params.optimizer, params.learning_rate)
    classifier.fit(
        train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2
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
) -> None:
    """Fine-tuning on the cached outputs of the frozen layers; trains the layers in place.

    `splits` maps train, and val unless it is empty, to (TFRecord files, image count).
    """
    lower, upper = split_at_cut(extractor.get_layer(BACKBONE_LAYER), unfreeze)
    total = sum(activation_bytes(lower, count) for _, count in splits.values())
    on_disk = total > params.activation_memory_mb * 2**20
    log.info(
        "caching %.0f MB of activations %s", total / 2**20, "on disk" if on_disk else "in memory"
    )
    forward = lower_forward(extractor, lower)
    cached = {}
    with ExitStack() as stack:
        for split, (files, count) in splits.items():
            directory = None
            if on_disk:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=split)))
            dataset = make_dataset(files, n_classes, params.batch_size)
            cached[split] = cache_activations(forward, dataset, lower, count, n_classes, directory)
        model = build_top_model(lower, upper, head)
        compile_model(model, params.optimizer, params.learning_rate)
        train = ActivationBatches(*cached["train"], params.batch_size, shuffle_seed=seed)
        val = ActivationBatches(*cached["val"], params.batch_size) if "val" in cached else None
        model.fit(train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2)


def main() -> None:
    params = load_params()
    keras.utils.set_random_seed(params.seed)
    meta = read_meta(CACHE_DIR)
    extractor = load_model(EXTRACTOR_FILE)
    head = load_model(HEAD_FILE)
    classifier = build_classifier(extractor, head)
    n_classes = len(meta["classes"])
    finetune = params.finetune
    with atomic_output(FINETUNE_LIVE_DIR) as live_dir:
        live = open_live(live_dir)
        if params.unfreeze == 0:
            log.info("unfreeze=0: the classifier is the frozen backbone and the trained head")
            live.end()
        else:
            unfreeze_top(extractor.get_layer(BACKBONE_LAYER), params.unfreeze)
            splits = training_splits(CACHE_DIR, meta)
            callbacks = training_callbacks(finetune.patience, live, "val" in splits)
            if finetune.augment.enabled or not finetune.cache_activations:
                fit_on_images(
                    classifier,
                    splits["train"][0],
                    splits["val"][0] if "val" in splits else [],
                    n_classes,
                    finetune,
                    params.seed,
                    callbacks,
                )
            else:
                fit_on_activations(
                    extractor,
                    head,
                    splits,
                    n_classes,
                    params.unfreeze,
                    finetune,
                    params.seed,
                    callbacks,
                )
    save_model(classifier, MODEL_FILE)


if __name__ == "__main__":
    run(main)
