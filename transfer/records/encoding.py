"""Images to TFRecords: decode, resize, re-encode as JPEG and serialize, on all cores."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from itertools import islice
from pathlib import Path

from transfer.errors import PipelineError
from transfer.ingest.image_files import NO_PIXEL_LIMIT, ImageRejected, resize_rgb
from transfer.records.schema import serialize_example

ENCODE_CHUNK = 64  # images resized in parallel at a time; bounds memory


def resize_jpeg(data: bytes, size: int, quality: int) -> bytes:
    """Decode, resize to size x size and re-encode as JPEG (deterministic for the same input)."""
    image = resize_rgb(data, size, NO_PIXEL_LIMIT)
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_records(
    rows: list[tuple[str, str]], raw_dir: Path, classes: list[str], size: int, quality: int
) -> Iterator[bytes]:
    """Serialized examples in the order of `rows`, resized on all cores a chunk at a time."""
    label_of = {name: index for index, name in enumerate(classes)}
    pending = iter(rows)
    with ThreadPoolExecutor() as pool:
        while chunk := list(islice(pending, ENCODE_CHUNK)):
            contents = [(raw_dir / path).read_bytes() for path, _ in chunk]
            encoded = pool.map(resize_jpeg, contents, [size] * len(chunk), [quality] * len(chunk))
            for path, label in chunk:
                try:
                    jpeg = next(encoded)
                except ImageRejected as reason:  # download checked it: the file changed since
                    raise PipelineError(
                        f"{raw_dir / path}: {reason}; run `dvc repro -f download`"
                    ) from None
                yield serialize_example(jpeg, label_of[label], path)
