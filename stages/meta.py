"""The cache's meta.json, which `cache` writes beside the shards and later stages read."""

import json
from pathlib import Path

from stages.paths import META_FILE


def read_meta(cache_dir: Path) -> dict:
    """Class names, image size, per-split counts and shard names written by `cache`."""
    return json.loads((cache_dir / META_FILE).read_text())


def split_files(cache_dir: Path, meta: dict, split: str) -> list[Path]:
    """The shard files of one split."""
    return [cache_dir / name for name in meta["shards"][split]]
