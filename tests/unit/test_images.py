"""Which files are usable images, and how they become RGB."""

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from transfer.image_files import ImageRejected, decode_rgb, has_image_extension, is_hidden

MAX_PIXELS = 10_000


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("format", ["JPEG", "PNG", "BMP", "GIF", "WEBP"])
def test_every_accepted_format_decodes_to_rgb(format: str) -> None:
    image = decode_rgb(encode(Image.new("RGB", (20, 10), (10, 200, 30)), format), MAX_PIXELS)
    assert image.mode == "RGB" and image.size == (20, 10)


@pytest.mark.parametrize(
    "source",
    [
        Image.new("L", (8, 8), 128),
        Image.new("P", (8, 8), 3),
        Image.new("CMYK", (8, 8), (0, 255, 0, 0)),
        Image.new("RGBA", (8, 8), (255, 0, 0, 128)),
        Image.new("LA", (8, 8), (50, 0)),
    ],
    ids=lambda image: image.mode,
)
def test_other_modes_become_rgb(source: Image.Image) -> None:
    format = "JPEG" if source.mode == "CMYK" else "PNG"
    assert decode_rgb(encode(source, format), MAX_PIXELS).mode == "RGB"


def test_transparent_pixels_become_white() -> None:
    image = decode_rgb(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"), MAX_PIXELS)
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    pixels = np.full((4, 4), 32768, dtype=np.uint16)  # half of the 16-bit range
    data = encode(Image.fromarray(pixels), "PNG")
    assert decode_rgb(data, MAX_PIXELS).getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    data = encode(Image.new("RGB", (30, 10), "red"), "JPEG", exif=exif)
    assert decode_rgb(data, MAX_PIXELS).size == (10, 30)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not a picture", "not an image (unrecognised data)"),
        (
            encode(Image.new("RGB", (101, 100)), "PNG"),
            "too many pixels (101x100 > data.max_pixels=10000)",
        ),
    ],
)
def test_unusable_data_is_rejected_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as error:
        decode_rgb(data, MAX_PIXELS)
    assert str(error.value) == reason


def test_truncated_jpeg_is_rejected() -> None:
    data = encode(Image.effect_noise((60, 60), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        decode_rgb(data[: len(data) // 2], MAX_PIXELS)


def test_names() -> None:
    assert has_image_extension("A.JPG") and has_image_extension("b.WebP")
    assert not has_image_extension("notes.txt")
    assert is_hidden(".DS_Store") and is_hidden("Thumbs.db") and is_hidden("__MACOSX")
    assert not is_hidden("tulip.jpg")
