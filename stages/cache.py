"""Stage `cache`: resize every photo of each split and write sharded TFRecords."""

import logging

from tqdm import tqdm

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.manifests.cache_meta import CacheMeta, write_cache_meta
from transfer.manifests.split_lists import read_split
from transfer.memo.store import MemoCount, open_memo
from transfer.models.backbones import input_size
from transfer.params import load_params
from transfer.paths import CACHE_DIR, RAW_DIR, SPLIT_DIR, SPLITS
from transfer.records.encoding import encode_records
from transfer.records.schema import write_shards
from transfer.splitting import seeded_order
from transfer.timing import phase

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    splits = {name: read_split(SPLIT_DIR, name) for name in SPLITS}
    classes = sorted({photo.label for photos in splits.values() for photo in photos})
    size = input_size(params.image.size, params.backbone.name)
    memo, memoized = open_memo(), MemoCount()
    counts, shards = {}, {}
    with atomic_output(CACHE_DIR) as cache_dir:
        cache_dir.mkdir()
        for name, photos in splits.items():
            photos = seeded_order(photos, params.seed)
            records = encode_records(
                photos,
                RAW_DIR,
                classes,
                size=size,
                quality=params.image.jpeg_quality,
                memo=memo,
                count=memoized,
            )
            progress = tqdm(records, total=len(photos), desc=f"caching {name}")
            with phase(f"cache {name}"):
                shards[name] = write_shards(
                    progress, cache_dir, name, len(photos), params.image.shard_size
                )
            counts[name] = len(photos)
        write_cache_meta(
            cache_dir, CacheMeta(tuple(classes), size, params.image.jpeg_quality, counts, shards)
        )
    log.info(
        "cached %s images at %dx%d (%d resized, %d from the memo)",
        counts,
        size,
        size,
        memoized.computed,
        memoized.reused,
    )


if __name__ == "__main__":
    run_main(main)
