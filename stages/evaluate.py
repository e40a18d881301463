"""Stage `evaluate`: test-set metrics, confusion matrix, predictions and picture.

It reads the classifier's test probabilities that `finetune` wrote: the metrics run no model,
so `dvc exp run evaluate -S ...` explores without the export's cost. The classifier is loaded
only for the heat maps of the misclassified images the picture shows (Grad-CAM of the class
predicted), and TensorFlow with it: not at all when none is wrong.
"""

import logging

import numpy as np

from transfer.atomic import write_json
from transfer.audit.leaks import leaked_test_images
from transfer.errors import run_main
from transfer.evaluation.grid import misclassified_heat_maps
from transfer.evaluation.metrics import classification_metrics, leak_metrics
from transfer.evaluation.predictions import test_probabilities
from transfer.evaluation.reports import write_reports
from transfer.features import labels_file, load_paths
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.head_only import classifier_files
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    CONFUSION_FILE,
    DUPLICATES_FILE,
    EXTRACTOR_FILE,
    FEATURES_DIR,
    FINETUNED_DIR,
    GRID_FILE,
    HEAD_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RAW_DIR,
)
from transfer.timing import phase

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    classes = list(read_cache_meta(CACHE_DIR).classes)
    labels = np.load(labels_file(FEATURES_DIR, "test"))
    paths = load_paths(FEATURES_DIR, "test")
    probabilities = test_probabilities(
        FINETUNED_DIR, params.evaluate.tta, len(labels), len(classes)
    )
    predicted = probabilities.argmax(axis=1)
    heat_maps = (
        misclassified_heat_maps(
            [RAW_DIR / path for path in paths],
            labels,
            predicted,
            count=params.evaluate.grid_images,
            classifier=classifier_files(FINETUNED_DIR, EXTRACTOR_FILE, HEAD_FILE),
        )
        if params.evaluate.heat_maps
        else {}
    )
    with phase("evaluate"):
        metrics = classification_metrics(probabilities, labels, classes, params.evaluate.top_k)
        leaked = leaked_test_images(DUPLICATES_FILE)
        metrics.update(leak_metrics(predicted, labels, paths, leaked))
        write_json(METRICS_FILE, metrics)
        write_reports(
            CONFUSION_FILE,
            PREDICTIONS_FILE,
            GRID_FILE,
            classes=classes,
            raw_dir=RAW_DIR,
            labels=labels,
            probabilities=probabilities,
            paths=paths,
            grid_images=params.evaluate.grid_images,
            heat_maps=heat_maps,
        )
    log.info(
        "test accuracy %.4f (95%%: %.4f-%.4f), macro F1 %.4f (95%%: %.4f-%.4f) on %d images",
        metrics["accuracy"],
        metrics["accuracy_low"],
        metrics["accuracy_high"],
        metrics["macro_f1"],
        metrics["macro_f1_low"],
        metrics["macro_f1_high"],
        len(labels),
    )
    leaked_count = metrics["test_images_with_train_duplicates"]
    clean_accuracy = metrics["accuracy_without_train_duplicates"]
    if leaked_count and clean_accuracy is not None:
        log.info(
            "%d test images have a near-duplicate in train (%s); without them, accuracy %.4f",
            leaked_count,
            DUPLICATES_FILE,
            clean_accuracy,
        )


if __name__ == "__main__":
    run_main(main)
