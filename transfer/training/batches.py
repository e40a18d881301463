"""Fine-tuning batches from the cached cut activations, which hold each training image's clean
rows and its augmented views' rows: one of them chosen per image per epoch. (The head, whose
features fit in memory, trains on every row instead: training.head.feature_batches.)"""

import math

import keras
import numpy as np

from transfer.variants import TrainingVariants


class ViewBatches(keras.utils.PyDataset):
    """Batches of (inputs, one-hot labels) from arrays of the images' variants, in the rows'
    order of `variants` (transfer.variants), and the images' `labels`.

    With `shuffle_seed`, every epoch visits each image once, in a new order, as a seeded random
    one of its variants; without, it gives the clean rows in order. With `mixup` (the alpha of
    a Beta distribution) > 0 as well, each row is mixed with another image's, inputs and labels
    alike, by a seeded weight drawn from it (mixup on the cached activations: "manifold
    mixup", Verma et al. 2019). Arrays may be memory maps, and float16: rows come out float32.
    """

    def __init__(
        self,
        arrays: tuple[np.ndarray, ...],
        labels: np.ndarray,
        variants: TrainingVariants,
        n_classes: int,
        batch_size: int,
        shuffle_seed: int | None = None,
        mixup: float = 0.0,
    ) -> None:
        super().__init__()
        self.arrays, self.labels, self.batch_size = arrays, labels, batch_size
        self.mixup = mixup if shuffle_seed is not None else 0.0
        self.count = len(labels)
        self.variants = variants
        self.one_hot = np.eye(n_classes, dtype=np.float32)
        self.random = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self.rows = np.arange(self.count)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray | tuple[np.ndarray, ...], np.ndarray]:
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        order = np.argsort(self.rows[batch], kind="stable")  # the batch in the rows' order
        inputs, labels = self._read(self.rows[batch][order])
        if self.mixup > 0:
            partner_inputs, partner_labels = self._read(self.partners[batch][order])
            weight = self.weights[batch][order, None]
            labels = weight * labels + (1 - weight) * partner_labels
            inputs = tuple(
                weight.reshape(-1, *[1] * (own.ndim - 1)) * own
                + (1 - weight.reshape(-1, *[1] * (own.ndim - 1))) * other
                for own, other in zip(inputs, partner_inputs, strict=True)
            )
        return (inputs[0] if len(inputs) == 1 else inputs), labels

    def _read(self, rows: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        # Read in sorted order (a memory map front to back), returned in the given one.
        order = np.argsort(rows, kind="stable")
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        ordered = rows[order]
        inputs = tuple(np.asarray(array[ordered], np.float32)[back] for array in self.arrays)
        return inputs, self.one_hot[self.labels[self.variants.image(rows)]]

    def on_epoch_end(self) -> None:
        if self.random is not None:
            images = self.random.permutation(self.count)
            variant = self.random.integers(self.variants.per_image, size=self.count)
            self.rows = self.variants.row(variant, images)
            if self.mixup > 0:
                self.partners = self.rows[self.random.permutation(self.count)]
                self.weights = self.random.beta(self.mixup, self.mixup, self.count)
                self.weights = self.weights.astype(np.float32)
