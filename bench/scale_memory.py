"""Benchmark: memory stays flat as the dataset grows.

    KERAS_HOME=/abs/path/to/keras python -m bench.scale_memory [--counts 10000 100000]
        [--work DIR] [--weights imagenet|null]

For each count, writes that many small noisy JPEGs (64 px, 10 classes) into a folder, runs
this checkout's `download`, `split`, `cache` and `extract` stages on it with the default
params (MobileNetV2 at 224 px), each in a process of its own, and prints each stage's peak
resident memory and its time per image; then each stage's peak at the largest count against
the smallest (flat: within 20%).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench.sandbox import PROJECT_ROOT, run_measured

CLASSES = 10
SIDE = 64
STAGES = ("download", "split", "cache", "extract")


def write_images(folder: Path, count: int) -> Path:
    """`count` JPEGs of noise around a colour per class, in folder/<class>/."""
    random = np.random.default_rng(0)
    colours = random.integers(0, 256, (CLASSES, 3))
    for index in range(count):
        label = index % CLASSES
        pixels = np.clip(colours[label] + random.normal(0, 40, (SIDE, SIDE, 3)), 0, 255)
        path = folder / f"class_{label}" / f"img_{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
    return folder


def measure(count: int, work: Path, weights: str | None) -> dict[str, tuple[float, float]]:
    """{stage: (peak MiB, seconds)} of the stages on `count` generated images."""
    source = write_images(work / "images", count)
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    params["backbone"]["weights"] = weights
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    figures = {}
    for stage in STAGES:
        start = time.perf_counter()
        result, peak = run_measured(
            [sys.executable, "-m", f"stages.{stage}"], work, {"PYTHONPATH": str(PROJECT_ROOT)}
        )
        if result.returncode:
            sys.exit(f"{stage} failed on {count} images:\n{result.stderr[-3000:]}")
        figures[stage] = (peak, time.perf_counter() - start)
        print(
            f"{count:>7} images  {stage:<9} peak {peak:7.0f} MiB  "
            f"{figures[stage][1]:7.1f} s  {figures[stage][1] / count * 1000:6.2f} ms/image",
            flush=True,
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--weights", default="imagenet", help="backbone.weights (null: random)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="scale-memory-"))
    weights = None if args.weights == "null" else args.weights
    results = {count: measure(count, work / str(count), weights) for count in args.counts}
    smallest, largest = results[min(results)], results[max(results)]
    print(f"\npeak at {max(results)} images against {min(results)}:")
    for stage in STAGES:
        print(f"  {stage:<9} {largest[stage][0] / smallest[stage][0]:.2f}x")


if __name__ == "__main__":
    main()
