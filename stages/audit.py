"""Stage `audit`: find near-duplicate images and likely label errors on the cached features."""

import logging

from transfer.atomic import atomic_output
from transfer.audit.findings import (
    find_duplicates,
    find_suspects,
    load_audited_images,
    write_findings,
)
from transfer.errors import run_main
from transfer.manifests.cache_meta import read_cache_meta
from transfer.params import load_params
from transfer.paths import AUDIT_DIR, CACHE_DIR, FEATURES_DIR, RAW_DIR, SPLITS

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    classes = read_cache_meta(CACHE_DIR).classes
    images = load_audited_images(FEATURES_DIR, SPLITS)
    duplicates = find_duplicates(images, params.audit.duplicate_similarity)
    suspects, accuracy = find_suspects(
        images, classes, params.audit.folds, params.audit.l2, params.seed
    )
    with atomic_output(AUDIT_DIR) as out_dir:
        out_dir.mkdir()
        counts = write_findings(
            out_dir, RAW_DIR, duplicates, suspects, accuracy, params.audit.picture_items
        )
    log.info(
        "%d near-duplicate pairs (%d across splits); %d images whose out-of-fold prediction "
        "(accuracy %.3f) is another class; see %s",
        counts["duplicate_pairs"],
        counts["cross_split_duplicate_pairs"],
        counts["suspected_label_errors"],
        accuracy,
        AUDIT_DIR,
    )


if __name__ == "__main__":
    run_main(main)
