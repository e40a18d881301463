"""The one TFRecord schema of the cache: writer, parser and shard names."""

import math
from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf

from transfer.errors import PipelineError

ENCODED = "image/encoded"
LABEL = "image/class/label"
# What TensorFlow's file writers raise when a write finds no room (ENOSPC, EFBIG).
NO_ROOM = (tf.errors.ResourceExhaustedError, tf.errors.OutOfRangeError)
FILENAME = "image/filename"  # the photo's path in data/raw
KEY = "image/key"  # the photo's identity: the hex SHA-256 of its file (splitting.Photo)
SCHEMA = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    LABEL: tf.io.FixedLenFeature([], tf.int64),
    FILENAME: tf.io.FixedLenFeature([], tf.string),
    KEY: tf.io.FixedLenFeature([], tf.string),
}


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_example(encoded: bytes, label: int, filename: str, key: str) -> bytes:
    """One image as a tf.train.Example."""
    feature = {
        ENCODED: _bytes_feature(encoded),
        LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        FILENAME: _bytes_feature(filename.encode()),
        KEY: _bytes_feature(key.encode()),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Protobuf writes map entries in an order that can change from process to process;
    # deterministic=True sorts them, so the same image gives the same bytes in every run.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """The inverse of serialize_example, for tf.data."""
    return tf.io.parse_single_example(serialized, SCHEMA)


def shard_names(split: str, count: int, shard_size: int) -> list[str]:
    """`train-00000-of-00004.tfrecord`, ...: at least one shard, even for an empty split."""
    shards = max(1, math.ceil(count / shard_size))
    return [f"{split}-{index:05d}-of-{shards:05d}.tfrecord" for index in range(shards)]


def write_shards(
    records: Iterable[bytes], out_dir: Path, split: str, count: int, shard_size: int
) -> list[str]:
    """Write `count` serialized records into shards of at most `shard_size` records."""
    names = shard_names(split, count, shard_size)
    iterator = iter(records)
    for index, name in enumerate(names):
        try:
            with tf.io.TFRecordWriter(str(out_dir / name)) as writer:
                for _ in range(min(shard_size, count - index * shard_size)):
                    writer.write(next(iterator))
        except NO_ROOM as error:  # "<file>; No space left on device" or "...; File too large"
            raise PipelineError(f"cannot write {error.message}") from None
    return names
