"""Stage `audit`: on the cached features, near-duplicate images, likely label errors and
photos that don't belong to the set; on each photo's measures, the unusable ones."""

import logging

from transfer.atomic import atomic_output
from transfer.audit.findings import (
    Findings,
    find_duplicates,
    find_outliers,
    find_suspects,
    find_unusable,
    load_audited_images,
    write_findings,
)
from transfer.audit.quality import photo_measures
from transfer.errors import run_main
from transfer.manifests.cache_meta import read_cache_meta
from transfer.manifests.split_lists import read_split
from transfer.memo.store import MemoCount, open_memo
from transfer.params import load_params
from transfer.paths import AUDIT_DIR, CACHE_DIR, FEATURES_DIR, RAW_DIR, SPLIT_DIR, SPLITS

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    audit = params.audit
    classes = read_cache_meta(CACHE_DIR).classes
    images = load_audited_images(FEATURES_DIR, SPLITS)
    sha256_of = {p.path: p.sha256 for name in SPLITS for p in read_split(SPLIT_DIR, name)}
    sha256s = [sha256_of[path] for path in images.paths]
    memoized = MemoCount()
    photos = list(zip(images.paths, sha256s, strict=True))
    measures = photo_measures(photos, RAW_DIR, memo=open_memo(), count=memoized)
    label_check = find_suspects(images, classes, audit, seed=params.seed)
    findings = Findings(
        find_duplicates(images, audit.duplicate_similarity),
        label_check,
        find_outliers(
            images, classes, neighbours=audit.outlier_neighbours, fence=audit.outlier_fence
        ),
        find_unusable(
            images, classes, measures=measures, sha256s=sha256s, blur_fence=audit.blur_fence
        ),
    )
    with atomic_output(AUDIT_DIR) as out_dir:
        out_dir.mkdir()
        counts = write_findings(out_dir, RAW_DIR, findings, picture_items=audit.picture_items)
    log.info(
        "%d near-duplicate pairs (%d across splits); %d likely label errors listed, of %d "
        "flagged (%s; out-of-fold accuracy %.3f); %d outliers; %d unusable photos (%d "
        "measured, %d from the memo); see %s",
        counts["duplicate_pairs"],
        counts["cross_split_duplicate_pairs"],
        counts["suspected_label_errors"],
        label_check.flagged,
        audit.label_issues,
        label_check.out_of_fold_accuracy,
        counts["outliers"],
        counts["unusable_photos"],
        memoized.computed,
        memoized.reused,
        AUDIT_DIR,
    )


if __name__ == "__main__":
    run_main(main)
