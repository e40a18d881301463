"""Fine-tune the top of the backbone with the head: on images, or on cached activations."""

import logging
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import keras
import numpy as np
from dvclive import Live

from transfer.distribution import StageContext, computing_in, stage_context
from transfer.inference import run_on_records
from transfer.litert import frozen_forward
from transfer.manifests.cache_meta import CacheMeta, read_cache_meta
from transfer.memo.store import NO_MEMO, Memo, MemoCount
from transfer.models.cut import TrainableTop, build_top_model, unfreeze_top
from transfer.models.factories import BACKBONE_LAYER, build_classifier, compile_model
from transfer.models.files import load_model
from transfer.params import FinetuneParams, Params
from transfer.row_order import TrainingVariants
from transfer.tfdata import make_dataset, read_record_index, with_one_hot
from transfer.timing import phase
from transfer.training.activation_cache import (
    activation_bytes,
    below_cut_forward,
    cache_activations,
    check_stored,
)
from transfer.training.batches import ViewBatches
from transfer.training.callbacks import training_callbacks
from transfer.training.head import steps_per_epoch
from transfer.views import Views, mirror

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
    *,
    params: FinetuneParams,
    views: Views,
    callbacks: list[keras.callbacks.Callback],
    precision: str = "float32",
) -> None:
    """Ordinary fine-tuning: every image goes through the whole backbone on every epoch,
    as a new augmented view each time when there are `views`.

    `splits` as for fit_on_activations. Trains in the dtype policy `precision`, under the
    strategy the classifier was built in.
    """
    transform = views.transform() if views.count else None
    train_files, train_count = splits["train"]
    train = make_dataset(train_files, params.batch_size, views.seed, transform=transform)
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


def cache_split_activations(
    stack: ExitStack,
    forward: tuple[Callable[[Any], Any], str],
    lower: keras.Model,
    splits: dict[str, tuple[list[Path], int]],
    *,
    views: Views,
    params: FinetuneParams,
    memo: Memo,
) -> dict[str, tuple[tuple[np.ndarray, ...], np.ndarray, TrainingVariants]]:
    """(activations, labels, their rows' order) of every split: the outputs of `lower`, by
    `forward` (the pass below the cut, its memo version), for every variant of every image
    (the training images' cached views too), from the `memo` or computed. In memory, or on
    disk in temporary folders that `stack` removes, as `params` say."""
    variants = {
        split: TrainingVariants(count, views.count if split == "train" else 0)
        for split, (_, count) in splits.items()
    }
    dtype = params.activation_dtype
    total = sum(activation_bytes(lower, rows.rows, dtype) for rows in variants.values())
    on_disk = total > params.activation_memory_mb * 2**20
    where = "on disk" if on_disk else "in memory"
    log.info("caching %.0f MB of %s activations %s", total / 2**20, dtype, where)
    call, version = forward
    cached, memoized = {}, MemoCount()
    for split, (files, _) in splits.items():
        directory = None
        if on_disk:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=split)))
        index = read_record_index(files)
        blocks = [views.block(version, index, block) for block in variants[split].blocks]
        activations, count = cache_activations(
            call, files, blocks, lower=lower, directory=directory, dtype=dtype, memo=memo,
            batch_size=params.batch_size,
        )  # fmt: skip
        memoized.add(count)
        check_stored(activations, dtype)
        cached[split] = activations, index.labels, variants[split]
    log.info("%d activation rows computed, %d from the memo", memoized.computed, memoized.reused)
    return cached


