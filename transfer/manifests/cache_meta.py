"""The cache's meta.json: what `cache` wrote beside the shards, as a typed object."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from transfer.atomic import write_json
from transfer.paths import META_FILE


@dataclass(frozen=True)
class CacheMeta:
    """Class names (index = label), the image side and the JPEG quality the images are stored
    at, and each split's image count and shards."""

    classes: tuple[str, ...]
    image_size: int
    jpeg_quality: int
    counts: dict[str, int]
    shards: dict[str, list[str]]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def split_files(self, cache_dir: Path, split: str) -> list[Path]:
        """The shard files of one split."""
        return [cache_dir / name for name in self.shards[split]]


def write_cache_meta(cache_dir: Path, meta: CacheMeta) -> None:
    write_json(cache_dir / META_FILE, asdict(meta))


def read_cache_meta(cache_dir: Path) -> CacheMeta:
    raw = json.loads((cache_dir / META_FILE).read_text())
    return CacheMeta(
        classes=tuple(raw["classes"]),
        image_size=raw["image_size"],
        jpeg_quality=raw["jpeg_quality"],
        counts=raw["counts"],
        shards=raw["shards"],
    )
