"""The one tf.data pipeline from the cached TFRecords to batches of (pixels, integer label)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from transfer.records.schema import ENCODED, FILENAME, LABEL, parse_example

SHUFFLE_BUFFER = 2048
PARALLEL_READS = 4
# (uint8 image, its path, a random draw number) -> float32 image, applied to each image before
# batching; transfer.views makes them.
ImageTransform = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def read_records(files: list[Path]) -> tf.data.Dataset:
    """The serialized records of the shards, interleaved in the order every unshuffled output
    (features, predictions, record_paths) follows."""
    # A fixed number of parallel reads, not AUTOTUNE (the core count): the interleaved order
    # must be the same on every machine.
    return tf.data.TFRecordDataset([str(f) for f in files], num_parallel_reads=PARALLEL_READS)


def record_paths(files: list[Path]) -> list[str]:
    """The images' paths (`<class>/<file>`) in the order of make_dataset without a shuffle,
    read without decoding any image."""
    names = read_records(files).map(
        lambda serialized: parse_example(serialized)[FILENAME],
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return [name.decode() for name in names.as_numpy_iterator()]


def make_dataset(
    files: list[Path],
    batch_size: int,
    shuffle_seed: int | None = None,
    transform: ImageTransform | None = None,
    with_filenames: bool = False,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> tf.data.Dataset:
    """Read -> shuffle (training only) -> parse/decode, transform -> batch -> to float ->
    prefetch.

    Batches are (float32 pixels, int64 labels), plus the images' paths if `with_filenames`.
    Without `shuffle_seed` the order is the same on every run. The shuffle buffer holds
    serialized records, `shuffle_buffer` of them. `transform` gets each image with its path
    and a draw number that changes every epoch (seeded by `shuffle_seed`).
    """
    dataset = read_records(files)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if transform is not None:
        draws = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, draws)

    def decode(serialized: tf.Tensor, draw: tf.Tensor | None = None) -> tuple[tf.Tensor, ...]:
        example = parse_example(serialized)
        image = tf.io.decode_jpeg(example[ENCODED], channels=3)  # uint8: batched at 1/4 the bytes
        if transform is not None:
            image = transform(image, example[FILENAME], draw)
        names = (example[FILENAME],) if with_filenames else ()
        return image, example[LABEL], *names

    def to_float(images: tf.Tensor, labels: tf.Tensor, *names: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return tf.cast(images, tf.float32), labels, *names

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def with_one_hot(dataset: tf.data.Dataset, n_classes: int) -> tf.data.Dataset:
    """(inputs, integer labels) batches as (inputs, float32 one-hot labels), for a loss that
    needs them (the categorical cross-entropy with label smoothing)."""
    one_hot = dataset.map(
        lambda inputs, labels: (inputs, tf.one_hot(labels, n_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return one_hot.prefetch(tf.data.AUTOTUNE)


def read_images(files: list[Path], batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 images, integer labels, paths) of a split, in the cached (unshuffled) order."""
    images, labels, paths = [], [], []
    for pixels, batch_labels, names in make_dataset(files, batch_size, with_filenames=True):
        images.append(pixels.numpy().astype(np.uint8))
        labels.append(batch_labels.numpy())
        paths += [name.decode() for name in names.numpy()]
    return np.concatenate(images), np.concatenate(labels), paths
