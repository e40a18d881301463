"""Fine-tune the top of the backbone with the head: on images, or on cached activations."""

import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

import keras
import numpy as np
from dvclive import Live

from transfer.distribution import computing_in, precision_for, strategy_for
from transfer.inference import run_on_records
from transfer.litert import frozen_forward
from transfer.manifests.cache_meta import CacheMeta, read_cache_meta
from transfer.memo.store import NO_MEMO, Memo, MemoCount, open_memo
from transfer.models.cut import TrainableTop, build_top_model, unfreeze_top
from transfer.models.factories import BACKBONE_LAYER, build_classifier, compile_model
from transfer.models.files import load_model
from transfer.params import AugmentParams, FinetuneParams, Params
from transfer.row_order import TrainingVariants
from transfer.tfdata import make_dataset, read_record_index, with_one_hot
from transfer.timing import phase
from transfer.training.activation_cache import (
    activation_bytes,
    below_cut_forward,
    cache_activations,
    check_stored,
    variant_blocks,
)
from transfer.training.batches import ViewBatches
from transfer.training.callbacks import training_callbacks
from transfer.training.head import steps_per_epoch
from transfer.views import mirror, view_transform

log = logging.getLogger(__name__)


def training_splits(cache_dir: Path, meta: CacheMeta) -> dict[str, tuple[list[Path], int]]:
    """Train, and val unless it is empty: (TFRecord files, image count) of each."""
    return {
        split: (meta.split_files(cache_dir, split), meta.counts[split])
        for split in ("train", "val")
        if meta.counts[split]
    }


def learning_rate_schedule(
    params: FinetuneParams, steps: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A linear warm-up from 0 over `params.warmup_epochs`, then a cosine decay to 0 by the
    end of the last epoch; `steps` batches an epoch. The warm-up keeps the first updates of
    the unfrozen layers, when the head's gradients are largest, from wrecking their weights."""
    warmup = params.warmup_epochs * steps
    decay = (params.epochs - params.warmup_epochs) * steps
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(params.learning_rate, decay)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay, warmup_target=params.learning_rate, warmup_steps=warmup
    )


def fit_on_images(
    classifier: keras.Model,
    splits: dict[str, tuple[list[Path], int]],
    n_classes: int,
    params: FinetuneParams,
    augment: AugmentParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    precision: str = "float32",
) -> None:
    """Ordinary fine-tuning: every image goes through the whole backbone on every epoch,
    as a new augmented view each time when `augment.views` is above 0.

    `splits` as for fit_on_activations. Trains in the dtype policy `precision`, under the
    strategy the classifier was built in.
    """
    transform = view_transform(augment, seed) if augment.views else None
    train_files, train_count = splits["train"]
    train = make_dataset(train_files, params.batch_size, seed, transform)
    val = make_dataset(splits["val"][0], params.batch_size) if "val" in splits else None
    schedule = learning_rate_schedule(params, steps_per_epoch(train_count, params.batch_size))
    with computing_in(precision, classifier):
        compile_model(classifier, params.optimizer, schedule, params.label_smoothing)
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
    top: TrainableTop,
    params: FinetuneParams,
    augment: AugmentParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    engine: str = "keras",
    precision: str = "float32",
    memo: Memo = NO_MEMO,
) -> None:
    """Fine-tuning of the extractor's unfrozen `top` on the cached outputs of the frozen layers
    below it; trains the layers in place.

    `splits` maps train, and val unless it is empty, to (TFRecord files, image count). The
    training images' `augment.views` augmented views (the same as extract's) are cached
    beside their clean activations, and each epoch trains on a seeded choice among them per
    image. Each image's activations come from the `memo` when an earlier run computed them.
    The frozen layers run on `engine` (keras or litert), training stays in Keras, in the dtype
    policy `precision`. In a distribution strategy's scope, both run on its replicas.
    """
    lower, upper = top.split()
    variants = {
        split: TrainingVariants(count, augment.views if split == "train" else 0)
        for split, (_, count) in splits.items()
    }
    dtype = params.activation_dtype
    total = sum(activation_bytes(lower, rows.rows, dtype) for rows in variants.values())
    on_disk = total > params.activation_memory_mb * 2**20
    log.info(
        "caching %.0f MB of %s activations %s",
        total / 2**20,
        dtype,
        "on disk" if on_disk else "in memory",
    )
    forward, version = below_cut_forward(extractor, lower, engine)
    cached = {}
    memoized = MemoCount()
    with ExitStack() as stack:
        with phase("cache activations"):
            for split, (files, _) in splits.items():
                directory = None
                if on_disk:
                    directory = Path(
                        stack.enter_context(tempfile.TemporaryDirectory(prefix=split))
                    )
                index = read_record_index(files)
                blocks = variant_blocks(version, index, variants[split], augment, seed)
                activations, count = cache_activations(
                    forward, files, blocks, lower, directory, dtype, memo, params.batch_size
                )
                memoized.add(count)
                check_stored(activations, dtype)
                cached[split] = activations, index.labels
        log.info(
            "%d activation rows computed, %d from the memo", memoized.computed, memoized.reused
        )
        model = build_top_model(lower, upper, head)
        batch_size = params.batch_size
        train = ViewBatches(*cached["train"], variants["train"], n_classes, batch_size, seed)
        val = None
        if "val" in cached:
            val = ViewBatches(*cached["val"], variants["val"], n_classes, batch_size)
        schedule = learning_rate_schedule(params, len(train))
        with computing_in(precision, model):
            compile_model(model, params.optimizer, schedule, params.label_smoothing)
            model.fit(
                train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2
            )


def finetune_classifier(
    params: Params, cache_dir: Path, extractor_file: Path, head_file: Path, live: Live
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """Fine-tune the top `params.unfreeze` backbone layers with the head (unfreeze >= 1).

    On cached activations (and cached augmented views), unless `finetune.cache_activations:
    false` asks for the ordinary path; under the `distribute` strategy, in the `precision`
    policy. Returns the classifier (float32) and its class probabilities for the test
    images, clean and mirrored, in the cached order.
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
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), params.unfreeze)
    splits = training_splits(cache_dir, meta)
    # The learning rate follows its schedule: no decay on plateau.
    callbacks = training_callbacks(
        finetune.patience, live, "val" in splits, reduce_on_plateau=False, watch=finetune.watch
    )
    with phase("train"), strategy.scope():
        if not finetune.cache_activations:
            fit_on_images(
                classifier,
                splits,
                meta.n_classes,
                finetune,
                params.augment,
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
                top,
                finetune,
                params.augment,
                params.seed,
                callbacks,
                params.backbone.engine,
                precision,
                # The workers of a cluster must make the same forward calls: no memo there.
                NO_MEMO if params.distribute == "multi_worker" else open_memo(),
            )
    with phase("predict"):
        # On backbone.engine, as the head-only classifier's features were computed: on a
        # CPU, LiteRT's conversion and run take half of what Keras' run does.
        forward = frozen_forward(classifier, params.backbone.engine, strategy)
        test_files, count = meta.split_files(cache_dir, "test"), meta.counts["test"]
        probabilities, mirrored = (
            run_on_records(
                forward, meta.n_classes, test_files, count, finetune.batch_size, transform
            )[0]
            for transform in (None, mirror)
        )
    return classifier, probabilities, mirrored
