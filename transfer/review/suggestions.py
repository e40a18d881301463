"""Turn the audit's suspects into corrections: the `correct` command.

    correct --top 20                    the 20 most suspicious photos, to the class suggested
    correct rose/1.jpg tulip/2.jpg      these suspects, to the class suggested for each
    correct --label drop rose/3.jpg     these photos, to a class of your choice or `drop`

It writes the rows into corrections.csv (a row for a photo already there is replaced); the
next `dvc repro` applies them.
"""

import argparse
import csv
import sys

from transfer.errors import PipelineError, run_main
from transfer.manifests.corrections import update_corrections
from transfer.paths import CORRECTIONS_FILE, SUSPECTS_FILE


def read_suggestions() -> list[tuple[str, str]]:
    """(photo, suggested class) of the audit's suspects, most suspicious first."""
    if not SUSPECTS_FILE.is_file():
        raise PipelineError(f"{SUSPECTS_FILE} not found; run `dvc repro audit` first")
    with SUSPECTS_FILE.open(newline="") as file:
        return [(row["image"], row["suggested"]) for row in csv.DictReader(file)]


def chosen_rows(top: int | None, paths: list[str], label: str | None) -> dict[str, str]:
    """{photo: label} of the corrections the arguments ask for."""
    if label is not None:
        if not paths:
            raise PipelineError("--label needs the photos to give it to")
        return dict.fromkeys(paths, label)
    suggestions = read_suggestions()
    if top is not None:
        return dict(suggestions[:top])
    suggested = dict(suggestions)
    unknown = [path for path in paths if path not in suggested]
    if unknown:
        raise PipelineError(
            f"{unknown[0]} is not in {SUSPECTS_FILE}: give it a class with --label"
        )
    return {path: suggested[path] for path in paths}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="correct",
        description="Write corrections of labels into corrections.csv, from the audit's "
        "suspects or as given.",
    )
    parser.add_argument("paths", nargs="*", help="photos, as <class folder>/<file>")
    parser.add_argument("--top", type=int, help="the N most suspicious suspects")
    parser.add_argument("--label", help="the class to give the photos, or drop")
    args = parser.parse_args()
    if (args.top is None) == (not args.paths):
        raise PipelineError("give either --top N or the photos to correct")
    if args.top is not None and args.top < 1:
        raise PipelineError(f"--top must be at least 1, got {args.top}")
    rows = chosen_rows(args.top, args.paths, args.label)
    total = update_corrections(CORRECTIONS_FILE, rows)
    for path, label in rows.items():
        print(f"{path} -> {label}")
    print(
        f"{CORRECTIONS_FILE}: {len(rows)} rows written, {total} in all; `dvc repro` applies them",
        file=sys.stderr,
    )


def cli() -> None:
    """The `correct` console script."""
    run_main(main)


if __name__ == "__main__":
    cli()
