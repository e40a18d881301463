"""How each exported file is checked, the same way for every format: its predictions on the
test images against the Keras classifier's, its size, and its latency per image."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from transfer.evaluation.metrics import agreement_metrics
from transfer.inference import run_in_batches
from transfer.records.schema import ENCODED, LABEL, parse_example
from transfer.tfdata import read_records

LATENCY_IMAGES = 16  # test images each model's latency is the median over


def check_figures(
    probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray
) -> dict[str, float | int]:
    """A format's accuracy, its agreement with the reference (the Keras classifier's
    probabilities) on the top class, and the largest difference of any probability."""
    return {
        **agreement_metrics(probabilities, labels, reference.argmax(axis=1)),
        "max_probability_difference": round(float(np.abs(probabilities - reference).max()), 6),
        "images": len(labels),
    }


def encoded_test_images(files: list[Path], count: int) -> list[bytes]:
    """The cached JPEGs of the first `count` images of a split, as stored, in the order of
    make_dataset without a shuffle."""
    dataset = read_records(files).map(lambda record: parse_example(record)[ENCODED])
    return [data.numpy() for data in dataset.take(count)]


def predict_encoded(
    call: Callable[[tf.Tensor], np.ndarray],
    width: int,
    files: list[Path],
    *,
    count: int,
    batch_size: int,
) -> np.ndarray:
    """`call`'s `width` outputs for the cached JPEGs of the first `count` images of a split,
    `batch_size` encoded images (a string tensor) a call."""
    dataset = read_records(files).map(parse_example).map(lambda e: (e[ENCODED], e[LABEL]))
    batches = dataset.take(count).batch(batch_size)
    rows = [((width,), np.float32), ((), np.int64)]
    probabilities, _ = run_in_batches(call, batches, count, rows, progress_bar=False)
    return probabilities


def median_ms(call: Callable[[Any], Any], inputs: list[Any] | np.ndarray) -> float:
    """The median milliseconds `call` takes on one input in a call of its own (as an app
    classifies a photo), after a first call that allocates."""
    call(inputs[0])
    seconds = []
    for one in inputs:
        start = time.perf_counter()
        call(one)
        seconds.append(time.perf_counter() - start)
    return round(1000 * float(np.median(seconds)), 3)


def file_bytes(path: Path) -> int:
    """A file's size, or the total of a directory's files (a SavedModel)."""
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return path.stat().st_size
