"""A picture of test images with their predicted and true labels."""

from pathlib import Path

import numpy as np
from PIL import Image

from transfer.contact_sheets import contact_sheet, open_tile

RIGHT = (30, 90, 220)
WRONG = (220, 30, 30)


def draw_grid(
    raw_dir: Path,
    paths: list[str],
    labels: np.ndarray,
    *,
    predicted: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    count: int,
) -> Image.Image:
    """A grid of up to `count` of the images (`raw_dir / path`), misclassified first; red
    captions wrong, blue right."""
    order = sorted(range(len(paths)), key=lambda i: (labels[i] == predicted[i], i))[:count]
    tiles = []
    for index in order:
        caption = (
            f"{classes[predicted[index]]} {confidence[index]:.0%}\ntrue: {classes[labels[index]]}"
        )
        colour = RIGHT if labels[index] == predicted[index] else WRONG
        tiles.append((open_tile(raw_dir, paths[index]), caption, colour))
    return contact_sheet(tiles)
