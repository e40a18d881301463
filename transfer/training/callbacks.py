"""What the two training stages share: callbacks and class weights."""

import copy

import keras
import numpy as np
from dvclive import Live
from dvclive.keras import DVCLiveCallback


class KeptEpochLive(DVCLiveCallback):
    """DVCLive logging of every epoch whose summary (the stage's metrics.json, what `dvc metrics
    diff` compares) is the epoch whose weights early stopping kept, not the last one."""

    def __init__(self, live: Live, stopping: keras.callbacks.EarlyStopping) -> None:
        super().__init__(live=live)
        self.stopping = stopping
        self.summaries: list[dict] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        self.summaries.append(copy.deepcopy(self.live.summary))  # its "step" is this epoch

    def on_train_end(self, logs: dict | None = None) -> None:
        # EarlyStopping, earlier in the list, has restored the best epoch's weights by now.
        if self.summaries:
            self.live.summary = self.summaries[self.stopping.best_epoch]
        super().on_train_end(logs)


def training_callbacks(
    patience: int,
    live: Live | None,
    has_validation: bool,
    *,
    reduce_on_plateau: bool,
    watch: str = "loss",
) -> list[keras.callbacks.Callback]:
    """Early stopping on the validation `watch` (loss or accuracy; the training one without
    a validation split) that restores the best weights, learning-rate decay on plateau
    unless the optimizer follows a schedule (`reduce_on_plateau` False), and DVCLive logging
    unless `live` is None."""
    monitor = f"val_{watch}" if has_validation else watch
    stopping = keras.callbacks.EarlyStopping(monitor, patience=patience, restore_best_weights=True)
    callbacks: list[keras.callbacks.Callback] = [stopping]
    if reduce_on_plateau:
        factor_patience = max(1, patience - 1)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor, factor=0.3, patience=factor_patience)
        )
    return callbacks if live is None else [*callbacks, KeptEpochLive(live, stopping)]


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Weights n / (k * count) so that every class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = len(labels) / (n_classes * np.maximum(counts, 1.0))
    return {index: float(weight) for index, weight in enumerate(weights)}
