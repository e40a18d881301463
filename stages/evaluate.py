"""Stage `evaluate`: test-set metrics, confusion matrix, predictions, picture and export."""

import logging
from itertools import islice
from pathlib import Path

import keras
import numpy as np

from stages.atomic import atomic_output, write_csv, write_json
from stages.cli import run
from stages.export import TFLITE_FLOAT, TFLITE_INT8, export_model, tflite_predict
from stages.features import load_features
from stages.grid import draw_grid
from stages.meta import read_meta, split_files
from stages.metrics import classification_metrics
from stages.model_files import load_model
from stages.models import EXTRACTOR_LAYER, HEAD_LAYER, compiled_forward
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
from stages.tfdata import make_dataset

log = logging.getLogger("evaluate")


def read_images(
    files: list[Path], n_classes: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 images, integer labels, paths) of a split, in the cached (unshuffled) order."""
    images, labels, paths = [], [], []
    for pixels, one_hot, names in make_dataset(files, n_classes, batch_size, with_filenames=True):
        images.append(pixels.numpy().astype(np.uint8))
        labels.append(np.argmax(one_hot, axis=-1))
        paths += [name.decode() for name in names.numpy()]
    return np.concatenate(images), np.concatenate(labels), paths


def predict_in_batches(model: keras.Model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for `inputs`, a batch at a time."""
    forward = compiled_forward(model)
    return np.concatenate(
        [
            forward(inputs[start : start + batch_size].astype(np.float32)).numpy()
            for start in range(0, len(inputs), batch_size)
        ]
    )


def backbone_unchanged(model: keras.Model, extractor: keras.Model) -> bool:
    """Whether the classifier's feature extractor still has the frozen extractor's weights."""
    trained = model.get_layer(EXTRACTOR_LAYER).get_weights()
    frozen = extractor.get_weights()
    return len(trained) == len(frozen) and all(map(np.array_equal, trained, frozen))


def classify_split(
    model: keras.Model,
    extractor_file: Path,
    features_dir: Path,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """The classifier's class probabilities for a split's images (in the cached order).

    After head-only training (unfreeze=0) the backbone is the frozen extractor, whose outputs
    for these images are the cached features: only the head needs to run, which gives the
    same values (to float rounding) in a fraction of a second instead of a forward pass of
    every image through the backbone. The features must come from the same records in the
    same order, which DVC ensures: `extract` reruns whenever `data/cache` changes.
    """
    features, feature_labels = load_features(features_dir, split)
    if np.array_equal(feature_labels, labels) and backbone_unchanged(
        model, load_model(extractor_file)
    ):
        log.info("backbone unchanged since extract: classifying the cached %s features", split)
        return predict_in_batches(model.get_layer(HEAD_LAYER), features, batch_size)
    log.info("backbone fine-tuned: classifying the %d %s images", len(images), split)
    return predict_in_batches(model, images, batch_size)


def tflite_metrics(model_file: Path, images: np.ndarray, labels: np.ndarray, reference) -> dict:
    """Accuracy of a TFLite model and how often it agrees with the Keras model's prediction."""
    predicted = tflite_predict(model_file, images).argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == reference)),
    }


def main() -> None:
    params = load_params()
    meta = read_meta(CACHE_DIR)
    classes = meta["classes"]
    model = load_model(MODEL_FILE)
    batch_size = params.evaluate.batch_size
    images, labels, paths = read_images(
        split_files(CACHE_DIR, meta, "test"), len(classes), batch_size
    )
    probabilities = classify_split(
        model, EXTRACTOR_FILE, FEATURES_DIR, "test", images, labels, batch_size
    )
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    metrics = classification_metrics(probabilities, labels, classes, params.evaluate.top_k)

    def representative():
        train = make_dataset(split_files(CACHE_DIR, meta, "train"), len(classes), 1)
        for pixels, _ in islice(train, params.evaluate.representative_images):
            yield pixels.numpy()[0]

    with atomic_output(EXPORT_DIR) as export_dir:
        export_dir.mkdir()
        export_model(model, classes, representative, export_dir)
        for name, file in (("tflite_float", TFLITE_FLOAT), ("tflite_int8", TFLITE_INT8)):
            metrics[name] = tflite_metrics(export_dir / file, images, labels, predicted)
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
