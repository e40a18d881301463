"""Stage `train_head`: train the classification head on the cached features only."""

import logging
import math

import keras
import numpy as np
import tensorflow as tf

from stages.atomic import atomic_output
from stages.cli import run
from stages.features import load_features
from stages.meta import read_meta
from stages.model_files import save_model
from stages.models import build_head, compile_model
from stages.params import HeadParams, load_params
from stages.paths import CACHE_DIR, FEATURES_DIR, HEAD_FILE, HEAD_LIVE_DIR
from stages.training import balanced_class_weights, open_live, training_callbacks

log = logging.getLogger("train_head")


def feature_batches(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (features, one-hot labels); with `shuffle_seed`, a new order every epoch.

    The arrays are in memory already, so this is not make_dataset's pipeline. The shuffle
    holds the whole split, so each epoch is a seeded permutation that depends only on the seed
    and the count: make_dataset(..., shuffle_buffer=count) gives the same images the same
    order, which lets the benchmark train the tutorials' way on identical batches.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (features, keras.utils.to_categorical(labels, n_classes).astype(np.float32))
    )
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in an epoch. The head runs a whole epoch per graph call: it is so small that
    Keras' Python overhead per step would otherwise be most of its training time (the weights
    come out the same)."""
    return math.ceil(count / batch_size)


def train_head(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    params: HeadParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
) -> keras.Model:
    """Fit a new head on feature vectors; the callbacks decide when to stop.

    Seeds Python, NumPy, TensorFlow and Keras with `seed` first, so that the head's initial
    weights and dropout follow from the seed alone (the benchmark replays them).
    """
    keras.utils.set_random_seed(seed)
    head = build_head(train[0].shape[1], n_classes, params)
    compile_model(
        head,
        params.optimizer,
        params.learning_rate,
        params.label_smoothing,
        steps_per_execution=steps_per_epoch(len(train[1]), params.batch_size),
    )
    weights = balanced_class_weights(train[1], n_classes) if params.class_weights else None
    validation = None
    if len(val[1]):
        validation = feature_batches(*val, n_classes, params.batch_size)
    head.fit(
        feature_batches(*train, n_classes, params.batch_size, seed),
        validation_data=validation,
        epochs=params.epochs,
        class_weight=weights,
        callbacks=callbacks,
        verbose=2,
    )
    return head


def main() -> None:
    params = load_params()
    n_classes = len(read_meta(CACHE_DIR)["classes"])
    train = load_features(FEATURES_DIR, "train")
    val = load_features(FEATURES_DIR, "val")
    with atomic_output(HEAD_LIVE_DIR) as live_dir:
        live = open_live(live_dir)
        callbacks = training_callbacks(params.head.patience, live, len(val[1]) > 0)
        head = train_head(train, val, n_classes, params.head, params.seed, callbacks)
    save_model(head, HEAD_FILE)


if __name__ == "__main__":
    run(main)
