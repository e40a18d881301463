"""Benchmark: head-only and `unfreeze=50` over several splits, before and after, on one dataset.

    KERAS_HOME=/abs/path/to/keras python -m bench.finetune_splits /abs/path/to/dataset
        [--before CHECKOUT] [--splits 42 43 44] [--ordinary] [--set KEY=VALUE ...]
        [--work DIR]

For each split seed: this checkout's head-only run (`dvc exp run -S split.seed=S -S
unfreeze=0`) and its `dvc exp run -S split.seed=S -S unfreeze=50`, timed, with the export
checked on every test image; with --before, the same two runs of an earlier checkout, whose
`seed` then moves the split (it has no split.seed); with --ordinary, the first split's
fine-tune again with `finetune.cache_activations=false`. --set changes this checkout's params
for every run (to try another default). Prints Markdown tables: per split and the mean with its
range, each fine-tune's share of the head-only model's test errors it removes, and the
machine's raw Keras MobileNetV2 forward speed.
"""

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

import yaml

from bench.common import accuracy, in_own_process, machine, raw_forward_speed, repo_of_checkout
from bench.sandbox import PROJECT_ROOT, commit, make_pipeline_repo
from bench.timeline import run_timed
from transfer.paths import EXPORT_METRICS_FILE

UNFREEZE = 50


@dataclass(frozen=True)
class Run:
    """One experiment: wall seconds, test accuracy, the TFLite models' export figures."""

    seconds: float
    accuracy: float
    export: dict


def experiment(repo: Path, *settings: str) -> Run:
    timeline = run_timed(["exp", "run", *[arg for s in settings for arg in ("-S", s)]], repo)
    export = json.loads((repo / EXPORT_METRICS_FILE).read_text())
    return Run(timeline.wall, accuracy(repo), export)


def nested(settings: list[str]) -> dict:
    """`section.key=value` settings as {section: {key: value}} (or {key: value} at the top)."""
    changes: dict = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        *sections, key = name.split(".")
        target = changes
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = yaml.safe_load(value)
    return changes


def error_share(head: float, tuned: float) -> float:
    """The share of the head-only model's test errors the fine-tune removes."""
    return (tuned - head) / (1 - head) if head < 1 else 0.0


def summary(values: list[float], form: str = ".4f") -> str:
    return f"{mean(values):{form}} ({min(values):{form}}-{max(values):{form}})"


def table(name: str, runs: dict[int, tuple[Run, Run]]) -> list[str]:
    lines = [
        f"| {name} | head-only | `unfreeze={UNFREEZE}` | errors removed | fine-tune s |"
        " int8 agreement | int8 - float accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, (head, tuned) in runs.items():
        int8, float_ = tuned.export["tflite_int8"], tuned.export["tflite_float"]
        lines.append(
            f"| split {split} | {head.accuracy:.4f} | {tuned.accuracy:.4f} | "
            f"{error_share(head.accuracy, tuned.accuracy):.0%} | {tuned.seconds:.1f} | "
            f"{int8['agreement']:.4f} | {int8['accuracy'] - float_['accuracy']:+.4f} |"
        )
    heads = [head.accuracy for head, _ in runs.values()]
    tuned = [run.accuracy for _, run in runs.values()]
    shares = [error_share(h, t) for h, t in zip(heads, tuned, strict=True)]
    seconds = [run.seconds for _, run in runs.values()]
    agreements = [run.export["tflite_int8"]["agreement"] for _, run in runs.values()]
    lines.append(
        f"| mean (range) | {summary(heads)} | {summary(tuned)} | {summary(shares, '.0%')} | "
        f"{summary(seconds, '.1f')} | {summary(agreements)} | |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder of class subfolders of images")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version")
    parser.add_argument("--splits", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--ordinary", action="store_true", help="time the ordinary fine-tune")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    dataset = args.dataset.resolve()
    raw = in_own_process(raw_forward_speed)
    every_test_image = {"export": {"check_images": None}}

    before: dict[int, tuple[Run, Run]] = {}
    for split in args.splits if args.before else []:
        changes = {"data": {"source": str(dataset)}, "seed": split, **every_test_image}
        repo = repo_of_checkout(args.before.resolve(), work / f"before-{split}", changes)
        head = Run(run_timed(["repro"], repo).wall, accuracy(repo), {})
        commit(repo, "head only")
        before[split] = (head, experiment(repo, f"unfreeze={UNFREEZE}"))

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(dataset)
    params["export"]["check_images"] = None
    for section, values in nested(args.set).items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    repo = make_pipeline_repo(work / "after", params)
    run_timed(["repro"], repo)
    commit(repo, "baseline")
    after = {}
    for split in args.splits:
        # Every setting given every time: an experiment's params stay in the workspace.
        head = experiment(repo, f"split.seed={split}", "unfreeze=0")
        after[split] = (head, experiment(repo, f"split.seed={split}", f"unfreeze={UNFREEZE}"))

    print(f"\n{dataset.name}: {machine()}; raw Keras MobileNetV2 forward {raw:.1f} images/s")
    if args.set:
        print(f"this checkout with {' '.join(args.set)}")
    if before:
        print("\n".join(["", *table("before", before)]))
        ratio = after[args.splits[0]][1].seconds / before[args.splits[0]][1].seconds
        print(f"\nthe fine-tune's whole `dvc exp run`, after against before: {ratio:.2f}x")
    print("\n".join(["", *table("after", after)]))
    if args.ordinary:
        split = args.splits[0]
        ordinary = experiment(
            repo, f"split.seed={split}", f"unfreeze={UNFREEZE}", "finetune.cache_activations=false"
        )
        cached = after[split][1]
        print(
            f"\nsplit {split}, `finetune.cache_activations=false`: {ordinary.seconds:.1f} s, "
            f"test accuracy {ordinary.accuracy:.4f}; cached {cached.seconds:.1f} s: "
            f"{ordinary.seconds / cached.seconds:.2f}x faster"
        )


if __name__ == "__main__":
    main()
