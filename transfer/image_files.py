"""Decide which files are usable images and decode them to RGB."""

from io import BytesIO

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
NO_PIXEL_LIMIT = 2**62  # for files `download` kept, which it checked against data.max_pixels


class ImageRejected(Exception):
    """A file that is not a usable image; the message is the reason shown in the report."""


def is_hidden(name: str) -> bool:
    """Dotfiles and the files operating systems leave behind (.DS_Store, Thumbs.db, __MACOSX)."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def has_image_extension(name: str) -> bool:
    """Whether the file name ends in an accepted image extension, in any letter case."""
    return any(name.lower().endswith(extension) for extension in IMAGE_EXTENSIONS)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow clips 16-bit values when converting to 8 bits; scale them instead.
        pixels = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "L")
    elif image.mode == "F":
        image = image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        # Transparent pixels become white, as an image viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def resize_rgb(data: bytes, size: int, max_pixels: int) -> Image.Image:
    """Decode to RGB and resize to size x size, as every image the model sees is."""
    return decode_rgb(data, max_pixels).resize((size, size), Image.Resampling.BILINEAR)


def declared_pixels(data: bytes) -> int:
    """Width x height from the image's header, without decoding it; 0 if it has none."""
    _use_only_the_max_pixels_param()
    try:
        with Image.open(BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not an image: decode_rgb says why
        return 0
    return width * height


def decode_rgb(data: bytes, max_pixels: int) -> Image.Image:
    """Fully decode an image to RGB with its EXIF orientation applied.

    Raises ImageRejected with a readable reason for empty, corrupt, truncated, unsupported or
    oversized (decompression bomb) data. The size is checked against `max_pixels` (the
    data.max_pixels param) from the header, before any pixel is decoded.
    """
    if not data:
        raise ImageRejected("empty file")
    _use_only_the_max_pixels_param()
    try:
        with Image.open(BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise ImageRejected(f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"too many pixels ({width}x{height} > data.max_pixels={max_pixels})"
                )
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
    except ImageRejected:
        raise
    except Image.UnidentifiedImageError:
        raise ImageRejected("not an image (unrecognised data)") from None
    except Exception as error:  # Pillow's decoders raise many types for corrupt data
        raise ImageRejected(f"corrupt or truncated ({error})") from None


def _use_only_the_max_pixels_param() -> None:
    # Pillow's own decompression-bomb limit (about 179 M pixels, checked when a file is
    # opened) would override a higher data.max_pixels and name itself in the reason; the
    # callers check the param instead.
    Image.MAX_IMAGE_PIXELS = None
