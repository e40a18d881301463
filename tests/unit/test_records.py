"""The cache's records: one schema for writer and parser, and the typed meta file."""

import hashlib
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from tests.helpers import write_image
from transfer.manifests.cache_meta import CacheMeta, read_cache_meta, write_cache_meta
from transfer.models.backbones import input_size
from transfer.paths import META_FILE
from transfer.records.encoding import resize_jpeg
from transfer.records.schema import (
    ENCODED,
    FILENAME,
    KEY,
    LABEL,
    parse_example,
    serialize_example,
    write_shards,
)
from transfer.tfdata import make_dataset, read_record_index


def test_a_record_written_then_parsed_gives_back_what_went_in(tmp_path: Path) -> None:
    write_image(tmp_path / "cat.jpg", (200, 40, 40), 0, size=40)
    jpeg = resize_jpeg((tmp_path / "cat.jpg").read_bytes(), 32, 95)
    records = [
        serialize_example(jpeg, label, f"class{label}/ä {label}.jpg", f"{label:064x}")
        for label in range(3)
    ]
    names = write_shards(iter(records), tmp_path, "train", 3, 2)
    assert names == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    parsed = [
        parse_example(serialized)
        for name in names
        for serialized in tf.data.TFRecordDataset(str(tmp_path / name))
    ]
    assert [int(p[LABEL]) for p in parsed] == [0, 1, 2]
    assert [p[FILENAME].numpy().decode() for p in parsed] == [
        "class0/ä 0.jpg",
        "class1/ä 1.jpg",
        "class2/ä 2.jpg",
    ]
    assert all(p[ENCODED].numpy() == jpeg for p in parsed)
    assert [p[KEY].numpy().decode() for p in parsed] == [f"{label:064x}" for label in range(3)]
    index = read_record_index([tmp_path / n for n in names])  # the same, without decoding
    assert sorted(index.paths) == [f"class{label}/ä {label}.jpg" for label in range(3)]
    assert index.images == [hashlib.sha256(jpeg).hexdigest()] * 3
    by_path = dict(zip(index.paths, index.labels.tolist(), strict=True))
    assert [by_path[path] for path in sorted(by_path)] == [0, 1, 2]
    # And through the one tf.data pipeline: uint8 pixels as floats, integer labels.
    pixels, labels = next(iter(make_dataset([tmp_path / n for n in names], 3)))
    assert pixels.shape == (3, 32, 32, 3) and pixels.dtype == tf.float32
    assert sorted(labels.numpy().tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(pixels[0], tf.cast(tf.io.decode_jpeg(jpeg), tf.float32))


def test_cache_meta_round_trips_and_names_the_shards(tmp_path: Path) -> None:
    meta = CacheMeta(
        classes=("cat", "dog"),
        image_size=32,
        jpeg_quality=95,
        counts={"train": 3, "val": 0, "test": 1},
        shards={
            "train": ["train-00000-of-00001.tfrecord"],
            "val": ["val-00000-of-00001.tfrecord"],
            "test": ["test-00000-of-00001.tfrecord"],
        },
    )
    write_cache_meta(tmp_path, meta)
    assert read_cache_meta(tmp_path) == meta
    assert json.loads((tmp_path / META_FILE).read_text())["classes"] == ["cat", "dog"]
    assert meta.n_classes == 2
    assert meta.split_files(tmp_path, "test") == [tmp_path / "test-00000-of-00001.tfrecord"]


def test_image_size_null_is_the_backbones_default() -> None:
    assert input_size(None, "MobileNetV2") == 224
    assert input_size(None, "InceptionV3") == 299
    assert input_size(96, "InceptionV3") == 96
