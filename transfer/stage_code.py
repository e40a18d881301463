"""What code each stage runs, as DVC sees it: every module of this project that
`python -m stages.<name>` imports, with its SHA-256, in sha256sum's format (so
`sha256sum -c data/code_versions/<name>.sha256` checks it).

Stage `code_versions` writes one such file per stage, and each stage lists its own file as a
dep: DVC reruns a stage exactly when a module it runs changed, found by reading the imports
(memo/code_version.py, which the memo keys read too), never by a list kept by hand. One dep
per stage instead of one per module keeps dvc.lock short: DVC parses and rewrites all of it
after every stage it runs or restores, most of going back to params already run."""

from pathlib import Path

from transfer.atomic import atomic_output
from transfer.errors import PipelineError
from transfer.hashing import sha256_of
from transfer.memo.code_version import imported_modules, module_file

PACKAGES = ("stages", "transfer")
LISTING_SUFFIX = ".sha256"


def stage_files(stage: str, root: Path) -> list[Path]:
    """The files of this project (relative to `root`) that `python -m stages.<stage>` loads,
    sorted: the stage's module, the library's modules it imports, directly or not, and the
    packages' __init__.py on the way."""
    files = [module_file(name) for name in imported_modules(f"stages.{stage}", packages=PACKAGES)]
    if outside := [file for file in files if not file.is_relative_to(root)]:
        raise PipelineError(
            f"stages.{stage} would import {outside[0]}, outside {root}: run dvc in the "
            "project's root, with no other copy of it first on PYTHONPATH"
        )
    return sorted(file.relative_to(root) for file in files)


def code_listing(stage: str, root: Path) -> str:
    """`<sha256>  <path>` for each of the stage's files, one a line, as sha256sum writes it."""
    return "".join(
        f"{sha256_of(root / path)}  {path.as_posix()}\n" for path in stage_files(stage, root)
    )


def listing_file(directory: Path, stage: str) -> Path:
    """Where a stage's listing is: dvc.yaml names the same file as the stage's code dep."""
    return directory / f"{stage}{LISTING_SUFFIX}"


def write_code_listings(stages: list[str], directory: Path, root: Path) -> None:
    """The listing of each stage in `directory`, replaced as a whole."""
    with atomic_output(directory) as temporary:
        temporary.mkdir()
        for stage in stages:
            listing_file(temporary, stage).write_text(code_listing(stage, root))
