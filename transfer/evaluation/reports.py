"""What `evaluate` writes besides the metrics: confusion matrix, predictions file and picture."""

from pathlib import Path

import numpy as np

from transfer.atomic import atomic_output, write_csv
from transfer.evaluation.grid import draw_grid


def write_reports(
    confusion_file: Path,
    predictions_file: Path,
    picture_file: Path,
    *,
    classes: list[str],
    raw_dir: Path,
    labels: np.ndarray,
    probabilities: np.ndarray,
    paths: list[str],
    grid_images: int,
    heat_maps: dict[int, np.ndarray],
) -> None:
    """The confusion matrix (`actual,predicted` rows), every image's prediction with its
    confidence, and a picture of up to `grid_images` of the images (found in `raw_dir`),
    misclassified first (those in `heat_maps`, by index, tinted by their map)."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    write_csv(
        confusion_file,
        ["actual", "predicted"],
        [[classes[a], classes[p]] for a, p in zip(labels, predicted, strict=True)],
    )
    write_csv(
        predictions_file,
        ["path", "true", "predicted", "confidence"],
        [
            [path, classes[a], classes[p], f"{c:.6f}"]
            for path, a, p, c in zip(paths, labels, predicted, confidence, strict=True)
        ],
    )
    grid = draw_grid(
        raw_dir,
        paths,
        labels,
        predicted=predicted,
        confidence=confidence,
        classes=classes,
        count=grid_images,
        heat_maps=heat_maps,
    )
    with atomic_output(picture_file) as path:
        grid.save(path, format="PNG")
