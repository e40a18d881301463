"""Stage `download`: copy the usable images of the source into data/raw/<class>/<image>, and
index them in data/raw.csv."""

import logging

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.ingest.archives import open_source
from transfer.ingest.importer import import_images, resolve_source, write_skipped_report
from transfer.manifests.raw_index import write_raw_index
from transfer.memo.store import open_memo
from transfer.params import load_params
from transfer.paths import DOWNLOADS_DIR, RAW_DIR, RAW_INDEX, SKIPPED_REPORT

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    source = resolve_source(params.data.source, params.data.sha256, DOWNLOADS_DIR)
    with open_source(source) as listing, atomic_output(RAW_DIR) as raw_dir:
        raw_dir.mkdir()
        max_file_bytes = params.data.max_file_mb << 20
        report = import_images(
            listing,
            raw_dir,
            params.data.max_pixels,
            max_file_bytes,
            open_memo(),
            labels=params.data.labels,
        )
    placed = {"/".join(p.path): (p.label, p.split) for p in report.placed}
    write_raw_index(RAW_DIR, RAW_INDEX, placed)
    write_skipped_report(SKIPPED_REPORT, report.skipped)
    log.info(report.summary(SKIPPED_REPORT))


if __name__ == "__main__":
    run_main(main)
