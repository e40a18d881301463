"""`extract`'s work: the frozen backbone's features of every split, of the training images'
augmented views and of the mirrored test images, each row from the memo or computed, and
streamed into its .npy file so that memory does not grow with the dataset."""

import logging
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transfer.atomic import write_json
from transfer.features import features_file, labels_file, mirrored_file, paths_file, views_file
from transfer.frozen.rows import fill_rows, row_keys, store_rows
from transfer.inference import NpyWriter
from transfer.manifests.cache_meta import CacheMeta
from transfer.memo.store import Memo, MemoCount
from transfer.paths import SPLITS
from transfer.row_order import CLEAN, TrainingVariants
from transfer.tfdata import RecordIndex, read_record_index
from transfer.timing import phase
from transfer.views import Block, Views, mirror

log = logging.getLogger(__name__)
MEMO_SPACE = "features"
MIRROR = "mirror"


@dataclass(frozen=True)
class FrozenForward:
    """A frozen forward pass as `extract` runs it: `call` maps a batch of pixels to `width`
    features; `version` (frozen.version) says what shapes them; `batch_size` images
    a call."""

    call: Any
    width: int
    version: str
    batch_size: int


def fill_file(
    file: Path,
    forward: FrozenForward,
    blocks: list[tuple[list[Path], Block]],
    memo: Memo,
) -> MemoCount:
    """Write one .npy `file`: for each (TFRecord files, block), one row per record of the
    files, through the block's transform, from the memo or computed."""
    count = MemoCount()
    rows = sum(len(keys) for _, (_, keys) in blocks)
    with closing(NpyWriter(file, (rows, forward.width), np.float32)) as writer:
        start = 0
        for files, (transform, keys) in blocks:
            done = fill_rows(
                forward.call, files, (transform, keys), outputs=[writer], start=start,
                memo=memo, namespace=MEMO_SPACE, batch_size=forward.batch_size,
            )  # fmt: skip
            count.add(done)
            start += len(keys)
    return count


def extract_views(
    forward: FrozenForward,
    splits: dict[str, tuple[list[Path], RecordIndex]],
    views: Views,
    features_dir: Path,
    memo: Memo,
) -> MemoCount:
    """The training images' augmented views into their file, and those of the val and test
    images into the memo alone: with another split (split.seed) the photos that move into
    train find theirs there."""
    variants = TrainingVariants(len(splits["train"][1].paths), views.count)
    log.info("extracting %d augmented views of %d images", variants.views, variants.images)
    files, index = splits["train"]
    blocks = [(files, views.block(forward.version, index, view)) for view in variants.view_blocks]
    with phase("extract views"):
        count = fill_file(views_file(features_dir), forward, blocks, memo)
    with phase("extract views of val and test"):
        for split in ("val", "test"):
            files, index = splits[split]
            for view in variants.view_blocks:
                block = views.block(forward.version, index, view)
                count.computed += store_rows(
                    forward.call, files, block, memo=memo, namespace=MEMO_SPACE,
                    batch_size=forward.batch_size,
                )  # fmt: skip
    return count


def extract_features(
    forward: FrozenForward,
    meta: CacheMeta,
    cache_dir: Path,
    *,
    features_dir: Path,
    views: Views,
    memo: Memo,
) -> MemoCount:
    """Write every feature file of `features_dir` (transfer.features) from the cache's
    records. Returns how many rows it computed and how many it took from the memo."""
    count = MemoCount()
    splits = {}
    for split in SPLITS:
        files = meta.split_files(cache_dir, split)
        splits[split] = files, read_record_index(files)
    for split, (files, index) in splits.items():
        log.info("extracting %s features of %d images", split, len(index.paths))
        with phase(f"extract {split}"):
            block = None, row_keys(forward.version, index, CLEAN)
            file = features_file(features_dir, split)
            count.add(fill_file(file, forward, [(files, block)], memo))
        np.save(labels_file(features_dir, split), index.labels)
        write_json(paths_file(features_dir, split), index.paths)
    if views.count:
        count.add(extract_views(forward, splits, views, features_dir, memo))
    log.info("extracting the mirrored test images' features")
    with phase("extract mirrored"):
        files, index = splits["test"]
        block = mirror, row_keys(forward.version, index, MIRROR)
        count.add(fill_file(mirrored_file(features_dir), forward, [(files, block)], memo))
    return count
