"""What the heat maps cost (issue 39): `evaluate` with them, and the review page's.

    python -m bench.heatmaps REPO [--old CHECKOUT]

REPO is a pipeline repo after `dvc repro`; its stages/ and transfer/ are replaced by this
checkout's (and by CHECKOUT's, in turn, with --old: `evaluate` as it was, timed alternately
with today's), so run it on a copy. Prints, for three rounds, `evaluate`'s wall time, peak
memory and heat-maps phase, and whether its picture came out byte-identical; where that
phase's time goes (TensorFlow's import, the classifier's load, the maps) for three batch
sizes, with their peak memory; then, with the
review server on REPO in a fresh process, over HTTP as the page asks: the item list, the first
heat map (TensorFlow's import and the classifier's load), ten more, and the same ten again;
and the raw MobileNetV2 forward speed.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import in_own_process, machine, print_table, raw_forward_speed
from bench.sandbox import PROJECT_ROOT, run_command, run_measured
from transfer.paths import GRID_FILE
from transfer.timing import TIMINGS_ENV

ROUNDS = 3
CODE = ("stages", "transfer")


def use_code(checkout: Path, repo: Path) -> None:
    """REPO's code replaced by the checkout's."""
    for name in CODE:
        shutil.rmtree(repo / name, ignore_errors=True)
        shutil.copytree(checkout / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))


def evaluate_once(repo: Path, scratch: Path) -> tuple[float, float, float, str]:
    """(seconds, peak MiB, heat-maps phase seconds, the picture's SHA-256) of one evaluate."""
    timings = scratch / "timings.jsonl"
    timings.unlink(missing_ok=True)
    start = time.perf_counter()
    result, peak = run_measured(
        [sys.executable, "-m", "stages.evaluate"], repo, {TIMINGS_ENV: str(timings)}
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"evaluate failed:\n{result.stderr[-3000:]}")
    phases = [json.loads(line) for line in timings.read_text().splitlines()]
    heat = sum(phase["seconds"] for phase in phases if phase["phase"] == "heat maps")
    return seconds, peak, heat, hashlib.sha256((repo / GRID_FILE).read_bytes()).hexdigest()


# The review server's answers, timed as the page asks for them, in a fresh interpreter: the
# benchmark's own has TensorFlow loaded already (bench.common imports the model code).
REVIEW_TIMINGS = """
import json, sys, threading, time, urllib.parse, urllib.request
from pathlib import Path
from transfer.review.items import read_items
from transfer.review.server import ReviewServer
server = ReviewServer(Path(sys.argv[1]), 0, "bench")
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"
def get(path, **query):
    start = time.perf_counter()
    url = f"{base}{path}?{urllib.parse.urlencode({'token': 'bench', **query})}"
    with urllib.request.urlopen(url) as answer:
        answer.read()
    return time.perf_counter() - start
items = get("/api/items")
loaded = "tensorflow" in sys.modules
photos = [(item.id, item.photos[0]) for item in read_items(server.audit_dir)[:11]]
first = get("/api/heatmap", item=photos[0][0], photo=photos[0][1])
more = [get("/api/heatmap", item=i, photo=p) for i, p in photos[1:]]
again = [get("/api/heatmap", item=i, photo=p) for i, p in photos[1:]]
print(json.dumps({"items": items, "loaded": loaded, "first": first, "more": more, "again": again}))
"""


def review_timings(repo: Path) -> list[tuple[str, str]]:
    """REVIEW_TIMINGS's figures, as rows."""
    result = run_command([sys.executable, "-c", REVIEW_TIMINGS, str(repo)], PROJECT_ROOT)
    if result.returncode:
        sys.exit(f"the review's timings failed:\n{result.stderr[-3000:]}")
    times = json.loads(result.stdout.splitlines()[-1])
    more, again = sum(times["more"]), sum(times["again"])
    loaded = "loaded" if times["loaded"] else "not loaded"
    return [
        ("review: the item list", f"{times['items']:.2f} s (TensorFlow {loaded} after it)"),
        ("review: the first heat map", f"{times['first']:.2f} s (TensorFlow, the classifier)"),
        ("review: the next ten", f"{more:.2f} s ({more / len(times['more']):.3f} s each)"),
        ("review: the same ten again", f"{again:.3f} s (from memory)"),
    ]


# Where evaluate's heat-map time goes, in a fresh process in REPO: TensorFlow's import, the
# classifier's load, and 25 test photos' maps in batches of argv[1].
BREAKDOWN = """
import json, sys, time
start = time.perf_counter()
import tensorflow
imported = time.perf_counter()
from transfer.heatmaps import gradcam
from transfer.features import load_paths
from transfer.models.head_only import classifier_files
from transfer.paths import EXTRACTOR_FILE, FEATURES_DIR, FINETUNED_DIR, HEAD_FILE, RAW_DIR
model = gradcam.load_gradcam(classifier_files(FINETUNED_DIR, EXTRACTOR_FILE, HEAD_FILE))
loaded = time.perf_counter()
gradcam.BATCH_SIZE = int(sys.argv[1])
files = [RAW_DIR / path for path in load_paths(FEATURES_DIR, "test")[:25]]
gradcam.explain_photos(model, files, [None] * len(files))
print(json.dumps([imported - start, loaded - imported, time.perf_counter() - loaded]))
"""


def breakdown(repo: Path, batch: int) -> tuple[str, str]:
    """BREAKDOWN's figures and peak memory, as a row."""
    result, peak = run_measured([sys.executable, "-c", BREAKDOWN, str(batch)], repo)
    if result.returncode:
        sys.exit(f"the breakdown failed:\n{result.stderr[-3000:]}")
    imported, loaded, maps = json.loads(result.stdout.splitlines()[-1])
    return (
        f"maps in batches of {batch}",
        f"import {imported:.2f} s, load {loaded:.2f} s, 25 maps {maps:.2f} s, peak {peak:.0f} MiB",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--old", type=Path, help="a checkout of the code before, to compare")
    args = parser.parse_args()
    repo, scratch = args.repo.resolve(), Path(tempfile.mkdtemp(prefix="bench_heatmaps"))
    versions = {"today": PROJECT_ROOT, **({"before": args.old} if args.old else {})}
    rows, pictures = [], set()
    for round_ in range(1, ROUNDS + 1):
        for name, checkout in versions.items():
            use_code(checkout, repo)
            seconds, peak, heat, picture = evaluate_once(repo, scratch)
            if name == "today":
                pictures.add(picture)
            what = f"evaluate {name}, round {round_}"
            rows.append((what, f"{seconds:.2f} s, peak {peak:.0f} MiB, heat maps {heat:.2f} s"))
    use_code(PROJECT_ROOT, repo)
    rows.append(("predictions.png today", f"{len(pictures)} distinct over {ROUNDS} runs"))
    rows += [breakdown(repo, batch) for batch in (4, 8, 16)]
    rows += review_timings(repo)
    raw = in_own_process(raw_forward_speed)
    rows.append(("raw Keras MobileNetV2 forward", f"{raw:.1f} images/s"))
    shutil.rmtree(scratch)
    print_table(f"{repo.name}: {machine()}", rows)


if __name__ == "__main__":
    main()
