"""A picture of test images with their predicted and true labels, the misclassified ones with
the heat map of the class predicted."""

from pathlib import Path

import numpy as np
from PIL import Image

from transfer.contact_sheets import contact_sheet, open_tile
from transfer.heatmaps.overlay import overlay
from transfer.timing import phase

RIGHT = (30, 90, 220)
WRONG = (220, 30, 30)


def grid_order(labels: np.ndarray, predicted: np.ndarray, count: int) -> list[int]:
    """The indices of the up to `count` images the picture shows, misclassified first."""
    return sorted(range(len(labels)), key=lambda i: (labels[i] == predicted[i], i))[:count]


def misclassified_heat_maps(
    files: list[Path],
    labels: np.ndarray,
    predicted: np.ndarray,
    *,
    count: int,
    classifier: list[Path],
) -> dict[int, np.ndarray]:
    """{index: Grad-CAM map of the class predicted} of the misclassified images among the
    `count` the picture shows; `files` are the test photos, `classifier` the .keras files the
    classifier is made of (head_only.classifier_files)."""
    wrong = [i for i in grid_order(labels, predicted, count) if labels[i] != predicted[i]]
    if not wrong:
        return {}
    with phase("heat maps"):
        # Imported only here: TensorFlow's start-up is most of a head-only evaluate's time.
        from transfer.heatmaps.gradcam import explain_photos, load_gradcam

        gradcam = load_gradcam(classifier)
        maps = explain_photos(
            gradcam, [files[i] for i in wrong], [int(predicted[i]) for i in wrong]
        )
    return dict(zip(wrong, maps, strict=True))


def draw_grid(
    raw_dir: Path,
    paths: list[str],
    labels: np.ndarray,
    *,
    predicted: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    count: int,
    heat_maps: dict[int, np.ndarray],
) -> Image.Image:
    """A grid of up to `count` of the images (`raw_dir / path`), misclassified first; red
    captions wrong, blue right; an image with a map in `heat_maps` (by index) tinted by it."""
    tiles = []
    for index in grid_order(labels, predicted, count):
        caption = (
            f"{classes[predicted[index]]} {confidence[index]:.0%}\ntrue: {classes[labels[index]]}"
        )
        colour = RIGHT if labels[index] == predicted[index] else WRONG
        tile = open_tile(raw_dir, paths[index])
        if index in heat_maps:
            tile = overlay(tile, heat_maps[index])
        tiles.append((tile, caption, colour))
    return contact_sheet(tiles)
