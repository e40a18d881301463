"""The whole export: the Keras file, the SavedModel, the float and int8 TFLite models, and
each TFLite model checked against the Keras classifier on the test images."""

from pathlib import Path

from transfer.atomic import atomic_output
from transfer.evaluation.metrics import agreement_metrics
from transfer.export.serving import export_saved_model
from transfer.export.tflite import (
    LATENCY_IMAGES,
    TFLITE_FLOAT,
    TFLITE_INT8,
    export_int8,
    representative_images,
    serving_figures,
    tflite_predict_records,
)
from transfer.inference import run_on_records, traced_call
from transfer.litert import serving_function, to_tflite
from transfer.manifests.cache_meta import CacheMeta
from transfer.models.files import load_classifier, save_model
from transfer.params import ExportParams
from transfer.second_process import SecondProcess
from transfer.timing import phase


def export_classifier(
    model_files: list[Path],
    meta: CacheMeta,
    cache_dir: Path,
    params: ExportParams,
    reference_batch_size: int,
    export_dir: Path,
    model_file: Path,
) -> dict[str, dict]:
    """Write the classifier of `model_files` (finetuned.classifier_files) to `model_file` and
    its serving forms to `export_dir`; return each TFLite model's accuracy and agreement with
    the Keras classifier on the first `params.check_images` test images of the cache.

    The Keras reference runs in batches of `reference_batch_size` (backbone.batch_size).
    """
    batch_size = params.batch_size
    test_files, test_count = meta.split_files(cache_dir, "test"), meta.counts["test"]
    # The checks run on the first `check_images` test images (the records' seeded order: a
    # random sample): they catch a conversion that changes the predictions, and the whole
    # test set's accuracy is evaluate's. On all 608 flowers128 test images the float check
    # was the export's longest step (4 s of 10).
    check_count = min(test_count, params.check_images or test_count)
    # The int8 model is converted, calibrated and checked in a second process, in parallel
    # with the float model here: each keeps one core busy. It starts first, so that its
    # imports overlap the loading here.
    with atomic_output(export_dir) as out_dir, SecondProcess() as int8_process:
        out_dir.mkdir()
        int8_process.start(
            export_int8,
            model_files,
            out_dir,
            meta.split_files(cache_dir, "train"),
            params.calibration_images,
            test_files,
            check_count,
            batch_size,
        )
        with phase("load models"):
            model = load_classifier(model_files)
        serve = serving_function(model)  # traced once, for both
        with phase("export: SavedModel"):
            export_saved_model(
                serve, list(meta.classes), meta.image_size, meta.jpeg_quality, out_dir
            )
        with phase("export: float TFLite"):
            (out_dir / TFLITE_FLOAT).write_bytes(to_tflite(serve))
        with phase("export: float TFLite test run"):
            float_probabilities, labels = tflite_predict_records(
                out_dir / TFLITE_FLOAT, test_files, check_count, batch_size
            )
        with phase("save models"):
            save_model(model, model_file)
        # The Keras classifier's own predictions, which the TFLite models must reproduce. Not
        # the test probabilities finetune wrote: those come from a TFLite conversion too
        # (backbone.engine: litert), so agreeing with them would not catch a bad conversion.
        with phase("export: Keras reference"):
            keras_probabilities, _ = run_on_records(
                traced_call(model), meta.n_classes, test_files, check_count, reference_batch_size
            )
        with phase("export: waiting for int8"):
            int8_probabilities = int8_process.result()
        # Timed one after the other, neither beside other work: a latency is the model's own.
        with phase("export: latency"):
            images = representative_images(test_files, min(test_count, LATENCY_IMAGES))
            served = {
                name: serving_figures((out_dir / file).read_bytes(), images)
                for name, file in (("tflite_float", TFLITE_FLOAT), ("tflite_int8", TFLITE_INT8))
            }
    checked = keras_probabilities.argmax(axis=1)
    return {
        name: {
            **agreement_metrics(probabilities, labels, checked),
            "images": check_count,
            **served[name],
        }
        for name, probabilities in (
            ("tflite_float", float_probabilities),
            ("tflite_int8", int8_probabilities),
        )
    }
