"""Stage `export`: the whole classifier as a Keras file, a SavedModel, float and int8 TFLite
models and labels, each TFLite model checked on the test images against the Keras one."""

import logging

from transfer.atomic import atomic_output, write_json
from transfer.errors import run_main
from transfer.evaluation.metrics import agreement_metrics
from transfer.export.serving import export_saved_model
from transfer.export.tflite import TFLITE_FLOAT, export_int8, tflite_predict_records
from transfer.inference import run_on_records, traced_call
from transfer.litert import serving_function, to_tflite
from transfer.models.files import load_classifier, save_model
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    EXPORT_DIR,
    EXPORT_METRICS_FILE,
    EXTRACTOR_FILE,
    FINETUNED_DIR,
    FINETUNED_MODEL,
    HEAD_FILE,
    MODEL_FILE,
)
from transfer.records.cache_meta import read_cache_meta
from transfer.second_process import SecondProcess
from transfer.timing import phase

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    meta = read_cache_meta(CACHE_DIR)
    batch_size = params.export.batch_size
    test_files, test_count = meta.split_files(CACHE_DIR, "test"), meta.counts["test"]
    model_files = (FINETUNED_DIR / FINETUNED_MODEL, EXTRACTOR_FILE, HEAD_FILE)
    # The checks run on the first `check_images` test images (the records' seeded order: a
    # random sample): they catch a conversion that changes the predictions, and the whole
    # test set's accuracy is evaluate's. On all 608 flowers128 test images the float check
    # was the export's longest step (4 s of 10).
    check_count = min(test_count, params.export.check_images or test_count)
    # The int8 model is converted, calibrated and checked in a second process, in parallel
    # with the float model here: each keeps one core busy. It starts first, so that its
    # imports overlap the loading here.
    with atomic_output(EXPORT_DIR) as export_dir, SecondProcess() as int8_process:
        export_dir.mkdir()
        int8_process.start(
            export_int8,
            model_files,
            export_dir,
            meta.split_files(CACHE_DIR, "train"),
            params.export.calibration_images,
            test_files,
            check_count,
            batch_size,
        )
        with phase("load models"):
            model = load_classifier(*model_files)
        serve = serving_function(model)  # traced once, for both
        with phase("export: SavedModel"):
            export_saved_model(serve, list(meta.classes), export_dir)
        with phase("export: float TFLite"):
            (export_dir / TFLITE_FLOAT).write_bytes(to_tflite(serve))
        with phase("export: float TFLite test run"):
            float_probabilities, labels = tflite_predict_records(
                export_dir / TFLITE_FLOAT, test_files, check_count, batch_size
            )
        with phase("save models"):
            save_model(model, MODEL_FILE)
        # The Keras classifier's own predictions, which the TFLite models must reproduce. Not
        # the test probabilities finetune wrote: those come from a TFLite conversion too
        # (backbone.engine: litert), so agreeing with them would not catch a bad conversion.
        with phase("export: Keras reference"):
            keras_probabilities, _ = run_on_records(
                traced_call(model),
                meta.n_classes,
                test_files,
                check_count,
                params.backbone.batch_size,
            )
        with phase("export: waiting for int8"):
            int8_probabilities = int8_process.result()
    checked = keras_probabilities.argmax(axis=1)
    metrics = {
        name: {**agreement_metrics(probabilities, labels, checked), "images": check_count}
        for name, probabilities in (
            ("tflite_float", float_probabilities),
            ("tflite_int8", int8_probabilities),
        )
    }
    write_json(EXPORT_METRICS_FILE, metrics)
    for name, figures in metrics.items():
        log.info(
            "%s: test accuracy %.4f, agrees with Keras on %.4f of %d test images",
            name,
            figures["accuracy"],
            figures["agreement"],
            figures["images"],
        )


if __name__ == "__main__":
    run_main(main)
