"""Cached activations for fine-tuning: the outputs of the frozen layers below the cut, computed
once per image, in memory or in memory-mapped files, and served as training batches."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.inference import in_memory, run_in_batches, written_to


class ActivationBatches(keras.utils.PyDataset):
    """Batches of cached activations (arrays or memory maps) with one-hot labels for the loss."""

    def __init__(
        self,
        arrays: tuple[np.ndarray, ...],
        labels: np.ndarray,
        n_classes: int,
        batch_size: int,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.arrays, self.labels, self.batch_size = arrays, labels, batch_size
        self.one_hot = np.eye(n_classes, dtype=np.float32)
        self.random = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self.order = np.arange(len(labels))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        # Sorted indices read a memory map front to back.
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return tuple(array[rows] for array in self.arrays), self.one_hot[self.labels[rows]]

    def on_epoch_end(self) -> None:
        if self.random is not None:
            self.random.shuffle(self.order)


def activation_bytes(lower: keras.Model, count: int) -> int:
    """Bytes the cached activations of `count` images take as float32."""
    per_image = sum(math.prod(tensor.shape[1:]) for tensor in lower.outputs)
    return per_image * count * 4


def cache_activations(
    forward: Callable[[Any], Any],
    dataset: tf.data.Dataset,
    lower: keras.Model,
    count: int,
    directory: Path | None,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Run `forward` (pixels -> the tensors crossing the cut, `lower`'s outputs) over the
    (pixels, labels) dataset once: (activations, integer labels).

    They go into memory, or into .npy files in `directory` when given, read back as
    read-only memory maps.
    """
    rows = [(tuple(t.shape[1:]), np.float32) for t in lower.outputs] + [((), np.int64)]
    if directory is None:
        *activations, labels = run_in_batches(forward, dataset, count, rows, in_memory)
        return tuple(activations), labels
    names = [f"cut_{index}.npy" for index in range(len(lower.outputs))] + ["labels.npy"]
    files = [directory / name for name in names]
    for writer in run_in_batches(forward, dataset, count, rows, written_to(files)):
        writer.close()
    *activations, labels = (np.load(file, mmap_mode="r") for file in files)
    return tuple(activations), labels
