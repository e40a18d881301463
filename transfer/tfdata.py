"""The one tf.data pipeline from the cached TFRecords to batches of (pixels, integer label)."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from transfer.records.schema import ENCODED, FILENAME, KEY, LABEL, parse_example

SHUFFLE_BUFFER = 2048
PARALLEL_READS = 4
INDEX_BATCH = 256  # records parsed at a time by read_record_index
# (uint8 image, the photo's key, a random draw number) -> float32 image, applied to each
# image before batching; transfer.views makes them.
ImageTransform = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def read_records(files: list[Path]) -> tf.data.Dataset:
    """The serialized records of the shards, interleaved in the order every unshuffled output
    (features, predictions, read_record_index) follows."""
    # A fixed number of parallel reads, not AUTOTUNE (the core count): the interleaved order
    # must be the same on every machine.
    return tf.data.TFRecordDataset([str(f) for f in files], num_parallel_reads=PARALLEL_READS)


@dataclass(frozen=True)
class RecordIndex:
    """What a split's records hold besides the pixels, in the order of make_dataset without a
    shuffle: each photo's path and key (its file's SHA-256), its integer label, and the
    SHA-256 of its resized JPEG (what the models see: the memo's key for their outputs)."""

    paths: list[str]
    keys: list[str]
    labels: np.ndarray
    images: list[str]


def read_record_index(files: list[Path]) -> RecordIndex:
    """The index of a split's records, read without decoding any image."""

    def fields(serialized: tf.Tensor) -> tuple[tf.Tensor, ...]:
        example = parse_example(serialized)
        return example[FILENAME], example[KEY], example[LABEL], example[ENCODED]

    parsed = read_records(files).map(fields, num_parallel_calls=tf.data.AUTOTUNE)
    paths, keys, labels, images = [], [], [], []
    for names, photo_keys, batch_labels, encoded in parsed.batch(INDEX_BATCH).as_numpy_iterator():
        paths += [name.decode() for name in names]
        keys += [photo_key.decode() for photo_key in photo_keys]
        labels.append(batch_labels)
        images += [hashlib.sha256(jpeg).hexdigest() for jpeg in encoded]
    all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    return RecordIndex(paths, keys, all_labels, images)


def make_dataset(
    files: list[Path],
    batch_size: int,
    shuffle_seed: int | None = None,
    *,
    transform: ImageTransform | None = None,
    with_filenames: bool = False,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    only: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Read -> keep `only` -> shuffle (training only) -> parse/decode, transform -> batch ->
    to float -> prefetch.

    Batches are (float32 pixels, int64 labels), plus the images' paths if `with_filenames`.
    Without `shuffle_seed` the order is the same on every run. The shuffle buffer holds
    serialized records, `shuffle_buffer` of them. `transform` gets each image with its
    photo's key and a draw number that changes every epoch (seeded by `shuffle_seed`).
    `only`, a boolean per record in the unshuffled order, keeps the records it marks, before
    any is decoded.
    """
    dataset = read_records(files)
    if only is not None:
        kept = tf.constant(only, dtype=tf.bool)
        dataset = dataset.enumerate().filter(lambda index, _: kept[index])
        dataset = dataset.map(lambda _, serialized: serialized)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if transform is not None:
        draws = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, draws)

    def decode(serialized: tf.Tensor, draw: tf.Tensor | None = None) -> tuple[tf.Tensor, ...]:
        example = parse_example(serialized)
        image = tf.io.decode_jpeg(example[ENCODED], channels=3)  # uint8: batched at 1/4 the bytes
        if transform is not None:
            image = transform(image, example[KEY], draw)
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
