"""Stage `cache`: resize every image of each split and write sharded TFRecords."""

import logging

from tqdm import tqdm

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.models.backbones import input_size
from transfer.params import load_params
from transfer.paths import CACHE_DIR, RAW_DIR, SPLIT_DIR, SPLITS
from transfer.records.cache_meta import CacheMeta, write_cache_meta
from transfer.records.encoding import encode_records
from transfer.records.schema import write_shards
from transfer.splitting import read_split, seeded_order

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    splits = {name: read_split(SPLIT_DIR, name) for name in SPLITS}
    classes = sorted({label for rows in splits.values() for _, label in rows})
    size = input_size(params.image.size, params.backbone.name)
    counts, shards = {}, {}
    with atomic_output(CACHE_DIR) as cache_dir:
        cache_dir.mkdir()
        for name, rows in splits.items():
            rows = seeded_order(rows, params.seed)
            records = encode_records(rows, RAW_DIR, classes, size, params.image.jpeg_quality)
            progress = tqdm(records, total=len(rows), desc=f"caching {name}")
            shards[name] = write_shards(
                progress, cache_dir, name, len(rows), params.image.shard_size
            )
            counts[name] = len(rows)
        write_cache_meta(cache_dir, CacheMeta(tuple(classes), size, counts, shards))
    log.info("cached %s images at %dx%d", counts, size, size)


if __name__ == "__main__":
    run_main(main)
