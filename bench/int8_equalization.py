"""Benchmark: the int8 TFLite model's alternatives, on all test images.

    KERAS_HOME=/abs/path/to/keras python -m bench.int8_equalization REPO [--calibration 32]
        [--methods today equalized float_stem_uncorrected float_stem equalized_float_stem]
        [--rounds 5]

REPO is a pipeline repo after `dvc repro` (its models/model.keras and data/cache/). Each
method converts the classifier to int8 with uint8 pixels in, calibrated on the first
--calibration training images as the export does: today, every layer quantized
(tflite.int8_converter); equalized, the same after cross-layer equalization of the
activations (bench/equalize.py); float_stem_uncorrected, MobileNetV2's first convolution and
two worst depthwise layers left in float (transfer.export.selective's debugger), as the export
shipped before bias correction; float_stem, what the export ships (the same, with each layer's
int8 mean shift taken out of its offset); and equalized_float_stem, both. Each
model runs on every test image: its agreement with the Keras classifier's top class, its
accuracy, the equalized float model's accuracy and the file's size; then each model's median
latency per image (on 1 thread and on all cores), the median of --rounds rounds that time the
models in turn.
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from bench.common import in_own_process, machine, raw_forward_speed
from bench.equalize import equalize
from transfer.evaluation.metrics import agreement_metrics
from transfer.export.checks import LATENCY_IMAGES, median_ms
from transfer.export.selective import FLOAT_LAYERS, quantization_debugger, selective_int8
from transfer.export.tflite import int8_converter, representative_images
from transfer.inference import run_on_records, traced_call
from transfer.litert import LiteRTModel
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.files import load_model
from transfer.paths import CACHE_DIR, MODEL_FILE

BATCH = 8  # export.batch_size: calibration steps and test batches
METHODS: dict[str, tuple[bool, Callable[[keras.Model, np.ndarray], bytes]]] = {
    "today": (False, lambda model, images: int8_converter(model, images, BATCH).convert()),
    "equalized": (True, lambda model, images: int8_converter(model, images, BATCH).convert()),
    "float_stem_uncorrected": (
        False,
        lambda model, images: quantization_debugger(
            model, images, BATCH, FLOAT_LAYERS
        ).get_nondebug_quantized_model(),
    ),
    "float_stem": (False, lambda model, images: selective_int8(model, images, BATCH)),
    "equalized_float_stem": (True, lambda model, images: selective_int8(model, images, BATCH)),
}  # name: (equalized first, conversion)


def predictions(forward: Callable, width: int, files: list[Path], count: int) -> np.ndarray:
    """`forward`'s outputs on the first `count` test images."""
    return run_on_records(forward, width, files, count, BATCH)[0]


def measure(
    model: keras.Model, method: str, data: dict, reference: np.ndarray
) -> tuple[dict, bytes]:
    """One method's figures but its latency, and its model; `data` holds the calibration and
    test images."""
    equalized, convert = METHODS[method]
    start = time.perf_counter()
    transformed = equalize(model, data["calibration"]) if equalized else model
    content = convert(transformed, data["calibration"])
    seconds = time.perf_counter() - start
    files, count, labels = data["files"], data["count"], data["labels"]
    interpreter = LiteRTModel(content, BATCH)
    int8 = predictions(lambda batch: interpreter(batch)[0], len(reference[0]), files, count)
    float_own = (
        predictions(traced_call(transformed), len(reference[0]), files, count)
        if equalized
        else reference
    )
    return {
        **agreement_metrics(int8, labels, reference.argmax(axis=1)),
        "float_accuracy": round(float(np.mean(float_own.argmax(axis=1) == labels)), 4),
        "convert_s": round(seconds, 1),
        "bytes": len(content),
    }, content


def serving_figures(content: bytes, images: np.ndarray) -> dict[str, float]:
    """A TFLite model's median latency per image on LiteRT, on 1 thread and on all cores."""
    return {
        f"latency_ms_{name}": median_ms(
            LiteRTModel(content, batch_size=1, threads=threads), images[:, None]
        )
        for name, threads in (("1_thread", 1), ("all_threads", None))
    }


def latencies(contents: dict[str, bytes], images: np.ndarray, rounds: int) -> dict[str, dict]:
    """Each model's median latency per image, 1 thread and all cores: the median of `rounds`
    rounds that each time each model in turn, so that a neighbour's load falls on all alike."""
    runs: dict[str, list] = {name: [] for name in contents}
    for _ in range(rounds):
        for name, content in contents.items():
            runs[name].append(serving_figures(content, images))
    return {
        name: {key: float(np.median([run[key] for run in figures])) for key in figures[0]}
        for name, figures in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path, help="a pipeline repo after dvc repro")
    parser.add_argument("--calibration", type=int, default=32, help="training images")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds")
    args = parser.parse_args()
    speed = in_own_process(raw_forward_speed)
    print(f"{args.repo}: {machine()}; raw Keras MobileNetV2 forward {speed:.1f} images/s")
    model = load_model(args.repo / MODEL_FILE)
    meta = read_cache_meta(args.repo / CACHE_DIR)
    files, count = meta.split_files(args.repo / CACHE_DIR, "test"), meta.counts["test"]
    reference, labels = run_on_records(traced_call(model), meta.n_classes, files, count, BATCH)
    data = {
        "calibration": representative_images(
            meta.split_files(args.repo / CACHE_DIR, "train"), args.calibration
        ),
        "files": files,
        "count": count,
        "labels": labels,
    }
    float_accuracy = float(np.mean(reference.argmax(axis=1) == labels))
    print(f"{count} test images; Keras float accuracy {float_accuracy:.4f}")
    contents = {}
    for method in args.methods:
        figures, contents[method] = measure(model, method, data, reference)
        print(f"{method:<20} " + "  ".join(f"{key} {value}" for key, value in figures.items()))
    images = representative_images(files, LATENCY_IMAGES)
    for method, figures in latencies(contents, images, args.rounds).items():
        print(f"{method:<20} " + "  ".join(f"{key} {value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
