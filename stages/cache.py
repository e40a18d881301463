"""Stage `cache`: resize every image of each split and write sharded TFRecords."""

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from stages.atomic import atomic_output, write_json
from stages.cli import PipelineError, run
from stages.images import ImageRejected, resize_rgb
from stages.params import load_params
from stages.paths import CACHE_DIR, META_FILE, RAW_DIR, SPLIT_DIR, SPLITS
from stages.split import hash_position, read_split
from stages.tfrecords import serialize_example, write_shards

log = logging.getLogger("cache")
ENCODE_CHUNK = 64  # images resized in parallel at a time; bounds memory
UNLIMITED_PIXELS = 2**62  # `download` already skipped the images over data.max_pixels


def resize_jpeg(data: bytes, size: int, quality: int) -> bytes:
    """Decode, resize to size x size and re-encode as JPEG (deterministic for the same input)."""
    image = resize_rgb(data, size, UNLIMITED_PIXELS)
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


def main() -> None:
    params = load_params()
    splits = {name: read_split(SPLIT_DIR, name) for name in SPLITS}
    classes = sorted({label for rows in splits.values() for _, label in rows})
    size = params.image_size
    meta = {"classes": classes, "image_size": size, "counts": {}, "shards": {}}
    with atomic_output(CACHE_DIR) as cache_dir:
        cache_dir.mkdir()
        for name, rows in splits.items():
            # A seeded order that mixes the classes, so that any run of records (a shuffle
            # buffer, the int8 calibration images) holds every class.
            rows = sorted(rows, key=lambda row: hash_position(row[0], params.seed))
            records = encode_records(rows, RAW_DIR, classes, size, params.image.jpeg_quality)
            progress = tqdm(records, total=len(rows), desc=f"caching {name}")
            shards = write_shards(progress, cache_dir, name, len(rows), params.image.shard_size)
            meta["counts"][name] = len(rows)
            meta["shards"][name] = shards
        write_json(cache_dir / META_FILE, meta)
    log.info("cached %s images at %dx%d", meta["counts"], size, size)


if __name__ == "__main__":
    run(main)
