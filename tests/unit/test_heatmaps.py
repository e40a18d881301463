"""A heat map's picture and the predictions picture's tinted tiles (Pillow and NumPy only)."""

from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import write_image
from transfer.contact_sheets import CAPTION, TILE, open_tile
from transfer.evaluation.grid import draw_grid
from transfer.heatmaps.overlay import overlay


def test_the_tint_is_red_where_the_map_peaks_and_blue_where_it_is_cold() -> None:
    photo = Image.new("RGB", (60, 40), (128, 128, 128))  # not square: the map is stretched
    heat = np.array([[1.0, 0.0], [0.0, 0.0]])
    tinted = np.asarray(overlay(photo, heat), np.int32)
    assert tinted.shape == (40, 60, 3)
    hot, cold = tinted[0, 0], tinted[-1, -1]
    assert hot[0] > 128 + 40 and hot[2] < 128 - 40  # red where the map is 1
    assert cold[2] > cold[0] and cold[0] < 128  # blue where it is 0, the photo still showing
    assert cold[0] > 100


def test_float_noise_in_the_map_changes_no_pixel() -> None:
    photo = Image.new("RGB", (32, 32), (90, 160, 30))
    heat = np.random.default_rng(0).uniform(0, 1, (7, 7))
    noisy = heat + np.random.default_rng(1).uniform(-1e-7, 1e-7, heat.shape)
    assert overlay(photo, heat).tobytes() == overlay(photo, noisy).tobytes()


def test_only_the_tiles_given_a_map_are_tinted(tmp_path: Path) -> None:
    for index, colour in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200))):
        write_image(tmp_path / f"c/{index}.jpg", colour, index)
    paths = [f"c/{index}.jpg" for index in range(3)]
    grid = draw_grid(
        tmp_path,
        paths,
        np.array([0, 1, 2]),
        predicted=np.array([0, 2, 2]),  # the second is wrong: it comes first
        confidence=np.array([0.9, 0.6, 0.8]),
        classes=["a", "b", "c"],
        count=3,
        heat_maps={1: np.ones((2, 2))},
    )
    for slot, index in enumerate((1, 0, 2)):
        left, top = (slot % 2) * TILE, (slot // 2) * (TILE + CAPTION)
        tile = np.asarray(grid.crop((left + 2, top + 2, left + TILE - 2, top + TILE - 2)), float)
        plain = np.asarray(open_tile(tmp_path, paths[index]).resize((TILE - 4, TILE - 4)), float)
        assert (np.abs(tile - plain).mean() > 20) == (index == 1), index
