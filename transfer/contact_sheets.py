"""Contact sheets: image tiles with coloured outlines and captions, drawn with Pillow."""

import math
from pathlib import Path

from PIL import Image, ImageDraw

from transfer.image_files import NO_PIXEL_LIMIT, decode_rgb

TILE = 160
CAPTION = 34
Tile = tuple[Image.Image, str, tuple[int, int, int]]  # image, caption, outline colour


def open_tile(raw_dir: Path, path: str) -> Image.Image:
    """The image at `raw_dir / path` at tile size: only one photo is held at full size, and
    only while shrunk."""
    return decode_rgb((raw_dir / path).read_bytes(), NO_PIXEL_LIMIT).resize((TILE, TILE))


def contact_sheet(tiles: list[Tile], columns: int | None = None) -> Image.Image:
    """The tiles in rows of `columns` (default: a square grid), each outlined in its colour
    with its caption below. An empty list gives one blank tile."""
    columns = columns or max(1, math.ceil(math.sqrt(len(tiles))))
    rows = max(1, math.ceil(len(tiles) / columns))
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for slot, (image, caption, colour) in enumerate(tiles):
        left, top = (slot % columns) * TILE, (slot // columns) * (TILE + CAPTION)
        draw.rectangle([left, top, left + TILE - 1, top + TILE - 1], outline=colour, width=2)
        sheet.paste(image.resize((TILE - 4, TILE - 4)), (left + 2, top + 2))
        draw.multiline_text((left + 4, top + TILE + 2), caption, fill=colour)
    return sheet
