"""What the two training stages share: callbacks and class weights."""

import keras
import numpy as np
from dvclive import Live
from dvclive.keras import DVCLiveCallback


def training_callbacks(
    patience: int, live: Live | None, has_validation: bool
) -> list[keras.callbacks.Callback]:
    """Early stopping that restores the best weights, learning-rate decay on plateau, and
    DVCLive logging unless `live` is None."""
    monitor = "val_loss" if has_validation else "loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor, factor=0.3, patience=max(1, patience - 1)),
    ]
    return callbacks if live is None else [*callbacks, DVCLiveCallback(live=live)]


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Weights n / (k * count) so that every class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = len(labels) / (n_classes * np.maximum(counts, 1.0))
    return {index: float(weight) for index, weight in enumerate(weights)}
