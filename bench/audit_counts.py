"""Benchmark: what the audit flags on photo sets, as they are and with planted problems.

    KERAS_HOME=/abs/path/to/keras python -m bench.audit_counts /abs/set_a /abs/set_b [...]
        [--work DIR] [--memo DIR] [--runs 5] [--before CHECKOUT]

For each set, a copy of it (hard links, under --work) with 20 photos moved to another class
folder, 10 photos of the next set on the command line dropped into its class folders and 10
photos made unusable (5 near-black, 5 blurred with a Gaussian radius of 8), each written as a
new file, so the set itself is never touched. A pipeline repo of this checkout at the default
params runs `dvc repro audit` on each set and each copy (on --memo, shared between them);
then the audit's files are counted: the photos each lists, as a share of the set, and of the
planted photos, the moved ones among the suspects, the foreign ones among the outliers and
the unusable ones in quality.csv.

--rules also counts, for each repo, what every audit.label_issues rule would flag, and list
under audit.max_suspects (on the same out-of-fold probabilities). A --work that holds the
copies and repos of an earlier run is reused: nothing is planted or built again, and
`dvc repro audit` brings them up to date.

--runs N then times `python -m stages.audit` N times in the first set's repo, with the memo
(the photos' measures in it) and with an empty one; with --before, alternately with a repo of
an earlier checkout (a folder holding its files, e.g. from `git archive`) on the same set.
Prints Markdown tables and the machine's raw Keras MobileNetV2 forward speed.
"""

import argparse
import csv
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from statistics import median

import yaml
from PIL import Image, ImageEnhance, ImageFilter

from bench.common import in_own_process, machine, raw_forward_speed, repo_of_checkout, timed
from bench.sandbox import PROJECT_ROOT, make_pipeline_repo
from transfer.audit.findings import audit_probabilities, listed, load_audited_images
from transfer.audit.label_errors import label_issues
from transfer.manifests.cache_meta import read_cache_meta
from transfer.manifests.raw_index import list_images, read_raw_index
from transfer.memo.store import MEMO_ENV
from transfer.params import LABEL_RULES, PARAMS_FILE, load_params
from transfer.paths import (
    AUDIT_DIR,
    CACHE_DIR,
    FEATURES_DIR,
    OUTLIERS_FILE,
    QUALITY_FILE,
    RAW_INDEX,
    SPLITS,
    SUSPECTS_FILE,
)

MOVED, FOREIGN, DARK, BLURRED = 20, 10, 5, 5
BLUR_RADIUS = 8
DARKNESS = 0.05  # the brightness kept: a near-black photo
FILES = {"suspects": SUSPECTS_FILE, "outliers": OUTLIERS_FILE, "quality": QUALITY_FILE}


def _rewrite(copy: Path, photo: str, change: str) -> None:
    """Replace a photo of the copy by a new file (not through the hard link) made unusable."""
    image = Image.open(copy / photo).convert("RGB")
    if change == "dark":
        image = ImageEnhance.Brightness(image).enhance(DARKNESS)
    else:
        image = image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    (copy / photo).unlink()
    image.save(copy / photo, format="JPEG", quality=95)


def plant(dataset: Path, other: Path, copy: Path) -> dict[str, list[str]]:
    """The corrupted copy of the set at `copy`; returns the planted photos' paths there."""
    record = copy.with_name(f"{copy.name}.json")
    if record.is_file():  # planted by an earlier run
        return json.loads(record.read_text())
    copy.parent.mkdir(parents=True, exist_ok=True)
    timed(["cp", "-al", str(dataset), str(copy)], copy.parent)
    rng = random.Random(0)
    photos = rng.sample(list_images(dataset), MOVED + DARK + BLURRED)
    classes = sorted(path.name for path in dataset.iterdir() if path.is_dir())
    moved = []
    for photo in photos[:MOVED]:
        label, name = photo.split("/")
        target = f"{classes[(classes.index(label) + 1) % len(classes)]}/{name}"
        os.rename(copy / photo, copy / target)
        moved.append(target)
    unusable = photos[MOVED:]
    for number, photo in enumerate(unusable):
        _rewrite(copy, photo, "dark" if number < DARK else "blur")
    foreign = []
    for number, photo in enumerate(rng.sample(list_images(other), FOREIGN)):
        target = f"{classes[number % len(classes)]}/foreign_{Path(photo).name}"
        os.link(other / photo, copy / target)
        foreign.append(target)
    planted = {"suspects": moved, "outliers": foreign, "quality": unusable}
    record.write_text(json.dumps(planted, indent=1))
    return planted


def photos_listed(repo: Path) -> dict[str, set[str]]:
    """The photos each of the audit's files lists."""
    found = {}
    for name, file in FILES.items():
        with (repo / file).open(newline="") as handle:
            found[name] = {row["image"] for row in csv.DictReader(handle)}
    return found


def audited_repo(dataset: Path, repo: Path, memo: Path) -> Path:
    """A pipeline repo of this checkout on the set, run to `audit`."""
    if not repo.is_dir():
        params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
        params["data"]["source"] = str(dataset)
        make_pipeline_repo(repo, params)
    timed([sys.executable, "-m", "dvc", "repro", "audit"], repo, {MEMO_ENV: str(memo)})
    return repo


