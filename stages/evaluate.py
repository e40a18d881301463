"""Stage `evaluate`: test-set metrics, confusion matrix, predictions, picture and export."""

import logging

from transfer.atomic import atomic_output, write_json
from transfer.audit.leaks import leaked_test_images
from transfer.errors import run_main
from transfer.evaluation.metrics import agreement_metrics, classification_metrics, leak_metrics
from transfer.evaluation.predictions import classify_split, read_images
from transfer.evaluation.reports import write_reports
from transfer.export.serving import export_saved_model
from transfer.export.tflite import (
    TFLITE_FLOAT,
    convert_float,
    int8_test_probabilities,
    tflite_predict,
)
from transfer.models.files import load_model
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    CONFUSION_FILE,
    DUPLICATES_FILE,
    EXPORT_DIR,
    EXTRACTOR_FILE,
    FEATURES_DIR,
    GRID_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
)
from transfer.records.cache_meta import read_cache_meta
from transfer.second_process import SecondProcess

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    meta = read_cache_meta(CACHE_DIR)
    classes = list(meta.classes)
    batch_size = params.evaluate.batch_size
    train_files, test_files = (meta.split_files(CACHE_DIR, split) for split in ("train", "test"))
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
            params.evaluate.representative_images,
            batch_size,
        )
        convert_float(export_dir)
        images, labels, paths = read_images(test_files, batch_size)
        probabilities = classify_split(
            model, EXTRACTOR_FILE, FEATURES_DIR, "test", images, labels, batch_size
        )
        predicted = probabilities.argmax(axis=1)
        metrics = classification_metrics(probabilities, labels, classes, params.evaluate.top_k)
        leaked = leaked_test_images(DUPLICATES_FILE)
        metrics.update(leak_metrics(predicted, labels, paths, leaked))
        float_probabilities = tflite_predict(export_dir / TFLITE_FLOAT, images, batch_size)
        metrics["tflite_float"] = agreement_metrics(float_probabilities, labels, predicted)
        metrics["tflite_int8"] = agreement_metrics(int8_process.result(), labels, predicted)
    write_json(METRICS_FILE, metrics)
    write_reports(
        CONFUSION_FILE,
        PREDICTIONS_FILE,
        GRID_FILE,
        classes,
        images,
        labels,
        probabilities,
        paths,
        params.evaluate.grid_images,
    )
    log.info(
        "test accuracy %.4f, macro F1 %.4f on %d images; TFLite float %.4f, int8 %.4f",
        metrics["accuracy"],
        metrics["macro_f1"],
        len(labels),
        metrics["tflite_float"]["accuracy"],
        metrics["tflite_int8"]["accuracy"],
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
