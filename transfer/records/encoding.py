"""Photos to TFRecords: decode, resize, re-encode as JPEG and serialize, on all cores, each
resized photo kept in the memo by its content and the settings that shape it."""

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from io import BytesIO
from itertools import islice
from pathlib import Path

import PIL

from transfer.errors import PipelineError
from transfer.hashing import unchanged_bytes
from transfer.image_files import NO_PIXEL_LIMIT, ImageRejected, resize_rgb
from transfer.manifests.split_lists import Photo
from transfer.memo.code_version import code_version
from transfer.memo.store import Memo, MemoCount, key
from transfer.records.schema import serialize_example

ENCODE_CHUNK = 64  # images resized in parallel at a time; bounds memory
MEMO_SPACE = "images"


def resize_jpeg(data: bytes, size: int, quality: int) -> bytes:
    """Decode, resize to size x size and re-encode as JPEG (deterministic for the same input)."""
    image = resize_rgb(data, size, NO_PIXEL_LIMIT)
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _resize_file(file: Path, sha256: str, size: int, quality: int) -> bytes:
    """The resized JPEG of a photo of data/raw, which must still have the bytes split saw."""
    data = unchanged_bytes(file, sha256)
    try:
        return resize_jpeg(data, size, quality)
    except ImageRejected as reason:  # download checked it: the file changed since
        raise PipelineError(f"{file}: {reason}; run `dvc repro`") from None


def encode_records(
    photos: list[Photo],
    raw_dir: Path,
    classes: list[str],
    *,
    size: int,
    quality: int,
    memo: Memo,
    count: MemoCount,
) -> Iterator[bytes]:
    """Serialized examples of the photos, in their order: each resized photo from the memo,
    or resized on all cores a chunk at a time and stored. Adds to `count`."""
    label_of = {name: index for index, name in enumerate(classes)}
    version = code_version(__name__)
    pending = iter(photos)
    with ThreadPoolExecutor() as pool:
        while chunk := list(islice(pending, ENCODE_CHUNK)):
            keys = [key(p.sha256, size, quality, version, PIL.__version__) for p in chunk]
            # Read in this thread: a task per entry on the pool took twice as long, the reads
            # being that short (docs/benchmarks.md, "Figures behind the code's choices").
            jpegs = [memo.get(MEMO_SPACE, entry_key) for entry_key in keys]
            resizing: dict[int, Future] = {
                index: pool.submit(_resize_file, raw_dir / photo.path, photo.sha256, size, quality)
                for index, photo in enumerate(chunk)
                if jpegs[index] is None
            }
            for index, photo in enumerate(chunk):
                jpeg = jpegs[index]
                if jpeg is None:
                    jpeg = resizing[index].result()
                    memo.put(MEMO_SPACE, keys[index], jpeg)
                    count.computed += 1
                else:
                    count.reused += 1
                yield serialize_example(jpeg, label_of[photo.label], photo.path, photo.sha256)
