"""Stage `evaluate`: test-set metrics, confusion matrix, predictions, picture and export."""

import logging

import numpy as np

from stages.atomic import atomic_output, write_csv, write_json
from stages.cli import run
from stages.export import (
    TFLITE_FLOAT,
    convert_float,
    export_saved_model,
    int8_test_probabilities,
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
from stages.second_process import SecondProcess

log = logging.getLogger("evaluate")


def tflite_metrics(probabilities: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy of a TFLite model and how often it agrees with the Keras model's prediction."""
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == reference)),
    }


def write_reports(
    classes: list[str],
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    paths: list[str],
    grid_images: int,
) -> None:
    """The confusion matrix, the predictions file and the picture of test images."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
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
    grid = draw_grid(images, labels, predicted, confidence, classes, grid_images)
    with atomic_output(GRID_FILE) as path:
        grid.save(path, format="PNG")


def main() -> None:
    params = load_params()
    meta = read_meta(CACHE_DIR)
    classes = meta["classes"]
    batch_size = params.evaluate.batch_size
    train_files, test_files = (split_files(CACHE_DIR, meta, split) for split in ("train", "test"))
    # The int8 model is converted and run on the test images in a second process, in parallel
    # with the float model here: each conversion keeps one core busy. It starts first, so that
    # its TensorFlow import overlaps the loading and the SavedModel.
    with atomic_output(EXPORT_DIR) as export_dir, SecondProcess() as int8_process:
        model = load_model(MODEL_FILE)
        export_dir.mkdir()
        export_saved_model(model, classes, export_dir)
        int8_process.start(
            int8_test_probabilities,
            export_dir,
            train_files,
            test_files,
            len(classes),
            params.evaluate.representative_images,
            batch_size,
        )
        convert_float(export_dir)
        images, labels, paths = read_images(test_files, len(classes), batch_size)
        probabilities = classify_split(
            model, EXTRACTOR_FILE, FEATURES_DIR, "test", images, labels, batch_size
        )
        predicted = probabilities.argmax(axis=1)
        metrics = classification_metrics(probabilities, labels, classes, params.evaluate.top_k)
        float_probabilities = tflite_predict(export_dir / TFLITE_FLOAT, images, batch_size)
        metrics["tflite_float"] = tflite_metrics(float_probabilities, labels, predicted)
        metrics["tflite_int8"] = tflite_metrics(int8_process.result(), labels, predicted)
    write_json(METRICS_FILE, metrics)
    write_reports(classes, images, labels, probabilities, paths, params.evaluate.grid_images)
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
