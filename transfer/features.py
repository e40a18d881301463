"""The bottleneck feature files that `extract` writes and later stages read (NumPy only)."""

import json
from pathlib import Path

import numpy as np


def features_file(features_dir: Path, split: str) -> Path:
    """count x width float32 features of a split, in the cached (unshuffled) record order."""
    return features_dir / f"{split}.npy"


def views_file(features_dir: Path) -> Path:
    """(views x count) x width float32 features of the training images' augmented views: view 0
    of every image in the cached order, then view 1, and so on (the file is absent with
    `augment.views: 0`)."""
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


def load_training_variants(features_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features, integer labels) of the training images' clean features, then of their
    views' (see views_file): a row for each variant of each image."""
    clean, labels = load_features(features_dir, "train")
    views = views_file(features_dir)
    if not views.exists():
        return clean, labels
    features = np.concatenate([clean, np.load(views)])
    return features, np.tile(labels, len(features) // len(labels))
