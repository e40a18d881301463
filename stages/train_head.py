"""Stage `train_head`: train the classification head on the cached features only."""

import logging
from pathlib import Path

import keras
import numpy as np

from stages.atomic import atomic_output
from stages.cli import run
from stages.model_files import save_model
from stages.models import build_head, compile_model
from stages.params import HeadParams, load_params
from stages.paths import CACHE_DIR, FEATURES_DIR, HEAD_FILE, HEAD_LIVE_DIR
from stages.tfrecords import read_meta
from stages.training import balanced_class_weights, open_live, training_callbacks

log = logging.getLogger("train_head")


def load_features(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (features, integer labels) of one split."""
    return np.load(features_dir / f"{split}.npy"), np.load(features_dir / f"{split}_labels.npy")


def train_head(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    params: HeadParams,
    callbacks: list[keras.callbacks.Callback],
) -> keras.Model:
    """Fit a new head on feature vectors; the callbacks decide when to stop."""
    head = build_head(train[0].shape[1], n_classes, params)
    compile_model(head, params.optimizer, params.learning_rate, params.label_smoothing)
    weights = balanced_class_weights(train[1], n_classes) if params.class_weights else None
    validation = (val[0], keras.utils.to_categorical(val[1], n_classes)) if len(val[1]) else None
    head.fit(
        train[0],
        keras.utils.to_categorical(train[1], n_classes),
        validation_data=validation,
        batch_size=params.batch_size,
        epochs=params.epochs,
        class_weight=weights,
        callbacks=callbacks,
        verbose=2,
    )
    return head


def main() -> None:
    params = load_params()
    keras.utils.set_random_seed(params.seed)
    n_classes = len(read_meta(CACHE_DIR)["classes"])
    train = load_features(FEATURES_DIR, "train")
    val = load_features(FEATURES_DIR, "val")
    with atomic_output(HEAD_LIVE_DIR) as live_dir:
        live = open_live(live_dir)
        callbacks = training_callbacks(params.head.patience, live, len(val[1]) > 0)
        head = train_head(train, val, n_classes, params.head, callbacks)
    save_model(head, HEAD_FILE)


if __name__ == "__main__":
    run(main)
