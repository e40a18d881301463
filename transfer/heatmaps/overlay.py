"""A heat map's picture: the photo tinted by the map, blue where the class's evidence is
weakest to red where it is strongest. Pillow and NumPy only: the review page draws it without
the model's packages."""

import numpy as np
from PIL import Image

# (level, RGB) stops of the colour scale, "jet"-like: dark blue, blue, cyan, yellow, red.
STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
COLOURS = np.array(
    [[0, 0, 140], [0, 90, 255], [0, 230, 230], [255, 220, 0], [220, 0, 0]], dtype=np.float32
)
TINT = (0.15, 0.5)  # the colour's share of a pixel: the first everywhere, plus the second x level


def colour_scale(levels: np.ndarray) -> np.ndarray:
    """RGB (float, 0 to 255) of each level in [0, 1]."""
    return np.stack([np.interp(levels, STOPS, COLOURS[:, c]) for c in range(3)], axis=-1)


def overlay(photo: Image.Image, heat: np.ndarray) -> Image.Image:
    """The RGB `photo` tinted by `heat` (rows x columns in [0, 1], any resolution: stretched
    over the photo, as the classifier's square input was stretched from it). The map is
    rounded to 8 bits first, so that float noise in its last digits changes no pixel."""
    levels = Image.fromarray(np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8))
    levels = np.asarray(levels.resize(photo.size, Image.Resampling.BILINEAR), np.float32) / 255
    share = (TINT[0] + TINT[1] * levels)[..., None]
    pixels = np.asarray(photo.convert("RGB"), np.float32)
    tinted = pixels * (1 - share) + colour_scale(levels) * share
    return Image.fromarray(np.round(tinted).astype(np.uint8))
