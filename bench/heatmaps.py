"""What the heat maps cost (issue 39): `evaluate` with them, and the review page's.

    python -m bench.heatmaps REPO [--old CHECKOUT]

REPO is a pipeline repo after `dvc repro`; its stages/ and transfer/ are replaced by this
checkout's (and by CHECKOUT's, in turn, with --old: `evaluate` as it was, timed alternately
with today's), so run it on a copy. Prints, for three rounds, `evaluate`'s wall time, peak
memory and heat-maps phase, and whether its picture came out byte-identical; then, with the
review server on REPO in this process, over HTTP as the page asks: the item list, the first
heat map (TensorFlow's import and the classifier's load), ten more, and the same ten again;
and the raw MobileNetV2 forward speed.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import in_own_process, machine, print_table, raw_forward_speed
from bench.sandbox import PROJECT_ROOT, run_measured
from transfer.paths import GRID_FILE
from transfer.review.items import read_items
from transfer.review.server import ReviewServer
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


def review_timings(repo: Path) -> list[tuple[str, str]]:
    """The review server's answers, timed as the page asks for them."""
    server = ReviewServer(repo, 0, "bench")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def get(path: str, **query: str) -> float:
        start = time.perf_counter()
        url = f"{base}{path}?{urllib.parse.urlencode({'token': 'bench', **query})}"
        with urllib.request.urlopen(url) as answer:
            answer.read()
        return time.perf_counter() - start

    try:
        items = get("/api/items")
        photos = [(item.id, item.photos[0]) for item in read_items(server.audit_dir)[:11]]
        first = get("/api/heatmap", item=photos[0][0], photo=photos[0][1])
        more = [get("/api/heatmap", item=i, photo=p) for i, p in photos[1:]]
        again = [get("/api/heatmap", item=i, photo=p) for i, p in photos[1:]]
    finally:
        server.shutdown()
        server.server_close()
    return [
        ("review: the item list", f"{items:.2f} s (TensorFlow not loaded)"),
        ("review: the first heat map", f"{first:.2f} s (TensorFlow, the classifier, one map)"),
        ("review: the next ten", f"{sum(more):.2f} s ({sum(more) / len(more):.3f} s each)"),
        ("review: the same ten again", f"{sum(again):.3f} s (from memory)"),
    ]


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
    rows += review_timings(repo)
    raw = in_own_process(raw_forward_speed)
    rows.append(("raw Keras MobileNetV2 forward", f"{raw:.1f} images/s"))
    shutil.rmtree(scratch)
    print_table(f"{repo.name}: {machine()}", rows)


if __name__ == "__main__":
    main()
