"""Classify image files and folders with the trained model: the `classify` command.

classify photo.jpg more_photos/ [--top-k 3] [--json]   (or python -m transfer.predict ...)
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transfer.errors import PipelineError, run_main
from transfer.export.serving import LABELS
from transfer.export.tflite import TFLITE_FLOAT
from transfer.image_files import ImageRejected, has_image_extension, is_hidden, resize_rgb
from transfer.inference import predict_array, traced_call
from transfer.litert import LiteRTModel
from transfer.models.files import load_model
from transfer.params import DataParams
from transfer.paths import EXPORT_DIR, MODEL_FILE

MAX_PIXELS = DataParams.max_pixels  # the default decompression-bomb limit
BATCH_SIZE = 32  # images decoded and classified at a time; bounds memory


def expand(paths: list[Path]) -> list[Path]:
    """The given files, and the image files inside the given folders (recursively, sorted)."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*")
                if p.is_file() and has_image_extension(p.name) and not is_hidden(p.name)
            )  # fmt: skip
        else:
            files.append(path)
    return files


def load_image(path: Path, size: int) -> np.ndarray:
    """Raw RGB pixels at the model's input size; ImageRejected with a reason if unusable."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageRejected(f"cannot read ({error.strerror})") from None
    return np.asarray(resize_rgb(data, size, MAX_PIXELS), dtype=np.float32)


def top_classes(probabilities: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[: min(k, len(classes))]
    return [(classes[i], float(probabilities[i])) for i in order]


def predict(
    forward: Callable[[np.ndarray], np.ndarray],
    size: int,
    classes: list[str],
    files: list[Path],
    k: int,
) -> list[dict]:
    """One dict per file: its path and either its top-k predictions or the error.
    `forward` maps a batch of size x size raw pixels to class probabilities."""
    results = []
    for start in range(0, len(files), BATCH_SIZE):
        batch, readable = [], []
        for path in files[start : start + BATCH_SIZE]:
            result = {"path": str(path)}
            results.append(result)
            try:
                batch.append(load_image(path, size))
                readable.append(result)
            except ImageRejected as reason:
                result["error"] = str(reason)
        if batch:
            # No progress bar: stdout carries the results.
            probabilities = predict_array(
                forward, np.stack(batch), len(classes), BATCH_SIZE, progress_bar=False
            )
            for result, row in zip(readable, probabilities, strict=True):
                result["predictions"] = [
                    {"class": name, "probability": p} for name, p in top_classes(row, classes, k)
                ]
    return results


def load_forward(model_file: Path) -> tuple[Callable[[np.ndarray], np.ndarray], int, int]:
    """(forward, input side, number of classes) of a .tflite model, run by LiteRT, or of a
    .keras model, run by Keras."""
    if model_file.suffix == ".tflite":
        model = LiteRTModel(model_file.read_bytes())
        width = int(model.outputs[0]["shape"][-1])
        return (lambda batch: model(batch)[0]), model.input_shape[0], width
    keras_model = load_model(model_file)
    return traced_call(keras_model), keras_model.input_shape[1], keras_model.output_shape[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="classify", description="Classify images with the trained model."
    )
    parser.add_argument("paths", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument(
        "--model",
        type=Path,
        default=EXPORT_DIR / TFLITE_FLOAT,
        help=f"a .tflite model (run by LiteRT) or a .keras one such as {MODEL_FILE}",
    )
    parser.add_argument("--labels", type=Path, default=EXPORT_DIR / LABELS)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    if args.top_k < 1:
        raise PipelineError(f"--top-k must be at least 1, got {args.top_k}")
    for required in (args.model, args.labels):
        if not required.is_file():
            raise PipelineError(f"{required} not found; run `dvc repro` first")
    classes = args.labels.read_text().splitlines()
    forward, size, outputs = load_forward(args.model)
    if outputs != len(classes):
        raise PipelineError(
            f"{args.labels} names {len(classes)} classes but {args.model} "
            f"has {outputs} outputs; pass the labels of that model"
        )
    results = predict(forward, size, classes, expand(args.paths), args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
    for result in results:
        if "error" in result:
            print(f"{result['path']}: error: {result['error']}", file=sys.stderr)
        elif not args.json:
            ranked = ", ".join(
                f"{p['class']} {p['probability']:.3f}" for p in result["predictions"]
            )
            print(f"{result['path']}: {ranked}")
    if not any("predictions" in result for result in results):
        raise PipelineError("no image could be classified")


def cli() -> None:
    """The `classify` console script."""
    run_main(main)


if __name__ == "__main__":
    cli()
