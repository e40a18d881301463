"""Stage `evaluate`: test-set metrics, confusion matrix, predictions, picture and export."""

import logging
import multiprocessing
from itertools import islice
from pathlib import Path

import numpy as np

from stages.atomic import atomic_output, write_csv, write_json
from stages.cli import run
from stages.export import (
    TFLITE_FLOAT,
    TFLITE_INT8,
    convert_float,
    convert_int8,
    export_saved_model,
    tflite_predict,
)
from stages.grid import draw_grid
from stages.meta import read_meta, split_files
from stages.metrics import classification_metrics
from stages.model_files import load_model
from stages.params import load_params
from stages.paths import (
    CACHE_DIR,
    CONFUSION_FILE,
    EXPORT_DIR,
    EXTRACTOR_FILE,
    FEATURES_DIR,
    GRID_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
)
from stages.predictions import classify_split, read_images
from stages.tfdata import make_dataset

log = logging.getLogger("evaluate")


def tflite_metrics(probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy of a TFLite model and how often it agrees with the Keras model's prediction."""
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == reference)),
    }


def representative_images(files: list[Path], n_classes: int, count: int) -> np.ndarray:
    """The first `count` images of a split (uint8), in the cached order, for int8 calibration."""
    pixels = [batch.numpy() for batch, _ in islice(make_dataset(files, n_classes, 1), count)]
    return np.concatenate(pixels).astype(np.uint8)


def main() -> None:
    params = load_params()
    meta = read_meta(CACHE_DIR)
    classes = meta["classes"]
    batch_size = params.evaluate.batch_size
    # The int8 model is converted and run on the test images in a second process, on the other
    # core, while this one converts and runs the float model. The process starts first, so that
    # its TensorFlow import overlaps the work before the conversion. `spawn`, because
    # TensorFlow's threads make a forked copy unsafe; leaving the block terminates it, so a
    # failure does not wait for it.
    with (
        atomic_output(EXPORT_DIR) as export_dir,
        multiprocessing.get_context("spawn").Pool(1) as int8_worker,
    ):
        model = load_model(MODEL_FILE)
        representative = representative_images(
            split_files(CACHE_DIR, meta, "train"),
            len(classes),
            params.evaluate.representative_images,
        )
        export_dir.mkdir()
        export_saved_model(model, classes, export_dir)
        int8_converted = int8_worker.apply_async(
            convert_int8, (export_dir, representative, batch_size)
        )
        images, labels, paths = read_images(
            split_files(CACHE_DIR, meta, "test"), len(classes), batch_size
        )
        int8_probabilities = int8_worker.apply_async(
            tflite_predict, (export_dir / TFLITE_INT8, images, batch_size)
        )
        convert_float(export_dir)
        probabilities = classify_split(
            model, EXTRACTOR_FILE, FEATURES_DIR, "test", images, labels, batch_size
        )
        predicted = probabilities.argmax(axis=1)
        confidence = probabilities.max(axis=1)
        metrics = classification_metrics(probabilities, labels, classes, params.evaluate.top_k)
        float_probabilities = tflite_predict(export_dir / TFLITE_FLOAT, images, batch_size)
        metrics["tflite_float"] = tflite_metrics(float_probabilities, labels, predicted)
        int8_converted.get()  # raises what the conversion raised
        metrics["tflite_int8"] = tflite_metrics(int8_probabilities.get(), labels, predicted)
    write_json(METRICS_FILE, metrics)
    write_csv(
        CONFUSION_FILE,
        ["actual", "predicted"],
        [[classes[a], classes[p]] for a, p in zip(labels, predicted, strict=True)],
    )
    write_csv(
        PREDICTIONS_FILE,
        ["path", "true", "predicted", "confidence"],
        [
            [path, classes[a], classes[p], f"{c:.6f}"]
            for path, a, p, c in zip(paths, labels, predicted, confidence, strict=True)
        ],
    )
    grid = draw_grid(images, labels, predicted, confidence, classes, params.evaluate.grid_images)
    with atomic_output(GRID_FILE) as path:
        grid.save(path, format="PNG")
    log.info(
        "test accuracy %.4f, macro F1 %.4f on %d images; TFLite float %.4f, int8 %.4f",
        metrics["accuracy"],
        metrics["macro_f1"],
        len(labels),
        metrics["tflite_float"]["accuracy"],
        metrics["tflite_int8"]["accuracy"],
    )


if __name__ == "__main__":
    run(main)