def count_rows(repo: Path, planted: dict[str, list[str]] | None) -> list[str]:
    """Markdown cells: each file's rows (share of the photos), and the planted ones caught."""
    photos = len(read_raw_index(repo / RAW_INDEX))
    metrics = json.loads((repo / AUDIT_DIR / "metrics.json").read_text())
    cells = [str(photos), f"{metrics['out_of_fold_accuracy']:.3f}"]
    for name, found in photos_listed(repo).items():
        cell = f"{len(found)} ({len(found) / photos:.1%})"
        if planted is not None:
            cell += f", {len(found & set(planted[name]))}/{len(planted[name])} planted"
        cells.append(cell)
    return cells


def rule_rows(repo: Path, planted: dict[str, list[str]] | None) -> list[str]:
    """Markdown rows: what each audit.label_issues rule lists in the repo, and of the moved
    photos, how many; on the audit's own out-of-fold probabilities, computed once."""
    images = load_audited_images(repo / FEATURES_DIR, SPLITS)
    everything = load_params(repo / PARAMS_FILE)
    params = everything.audit
    n_classes = len(read_cache_meta(repo / CACHE_DIR).classes)
    probabilities = audit_probabilities(images, n_classes, params, seed=everything.seed)
    rows = []
    for rule in LABEL_RULES:
        issues = label_issues(probabilities, images.labels, rule)
        flagged = [images.paths[i] for i, _, _ in issues]
        cells = []
        for found in (flagged, listed(flagged, params.max_suspects, len(images.paths))):
            cell = f"{len(found)} ({len(found) / len(images.paths):.1%})"
            if planted is not None:
                cell += f", {len(set(found) & set(planted['suspects']))}/{MOVED} moved"
            cells.append(cell)
        rows.append(f"| {repo.name.removeprefix('repo-')} | {rule} | " + " | ".join(cells) + " |")
    return rows


def time_audit(repos: dict[str, Path], memo: Path, runs: int) -> dict[str, list[float]]:
    """Seconds of `python -m stages.audit` in each repo, alternately, with the memo and with
    an empty one (each run's own, so nothing is ever reused)."""
    seconds: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, repo in repos.items():
            command = [sys.executable, "-m", "stages.audit"]
            warm = timed(command, repo, {MEMO_ENV: str(memo)})
            seconds.setdefault(f"{name}, memo", []).append(warm)
            with tempfile.TemporaryDirectory() as empty:
                cold = timed(command, repo, {MEMO_ENV: empty})
            seconds.setdefault(f"{name}, empty memo", []).append(cold)
    return seconds


def audit_sets(
    datasets: list[Path], work: Path, memo: Path, *, rules: bool
) -> tuple[list[str], list[str], Path]:
    """Each set and its planted copy audited: Markdown rows of counts and (with `rules`) of
    every label rule's, and the first set's repo."""
    rows, per_rule, repos = [], [], []
    for number, dataset in enumerate(datasets):
        other = datasets[(number + 1) % len(datasets)]
        copy = work / f"{dataset.name}-planted"
        planted = plant(dataset, other, copy)
        for source, name, truth in ((dataset, dataset.name, None), (copy, copy.name, planted)):
            repo = audited_repo(source, work / f"repo-{name}", memo)
            rows.append(f"| {name} | " + " | ".join(count_rows(repo, truth)) + " |")
            per_rule += rule_rows(repo, truth) if rules else []
            repos.append(repo)
    return rows, per_rule, repos[0]


def print_timings(repos: dict[str, Path], memo: Path, runs: int, *, dataset: Path) -> None:
    print(f"\n`python -m stages.audit` on {dataset.name}, {runs} runs each:\n")
    print("| repo | median s | runs (s) |\n|---|---|---|")
    for name, seconds in time_audit(repos, memo, runs).items():
        times = ", ".join(f"{s:.1f}" for s in seconds)
        print(f"| {name} | {median(seconds):.1f} | {times} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path, nargs="+", help="photo sets, class folders")
    parser.add_argument("--work", type=Path, help="where the copies and repos go (default: tmp)")
    parser.add_argument("--memo", type=Path, help="the memo the repos share (default: in work)")
    parser.add_argument("--runs", type=int, default=0, help="timed audits (default 0)")
    parser.add_argument("--rules", action="store_true", help="count every label rule's")
    parser.add_argument("--before", type=Path, help="an earlier checkout to time beside")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="audit_counts_"))
    memo = args.memo or work / "memo"
    rows, per_rule, first = audit_sets(args.datasets, work, memo, rules=args.rules)
    print(f"\n{machine()}; work in {work}\n")
    print("| set | photos | out-of-fold accuracy | suspects | outliers | quality |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if per_rule:
        header = "| set | audit.label_issues | flagged | listed (audit.max_suspects) |"
        print(f"\n{header}\n|---|---|---|---|\n" + "\n".join(per_rule))
    if args.runs:
        repos = {"this checkout": first}
        if args.before:
            source = {"data": {"source": str(args.datasets[0])}}
            before = repo_of_checkout(args.before, work / "repo-before", source)
            repos["before"] = audited_repo(args.datasets[0], before, memo)
        print_timings(repos, memo, args.runs, dataset=args.datasets[0])
    print(f"\nraw MobileNetV2 forward: {in_own_process(raw_forward_speed):.1f} images/s")


if __name__ == "__main__":
    main()
