"""`extract`'s work: the frozen backbone's features of every split, of the training images'
augmented views and of the mirrored test images, each row from the memo or computed, and
streamed into its .npy file so that memory does not grow with the dataset."""

import logging
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from transfer.atomic import write_json
from transfer.features import features_file, labels_file, mirrored_file, paths_file, views_file
from transfer.inference import NpyWriter
from transfer.manifests.cache_meta import CacheMeta
from transfer.memo.rows import fill_rows, row_keys, store_rows
from transfer.memo.store import Memo, MemoCount
from transfer.params import AugmentParams
from transfer.paths import SPLITS
from transfer.row_order import CLEAN, TrainingVariants
from transfer.tfdata import read_record_index
from transfer.timing import phase
from transfer.views import fixed_view, mirror, view_identity, view_transform

log = logging.getLogger(__name__)
MEMO_SPACE = "features"
MIRROR = "mirror"


def extract_features(
    forward: Any,
    width: int,
    version: str,
    meta: CacheMeta,
    cache_dir: Path,
    features_dir: Path,
    augment: AugmentParams,
    seed: int,
    batch_size: int,
    memo: Memo,
) -> MemoCount:
    """Write every feature file of `features_dir` (transfer.features) from the cache's
    records: `forward` maps a batch of pixels to `width` features, and `version`
    (memoized.forward_version) says what shapes them. Returns how many rows it computed and
    how many it took from the memo."""
    count = MemoCount()
    splits = {split: meta.split_files(cache_dir, split) for split in SPLITS}
    indexes = {split: read_record_index(files) for split, files in splits.items()}

    def fill(file: Path, rows: int, blocks: list[tuple[str, Any, list[str]]]) -> None:
        """Write `rows` rows to the .npy `file`: for each (split, transform, keys) block,
        one row per record of the split."""
        with closing(NpyWriter(file, (rows, width), np.float32)) as writer:
            start = 0
            for split, transform, keys in blocks:
                done = fill_rows(
                    forward, splits[split], transform, keys, [writer], start, memo, MEMO_SPACE,
                    batch_size,
                )  # fmt: skip
                count.add(done)
                start += len(keys)

    for split, index in indexes.items():
        log.info("extracting %s features of %d images", split, len(index.paths))
        with phase(f"extract {split}"):
            keys = row_keys(version, index, CLEAN)
            fill(features_file(features_dir, split), len(keys), [(split, None, keys)])
        np.save(labels_file(features_dir, split), index.labels)
        write_json(paths_file(features_dir, split), index.paths)
    variants = TrainingVariants(len(indexes["train"].paths), augment.views)
    if variants.views:
        log.info("extracting %d augmented views of %d images", variants.views, variants.images)
        transform = view_transform(augment, seed)

        def view_keys(split: str, view: int) -> list[str]:
            return row_keys(version, indexes[split], view_identity(augment, seed, view))

        blocks = [
            ("train", fixed_view(transform, view), view_keys("train", view))
            for view in variants.view_blocks
        ]
        with phase("extract views"):
            fill(views_file(features_dir), variants.view_rows, blocks)
        # The views of the other photos go to the memo alone: with another split (split.seed)
        # the photos that move into train find theirs there.
        with phase("extract views of val and test"):
            for split in ("val", "test"):
                for view in variants.view_blocks:
                    count.computed += store_rows(
                        forward, splits[split], fixed_view(transform, view),
                        view_keys(split, view), memo, MEMO_SPACE, batch_size,
                    )  # fmt: skip
    log.info("extracting the mirrored test images' features")
    with phase("extract mirrored"):
        keys = row_keys(version, indexes["test"], MIRROR)
        fill(mirrored_file(features_dir), len(keys), [("test", mirror, keys)])
    return count
