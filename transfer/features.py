"""The bottleneck feature files that `extract` writes and later stages read (NumPy only)."""

import json
from pathlib import Path

import numpy as np


def features_file(features_dir: Path, split: str) -> Path:
    """count x width float32 features of a split, in the cached (unshuffled) record order."""
    return features_dir / f"{split}.npy"


def views_file(features_dir: Path) -> Path:
    """float32 features of the training images' augmented views, a row each in the order of
    transfer.row_order (the file is absent with `augment.views: 0`)."""
    return features_dir / "train_views.npy"


def mirrored_file(features_dir: Path) -> Path:
    """count x width float32 features of the test images mirrored left to right, for
    test-time augmentation."""
    return features_dir / "test_mirrored.npy"


def labels_file(features_dir: Path, split: str) -> Path:
    """The integer class labels of the same images."""
    return features_dir / f"{split}_labels.npy"


def paths_file(features_dir: Path, split: str) -> Path:
    """The images' paths (`<class>/<file>`, a JSON list) in the same order."""
    return features_dir / f"{split}_paths.json"


def load_paths(features_dir: Path, split: str) -> list[str]:
    return json.loads(paths_file(features_dir, split).read_text())


def load_features(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (features, integer labels) of one split."""
    return np.load(features_file(features_dir, split)), np.load(labels_file(features_dir, split))
