"""A picture of test images with their predicted and true labels, drawn with Pillow."""

import math

import numpy as np
from PIL import Image, ImageDraw

TILE = 160
CAPTION = 34
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
    columns = max(1, math.ceil(math.sqrt(len(order))))
    rows = max(1, math.ceil(len(order) / columns))
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for slot, index in enumerate(order):
        left, top = (slot % columns) * TILE, (slot // columns) * (TILE + CAPTION)
        tile = Image.fromarray(images[index].astype(np.uint8)).resize((TILE - 4, TILE - 4))
        correct = labels[index] == predicted[index]
        colour = RIGHT if correct else WRONG
        draw.rectangle([left, top, left + TILE - 1, top + TILE - 1], outline=colour, width=2)
        sheet.paste(tile, (left + 2, top + 2))
        caption = (
            f"{classes[predicted[index]]} {confidence[index]:.0%}\ntrue: {classes[labels[index]]}"
        )
        draw.multiline_text((left + 4, top + TILE + 2), caption, fill=colour)
    return sheet
