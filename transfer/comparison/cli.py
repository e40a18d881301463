"""The `compare` command: is an experiment better than another, or is it noise?

compare [A] [B] [--json]            B against A on the same test photos; A defaults to
                                    HEAD, B to the workspace (anything DVC names)
compare --splits 42 43 44 -S unfreeze=50 [-j N] [--json]
                                    the experiment against its baseline on each split,
                                    run as ordinary DVC experiments on DVC's queue
"""

import argparse
import json

from transfer.comparison.paired import Comparison, compare, comparison_text
from transfer.comparison.predictions import WORKSPACE, pair, read_predictions
from transfer.comparison.queue import run_experiments
from transfer.comparison.splits import run_names, splits_text, summary
from transfer.errors import PipelineError, run_main


def compare_revs(a: str, b: str) -> Comparison:
    """B against A, paired on their test photos."""
    paired = pair(read_predictions(a), read_predictions(b), names=(a, b))
    return compare(paired, names=(a, b))


def compare_splits(seeds: list[int], overrides: list[str], *, jobs: int) -> dict:
    """Each split's baseline (`split.seed` alone) and experiment (with `overrides`), run on
    the queue, compared split by split and over all splits."""
    # The baselines first: each experiment then restores its split's stages up to the
    # changed one from DVC's run cache, where its baseline left them.
    baselines = {run_names(seed, overrides)[0]: [f"split.seed={seed}"] for seed in seeds}
    experiments = {
        run_names(seed, overrides)[1]: [f"split.seed={seed}", *overrides] for seed in seeds
    }
    runs = {**baselines, **experiments}
    run_experiments(runs, jobs=jobs)
    comparisons = {}
    for seed in seeds:
        names = run_names(seed, overrides)
        paired = pair(read_predictions(names[0]), read_predictions(names[1]), names=names)
        comparisons[seed] = compare(paired, names=names)
    return summary(comparisons)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="compare",
        description="Compare two experiments' test predictions, paired photo by photo, or "
        "an experiment against its baseline over several splits.",
    )
    parser.add_argument("revs", nargs="*", help="A and B (default: HEAD workspace)")
    parser.add_argument("--splits", nargs="+", type=int, metavar="SEED", help="split seeds")
    parser.add_argument(
        "-S", "--set-param", action="append", default=[], help="the experiment's param=value"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.splits is None:
        if len(args.revs) > 2 or args.set_param:
            raise PipelineError("give at most two revisions, A and B (-S needs --splits)")
        a = args.revs[0] if args.revs else "HEAD"
        b = args.revs[1] if len(args.revs) == 2 else WORKSPACE
        comparison = compare_revs(a, b)
        as_json = json.dumps(comparison.as_dict(), indent=2)
        print(as_json if args.json else comparison_text(comparison))
        return
    if args.revs or not args.set_param or len(set(args.splits)) < 2 or args.jobs < 1:
        raise PipelineError(
            "--splits needs two or more split seeds, the experiment's -S param=value, a -j "
            "of at least 1, and no revisions"
        )
    result = compare_splits(list(dict.fromkeys(args.splits)), args.set_param, jobs=args.jobs)
    print(json.dumps(result, indent=2) if args.json else splits_text(result))


def cli() -> None:
    """The `compare` console script."""
    run_main(main)


if __name__ == "__main__":
    cli()
