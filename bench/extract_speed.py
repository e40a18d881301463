"""Benchmark helper: one engine's forward and extract loop, in a process of its own.

    python -m bench.extract_speed REPO ENGINE [--runs N]

Prints one JSON line: the engine's conversion seconds, its images/s on random tensors, and
its images/s in extract's loop over REPO's training TFRecords, each run. A process of its
own, as the `extract` stage is: after Keras has run in a process, TensorFlow's thread pools
slow LiteRT down there (300 images/s against 383 in a fresh one, measured).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from transfer.extraction import FrozenForward, fill_file
from transfer.litert import frozen_forward
from transfer.manifests.cache_meta import read_cache_meta
from transfer.memo.store import NO_MEMO
from transfer.models.files import load_model
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE

BATCH_SIZE = 32  # backbone.batch_size's default


def images_per_second(forward, images: np.ndarray, batch_size: int) -> float:
    """Throughput of `forward` on in-memory images, after one call to warm it up."""
    np.asarray(keras.tree.flatten(forward(images[:batch_size]))[0])
    start = time.perf_counter()
    for first in range(0, len(images), batch_size):
        np.asarray(keras.tree.flatten(forward(images[first : first + batch_size]))[0])
    return len(images) / (time.perf_counter() - start)


def measure(repo: Path, engine: str, runs: int) -> dict[str, float | list[float]]:
    meta = read_cache_meta(repo / CACHE_DIR)
    extractor = load_model(repo / EXTRACTOR_FILE)
    start = time.perf_counter()
    forward = frozen_forward(extractor, engine)
    conversion = time.perf_counter() - start
    size, count = meta.image_size, meta.counts["train"]
    images = np.random.default_rng(0).uniform(0, 255, (256, size, size, 3)).astype("float32")
    raw = images_per_second(forward, images, BATCH_SIZE)
    loops = []
    for _ in range(runs):
        files = meta.split_files(repo / CACHE_DIR, "train")
        # Every row computed (no memo), in extract's own loop.
        rows = FrozenForward(forward, extractor.output_shape[-1], "bench", BATCH_SIZE)
        block = None, [str(row) for row in range(count)]
        with tempfile.TemporaryDirectory() as directory:
            start = time.perf_counter()
            fill_file(Path(directory) / "train.npy", rows, [(files, block)], NO_MEMO)
            loops.append(count / (time.perf_counter() - start))
    return {"conversion": conversion, "raw": raw, "loops": sorted(loops)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("engine", choices=["keras", "litert"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.repo.resolve(), args.engine, args.runs)))


if __name__ == "__main__":
    main()
