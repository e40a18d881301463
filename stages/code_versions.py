"""Stage `code_versions`: for each other stage, the modules of this project it runs and their
SHA-256 (data/code_versions/<stage>.sha256), the one code dep each stage lists in dvc.yaml."""

import logging
from pathlib import Path

from transfer.errors import run_main
from transfer.paths import CODE_VERSIONS_DIR, STAGES_DIR
from transfer.stage_code import write_code_listings

log = logging.getLogger(__name__)


def main() -> None:
    this_stage = Path(__file__).stem
    stages = sorted(
        path.stem for path in STAGES_DIR.glob("*.py") if path.stem not in ("__init__", this_stage)
    )
    write_code_listings(stages, CODE_VERSIONS_DIR, Path.cwd())
    log.info("the code of %d stages listed in %s", len(stages), CODE_VERSIONS_DIR)


if __name__ == "__main__":
    run_main(main)
