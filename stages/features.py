"""The bottleneck feature files that `extract` writes and later stages read."""

from pathlib import Path

import numpy as np


def features_file(features_dir: Path, split: str) -> Path:
    """count x width float32 features of a split, in the cached (unshuffled) record order."""
    return features_dir / f"{split}.npy"


def labels_file(features_dir: Path, split: str) -> Path:
    """The integer class labels of the same images."""
    return features_dir / f"{split}_labels.npy"


def load_features(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (features, integer labels) of one split."""
    return np.load(features_file(features_dir, split)), np.load(labels_file(features_dir, split))
