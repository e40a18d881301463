"""Fixtures of the model tier."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import N_CLASSES, SIZE
from transfer.records.schema import serialize_example, write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """24 tiny coloured images (three classes) as TFRecords."""
    directory = tmp_path_factory.mktemp("shards")
    random = np.random.default_rng(0)
    records = []
    for index in range(24):
        label = index % N_CLASSES
        pixels = np.zeros((SIZE, SIZE, 3)) + random.normal(0, 20, (SIZE, SIZE, 3)) + 100
        pixels[..., label] += 100
        encoded = tf.io.encode_jpeg(np.clip(pixels, 0, 255).astype(np.uint8)).numpy()
        key = f"{index:064x}"  # the photo's key: any hex digest will do here
        records.append(serialize_example(encoded, label, f"c{label}/{index}.jpg", key))
    names = write_shards(iter(records), directory, "train", len(records), 10)
    return [directory / name for name in names]
