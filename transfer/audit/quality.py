"""Each photo's measures of quality, computed once per photo: the memo keeps them by the
photo's bytes (its SHA-256) and this code's version, so a photo added to the set costs its
own measures, not a new pass over every photo.

The measures are cleanvision's (https://github.com/cleanlab/cleanvision), computed here on a
thumbnail: the perceived brightness of the brightest 1% and the darkest 5% of the pixels, the
entropy of the grey levels, the short side over the long one, and the sharpness (how much the
grey levels change from pixel to pixel: the standard deviation of their Laplacian). Taking
cleanvision itself would bring pandas, matplotlib, scipy and imagehash and a pass over every
photo each run, for these few lines of NumPy.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from transfer.errors import PipelineError
from transfer.hashing import unchanged_bytes
from transfer.image_files import NO_PIXEL_LIMIT, ImageRejected, decode_rgb
from transfer.memo.code_version import code_version
from transfer.memo.store import Memo, MemoCount, key

MEMO_SPACE = "quality"
THUMBNAIL = 128  # pixels of the long side the measures are taken at: sharpness depends on it
LUMA_WEIGHTS = np.array([0.241, 0.691, 0.068])  # perceived brightness, as cleanvision has it


@dataclass(frozen=True)
class Measures:
    """A photo's measures: its shape, brightness, information and sharpness."""

    aspect_ratio: float  # the short side over the long one
    brightest: float  # perceived brightness (0 to 1) of the brightest 1% of the pixels
    darkest: float  # perceived brightness of the darkest 5%
    entropy: float  # of the grey levels, in bits (0 to 8)
    sharpness: float  # standard deviation of the grey levels' Laplacian, at THUMBNAIL px


def measure(data: bytes) -> Measures:
    """The measures of an image file's bytes (ImageRejected if they are not an image)."""
    image = decode_rgb(data, NO_PIXEL_LIMIT)
    width, height = image.size
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float64) / 255
    brightness = np.sqrt((pixels**2) @ LUMA_WEIGHTS)
    grey_image = image.convert("L")
    grey = np.asarray(grey_image, dtype=np.float64)
    laplacian = (
        4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    )
    return Measures(
        aspect_ratio=round(min(width, height) / max(width, height), 6),
        brightest=round(float(np.percentile(brightness, 99)), 6),
        darkest=round(float(np.percentile(brightness, 5)), 6),
        entropy=round(grey_image.entropy(), 6),
        sharpness=round(float(laplacian.std()) if laplacian.size else 0.0, 6),
    )


def _measure_file(file: Path, sha256: str) -> Measures:
    """The measures of a photo of data/raw, which must still have the bytes split saw."""
    data = unchanged_bytes(file, sha256)
    try:
        return measure(data)
    except ImageRejected as reason:  # download checked it: the file changed since
        raise PipelineError(f"{file}: {reason}; run `dvc repro`") from None


def photo_measures(
    photos: list[tuple[str, str]], raw_dir: Path, *, memo: Memo, count: MemoCount
) -> list[Measures]:
    """The measures of the (path, SHA-256) photos of raw_dir, in their order: each from the
    memo, or measured (on all cores) and stored. Adds to `count`."""
    version = code_version(__name__)
    keys = [key(sha256, version) for _, sha256 in photos]
    found: list[Measures | None] = []
    for entry_key in keys:
        payload = memo.get(MEMO_SPACE, entry_key)
        found.append(None if payload is None else Measures(**json.loads(payload)))
    missing = [index for index, measures in enumerate(found) if measures is None]
    with ThreadPoolExecutor() as pool:
        computed = pool.map(
            lambda index: _measure_file(raw_dir / photos[index][0], photos[index][1]), missing
        )
        for index, measures in zip(missing, computed, strict=True):
            memo.put(MEMO_SPACE, keys[index], json.dumps(asdict(measures)).encode())
            found[index] = measures
    count.reused += len(photos) - len(missing)
    count.computed += len(missing)
    return found