def fit_on_activations(
    extractor: keras.Model,
    head: keras.Model,
    splits: dict[str, tuple[list[Path], int]],
    n_classes: int,
    *,
    top: TrainableTop,
    params: FinetuneParams,
    views: Views,
    callbacks: list[keras.callbacks.Callback],
    engine: str = "keras",
    precision: str = "float32",
    memo: Memo = NO_MEMO,
) -> None:
    """Fine-tuning of the extractor's unfrozen `top` on the cached outputs of the frozen layers
    below it; trains the layers in place.

    `splits` maps train, and val unless it is empty, to (TFRecord files, image count). The
    training images' augmented `views` (the same as extract's) are cached beside their clean
    activations, and each epoch trains on a seeded choice among them per image. Each image's
    activations come from the `memo` when an earlier run computed them. The frozen layers run
    on `engine` (keras or litert), training stays in Keras, in the dtype policy `precision`.
    In a distribution strategy's scope, both run on its replicas.
    """
    lower, upper = top.split()
    forward = below_cut_forward(extractor, lower, engine)
    with ExitStack() as stack:
        with phase("cache activations"):
            cached = cache_split_activations(
                stack, forward, lower, splits, views=views, params=params, memo=memo
            )
        model = build_top_model(lower, upper, head)
        batch_size = params.batch_size
        train = ViewBatches(*cached["train"], n_classes, batch_size, views.seed)
        val = ViewBatches(*cached["val"], n_classes, batch_size) if "val" in cached else None
        schedule = learning_rate_schedule(params, len(train))
        with computing_in(precision, model):
            compile_model(model, params.optimizer, schedule, params.label_smoothing)
            model.fit(
                train, validation_data=val, epochs=params.epochs, callbacks=callbacks, verbose=2
            )


def fit_top(
    extractor: keras.Model,
    head: keras.Model,
    classifier: keras.Model,
    splits: dict[str, tuple[list[Path], int]],
    *,
    params: Params,
    context: StageContext,
    callbacks: list[keras.callbacks.Callback],
    n_classes: int,
) -> None:
    """Fine-tune the top `params.unfreeze` backbone layers of the classifier (made of the
    extractor and the head) in place: on cached activations, unless
    `finetune.cache_activations: false` asks for the ordinary path."""
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), params.unfreeze)
    views = Views(params.augment, params.seed)
    finetune = params.finetune
    with phase("train"), context.strategy.scope():
        if not finetune.cache_activations:
            fit_on_images(
                classifier, splits, n_classes, params=finetune, views=views,
                callbacks=callbacks, precision=context.precision,
            )  # fmt: skip
        else:
            fit_on_activations(
                extractor, head, splits, n_classes, top=top, params=finetune, views=views,
                callbacks=callbacks, engine=params.backbone.engine,
                precision=context.precision, memo=context.memo,
            )  # fmt: skip


def finetune_classifier(
    params: Params, cache_dir: Path, extractor_file: Path, head_file: Path, live: Live
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """Fine-tune the top `params.unfreeze` backbone layers with the head (unfreeze >= 1).

    On cached activations (and cached augmented views), unless `finetune.cache_activations:
    false` asks for the ordinary path; under the `distribute` strategy, in the `precision`
    policy. Returns the classifier (float32) and its class probabilities for the test
    images, clean and mirrored, in the cached order.
    """
    context = stage_context(params)
    strategy = context.strategy
    meta = read_cache_meta(cache_dir)
    with phase("load models"), strategy.scope():
        extractor = load_model(extractor_file)
        head = load_model(head_file)
        classifier = build_classifier(extractor, head)
    splits = training_splits(cache_dir, meta)
    # The learning rate follows its schedule: no decay on plateau.
    callbacks = training_callbacks(
        params.finetune.patience,
        live,
        "val" in splits,
        reduce_on_plateau=False,
        watch=params.finetune.watch,
    )
    fit_top(
        extractor, head, classifier, splits, params=params, context=context,
        callbacks=callbacks, n_classes=meta.n_classes,
    )  # fmt: skip
    with phase("predict"):
        # On backbone.engine, as the head-only classifier's features were computed: on a
        # CPU, LiteRT's conversion and run take half of what Keras' run does.
        forward = frozen_forward(classifier, params.backbone.engine, strategy)
        test_files, count = meta.split_files(cache_dir, "test"), meta.counts["test"]
        probabilities, mirrored = (
            run_on_records(
                forward, meta.n_classes, test_files, count, params.finetune.batch_size, transform
            )[0]
            for transform in (None, mirror)
        )
    return classifier, probabilities, mirrored
