"""Pictures of the audit's findings a person can scan: suspects, and duplicate pairs."""

from pathlib import Path

from PIL import Image

from transfer.audit.leaks import DuplicateRow
from transfer.contact_sheets import contact_sheet, open_tile

SUSPECT = (220, 120, 0)
DUPLICATE = (140, 40, 180)
LEAK = (220, 30, 30)


def _short(path: str, width: int = 24) -> str:
    """The path, its middle cut to fit a tile; the class folder stays readable."""
    if len(path) <= width:
        return path
    folder = path.split("/")[0][: width // 2]
    return f"{folder}/...{path[-(width - len(folder) - 4) :]}"


def draw_suspects(raw_dir: Path, suspects: list[tuple[str, str, str, float]]) -> Image.Image:
    """(path, label, suggested, score) rows: each image with its folder, the probability the
    out-of-fold model gives that class, and the class it suggests."""
    tiles = [
        (
            open_tile(raw_dir, path),
            f"filed: {label} ({1 - score:.0%})\nlooks like: {suggested}",
            SUSPECT,
        )
        for path, label, suggested, score in suspects
    ]
    return contact_sheet(tiles)


def draw_duplicates(raw_dir: Path, pairs: list[DuplicateRow]) -> Image.Image:
    """(image_a, image_b, similarity, split_a, split_b) rows: a pair per row, side by side;
    red when the pair crosses splits (a leak), purple within one."""
    tiles = []
    for image_a, image_b, similarity, split_a, split_b in pairs:
        colour = LEAK if split_a != split_b else DUPLICATE
        tiles.append(
            (open_tile(raw_dir, image_a), f"{split_a} {similarity:.3f}\n{_short(image_a)}", colour)
        )
        tiles.append((open_tile(raw_dir, image_b), f"{split_b}\n{_short(image_b)}", colour))
    return contact_sheet(tiles, columns=2)
