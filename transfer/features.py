"""The bottleneck feature files: `extract` writes them; later stages and the bench read them."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from transfer.inference import memory_mapped, run_in_batches


def features_file(features_dir: Path, split: str) -> Path:
    """count x width float32 features of a split, in the cached (unshuffled) record order."""
    return features_dir / f"{split}.npy"


def labels_file(features_dir: Path, split: str) -> Path:
    """The integer class labels of the same images."""
    return features_dir / f"{split}_labels.npy"


def load_features(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (features, integer labels) of one split."""
    return np.load(features_file(features_dir, split)), np.load(labels_file(features_dir, split))


def extract_features(
    forward: Callable[[tf.Tensor], tf.Tensor],
    width: int,
    dataset: tf.data.Dataset,
    count: int,
    out_dir: Path,
    split: str,
) -> None:
    """Write `<split>.npy` (count x width, float32) and `<split>_labels.npy` batch by batch.

    `forward` is the extractor's traced call, traced once for all splits; `dataset` gives
    (pixels, labels) batches. The arrays are memory-mapped files, so memory does not grow
    with the dataset.
    """
    files = [features_file(out_dir, split), labels_file(out_dir, split)]
    rows = [((width,), np.float32), ((), np.int64)]
    arrays = run_in_batches(forward, dataset, count, rows, memory_mapped(files))
    for array in arrays:
        array.flush()
    del arrays  # close the memory maps before the directory is renamed
