"""Fine-tuning batches from the cached cut activations, which hold each training image's clean
rows and its augmented views' rows: one of them chosen per image per epoch. (The head, whose
features fit in memory, trains on every row instead: training.head.feature_batches.)"""

import math

import keras
import numpy as np

from transfer.row_order import TrainingVariants


class ViewBatches(keras.utils.PyDataset):
    """Batches of (inputs, one-hot labels) from arrays of the images' variants, in the rows'
    order of `variants` (transfer.row_order), and the images' `labels`.

    With `shuffle_seed`, every epoch visits each image once, in a new order, as a seeded random
    one of its variants; without, it gives the clean rows in order. Arrays may be memory maps,
    and float16: rows come out float32.
    """

    def __init__(
        self,
        arrays: tuple[np.ndarray, ...],
        labels: np.ndarray,
        variants: TrainingVariants,
        n_classes: int,
        batch_size: int,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.arrays, self.labels, self.batch_size = arrays, labels, batch_size
        self.count = len(labels)
        self.variants = variants
        self.one_hot = np.eye(n_classes, dtype=np.float32)
        self.random = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self.rows = np.arange(self.count)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray | tuple[np.ndarray, ...], np.ndarray]:
        # Sorted rows read a memory map front to back.
        rows = np.sort(self.rows[index * self.batch_size : (index + 1) * self.batch_size])
        inputs = tuple(np.asarray(array[rows], np.float32) for array in self.arrays)
        labels = self.one_hot[self.labels[self.variants.image(rows)]]
        return (inputs[0] if len(inputs) == 1 else inputs), labels

    def on_epoch_end(self) -> None:
        if self.random is not None:
            images = self.random.permutation(self.count)
            variant = self.random.integers(self.variants.per_image, size=self.count)
            self.rows = self.variants.row(variant, images)
