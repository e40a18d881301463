"""A picture of test images with their predicted and true labels."""

import numpy as np
from PIL import Image

from transfer.pictures import contact_sheet

RIGHT = (30, 90, 220)
WRONG = (220, 30, 30)


def draw_grid(
    images: list[np.ndarray],
    labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
    count: int,
) -> Image.Image:
    """A grid of up to `count` images, misclassified first; red captions wrong, blue right."""
    order = sorted(range(len(images)), key=lambda i: (labels[i] == predicted[i], i))[:count]
    tiles = []
    for index in order:
        caption = (
            f"{classes[predicted[index]]} {confidence[index]:.0%}\ntrue: {classes[labels[index]]}"
        )
        colour = RIGHT if labels[index] == predicted[index] else WRONG
        tiles.append((Image.fromarray(images[index].astype(np.uint8)), caption, colour))
    return contact_sheet(tiles)
