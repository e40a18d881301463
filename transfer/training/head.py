"""Train the classification head: on cached features (`train_head`), or on images through the
frozen backbone (the benchmark's classic baseline), with the same function."""

import math

import keras
import numpy as np
import tensorflow as tf

from transfer.distribution import computing_in
from transfer.models.factories import build_classifier, build_head, compile_model
from transfer.params import HeadParams
from transfer.training.callbacks import balanced_class_weights


def feature_batches(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (features, one-hot labels); with `shuffle_seed`, a new order every epoch.

    The training rows are each image's clean features and each augmented view's, every one a
    sample of the epoch (row_order.load_training_variants); measured against a seeded choice of
    one view per image per epoch, this was as good or better (see the README). The shuffle
    holds every row, so each epoch is a seeded permutation that depends only on the seed and
    the count. Build it after keras.utils.set_random_seed: tf.data combines the seed with the
    global one.
    """
    dataset = tf.data.Dataset.from_tensor_slices((features, tf.one_hot(labels, n_classes)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in an epoch. The head runs a whole epoch per graph call: it is so small that
    Keras' Python overhead per step would otherwise be most of its training time (the weights
    come out the same)."""
    return math.ceil(count / batch_size)


def train_head(
    train: tf.data.Dataset | keras.utils.PyDataset,
    val: tf.data.Dataset | keras.utils.PyDataset | None,
    train_labels: np.ndarray,
    *,
    width: int,
    n_classes: int,
    params: HeadParams,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    extractor: keras.Model | None = None,
    precision: str = "float32",
) -> keras.Model:
    """Fit a new head on (inputs, one-hot labels) batches; the callbacks decide when to stop.

    The inputs are `width`-wide feature vectors, or, with a frozen `extractor`, the images it
    turns into them. Seeds Python, NumPy, TensorFlow and Keras with `seed` first, so that the
    head's initial weights and dropout follow from the seed alone, whichever the inputs.
    Trains in the dtype policy `precision`; the head comes back float32. Under a distribution
    strategy, call it in the strategy's scope: the batches are global, split across replicas.
    """
    keras.utils.set_random_seed(seed)
    head = build_head(width, n_classes, params)
    model = head if extractor is None else build_classifier(extractor, head)
    # Keras 3 fails to run several steps per graph call in a strategy's scope: its loop
    # cannot hold the cross-replica updates (keras-team/keras#19246). One step per call there.
    per_epoch = steps_per_epoch(len(train_labels), params.batch_size)
    steps = 1 if tf.distribute.has_strategy() else per_epoch
    with computing_in(precision, model):
        compile_model(
            model,
            params.optimizer,
            params.learning_rate,
            params.label_smoothing,
            steps_per_execution=steps,
        )
        weights = balanced_class_weights(train_labels, n_classes) if params.class_weights else None
        model.fit(
            train,
            validation_data=val,
            epochs=params.epochs,
            class_weight=weights,
            callbacks=callbacks,
            verbose=2,
        )
    return head
