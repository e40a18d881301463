"""Cached activations for fine-tuning: the outputs of the frozen layers below the cut, computed
once per image (and per augmented view), in memory or in memory-mapped files."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.errors import PipelineError
from transfer.inference import run_in_batches, write_in_batches

SAMPLE_ROWS = 256  # rows of the cache check_stored looks at


def activation_bytes(lower: keras.Model, count: int, dtype: str) -> int:
    """Bytes the cached activations of `count` images take stored as `dtype`."""
    per_image = sum(math.prod(tensor.shape[1:]) for tensor in lower.outputs)
    return per_image * count * np.dtype(dtype).itemsize


def cache_activations(
    forward: Callable[[Any], Any],
    dataset: tf.data.Dataset,
    lower: keras.Model,
    count: int,
    directory: Path | None,
    dtype: str = "float32",
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Run `forward` (pixels -> the tensors crossing the cut, `lower`'s outputs) over the
    (pixels, labels) dataset of `count` rows once: (activations stored as `dtype`, integer
    labels).

    They go into memory, or into .npy files in `directory` when given, read back as
    read-only memory maps.
    """
    rows = [(tuple(t.shape[1:]), dtype) for t in lower.outputs] + [((), np.int64)]
    if directory is None:
        *activations, labels = run_in_batches(forward, dataset, count, rows)
        return tuple(activations), labels
    names = [f"cut_{index}.npy" for index in range(len(lower.outputs))] + ["labels.npy"]
    files = [directory / name for name in names]
    write_in_batches(forward, dataset, count, rows, files)
    *activations, labels = (np.load(file, mmap_mode="r") for file in files)
    return tuple(activations), labels


def check_stored(activations: tuple[np.ndarray, ...], dtype: str) -> None:
    """Fail, naming the param, when float16 storage lost the activations: values beyond its
    range (65504) become infinite, and below about 6e-8 zero, as those of a backbone with
    random weights do. Looks at the first rows only, so a memory map is barely read."""
    if dtype != "float16":
        return
    sample = [np.asarray(array[:SAMPLE_ROWS], np.float32) for array in activations]
    if all(not rows.any() for rows in sample) or not all(np.isfinite(s).all() for s in sample):
        raise PipelineError(
            "finetune.activation_dtype=float16 cannot hold the activations below the cut "
            "(all zero or infinite); set finetune.activation_dtype: float32"
        )
