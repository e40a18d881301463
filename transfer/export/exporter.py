"""The whole export: the Keras file, the SavedModel, the TFLite models (float, float16,
dynamic range, int8) and, with export.onnx, the ONNX model, each checked against the Keras
classifier on the test images."""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.atomic import atomic_output
from transfer.export.checks import check_figures
from transfer.export.formats import (
    FORMAT_FILES,
    check_formats,
    predict_format,
    predict_saved_model,
    time_formats,
)
from transfer.export.onnx_model import ONNX_FILE, export_onnx
from transfer.export.serving import SAVED_MODEL, export_saved_model
from transfer.export.tflite import TFLITE_FLOAT, export_int8, representative_images
from transfer.export.weights_only import (
    TFLITE_DYNAMIC_RANGE,
    TFLITE_FLOAT16,
    int8_weights,
    weights_only,
)
from transfer.litert import serving_function, to_tflite
from transfer.manifests.cache_meta import CacheMeta
from transfer.models.files import load_classifier, save_model
from transfer.params import ExportParams
from transfer.second_process import SecondProcess
from transfer.timing import phase

# Not checked in check_formats: in the second process (export_beside), and the SavedModel's
# two signatures (predict_saved_model), in whichever process has less to do.
SECOND_PROCESS_FORMATS = ("tflite_int8", "onnx", "saved_model", "saved_model_bytes")


def export_beside(
    model_files: list[Path],
    out_dir: Path,
    calibration: np.ndarray,
    *,
    test_files: list[Path],
    count: int,
    batch_size: int,
    onnx: bool,
) -> dict[str, np.ndarray]:
    """The second process's formats, each one's probabilities on the first `count` test
    images: the int8 model (tflite.export_int8, calibrated on `calibration`) and, if `onnx`,
    the ONNX model, whose conversion (tf2onnx: mostly Python, on one core) runs here beside
    the other formats.
    Loads the classifier itself: this runs in the second process."""
    model = load_classifier(model_files)
    with phase("export: int8"):
        probabilities = {
            "tflite_int8": export_int8(
                model,
                out_dir,
                calibration,
                test_files=test_files,
                test_count=count,
                batch_size=batch_size,
            )
        }
    if onnx:
        with phase("export: ONNX"):
            export_onnx(model, out_dir / ONNX_FILE)
            probabilities["onnx"] = predict_format(
                "onnx",
                out_dir / ONNX_FILE,
                None,
                test_files,
                count=count,
                batch_size=batch_size,
                classes=model.output_shape[-1],
            )
    return probabilities


def start_export_beside(
    second_process: SecondProcess,
    model_files: list[Path],
    out_dir: Path,
    *,
    calibration: np.ndarray,
    test_files: list[Path],
    count: int,
    params: ExportParams,
) -> None:
    """Start export_beside in `second_process`, which converts and checks int8 (and ONNX)
    beside the rest: it starts first."""
    second_process.start(
        partial(
            export_beside,
            model_files,
            out_dir,
            calibration,
            test_files=test_files,
            count=count,
            batch_size=params.batch_size,
            onnx=params.onnx,
        )
    )


def write_formats(
    model_files: list[Path],
    meta: CacheMeta,
    out_dir: Path,
    *,
    calibration: np.ndarray,
    batch_size: int,
    model_file: Path,
) -> keras.Model:
    """Load the classifier of `model_files` and write the formats made in this process to
    `out_dir` (the SavedModel, the float, float16 and dynamic-range TFLite models, the last
    corrected on the `calibration` images in batches of `batch_size`) and the Keras
    classifier to `model_file`; return the classifier."""
    with phase("load models"):
        model = load_classifier(model_files)
    serve = serving_function(model)  # traced once, for all
    with phase("export: SavedModel"):
        export_saved_model(serve, list(meta.classes), meta.image_size, meta.jpeg_quality, out_dir)
    with phase("export: float TFLite"):
        float_content = to_tflite(serve)
        (out_dir / TFLITE_FLOAT).write_bytes(float_content)
    with phase("export: float16 TFLite"):
        (out_dir / TFLITE_FLOAT16).write_bytes(weights_only(float_content, TFLITE_FLOAT16))
    with phase("export: int8-weights TFLite"):
        (out_dir / TFLITE_DYNAMIC_RANGE).write_bytes(int8_weights(model, calibration, batch_size))
    with phase("save models"):
        save_model(model, model_file)
    return model


def check_saved_model_beside(
    second_process: SecondProcess,
    saved_model: Path,
    test_files: list[Path],
    *,
    count: int,
    batch_size: int,
    beside: bool,
) -> Callable[..., dict[str, np.ndarray]]:
    """The check of the `saved_model` folder's two signatures (formats.predict_saved_model)
    on the first `count` test images, started in `second_process` if `beside`. With ONNX
    (tf2onnx: 40-50 s on one loaded core) the second process has the longer list: then this
    process runs it, once done (docs/benchmarks.md)."""
    check = partial(
        predict_saved_model, saved_model, test_files, count=count, batch_size=batch_size
    )
    if beside:
        second_process.start(check)
    return check


def gather_checks(
    second_process: SecondProcess,
    saved_model: Path,
    saved_model_check: Callable[..., dict[str, np.ndarray]],
    probabilities: dict[str, np.ndarray],
    *,
    beside: bool,
) -> Any:
    """Add to `probabilities` the second process's and the SavedModel's (formats.
    predict_saved_model on the `saved_model` folder, `saved_model_check`: run there if
    `beside`, else here); return the SavedModel, loaded here once for its checks and its
    latency."""
    served = tf.saved_model.load(str(saved_model))
    if not beside:
        probabilities.update(saved_model_check(served=served))
    with phase("export: waiting for the second process"):
        for _ in range(2 if beside else 1):
            probabilities.update(second_process.result())
    return served


def format_table(
    names: list[str],
    probabilities: dict[str, np.ndarray],
    labels: np.ndarray,
    served_figures: dict[str, dict],
) -> dict[str, dict]:
    """reports/export/metrics.json: for each format, its file, its figures against Keras'
    probabilities (`probabilities["keras"]`) and its size and latencies."""
    return {
        name: {
            "file": FORMAT_FILES[name],
            **check_figures(probabilities[name], labels, probabilities["keras"]),
            **served_figures[name],
        }
        for name in names
    }


def export_classifier(
    model_files: list[Path],
    meta: CacheMeta,
    cache_dir: Path,
    *,
    params: ExportParams,
    reference_batch_size: int,
    export_dir: Path,
    model_file: Path,
) -> dict[str, dict]:
    """Write the classifier of `model_files` to `model_file` and its serving forms to `export_dir`;
    return each format's figures against Keras, run in batches of `reference_batch_size`."""
    test_files, test_count = meta.split_files(cache_dir, "test"), meta.counts["test"]
    check_count = min(test_count, params.check_images or test_count)  # a random sample
    names = [name for name in FORMAT_FILES if params.onnx or FORMAT_FILES[name] != ONNX_FILE]
    calibration = representative_images(
        meta.split_files(cache_dir, "train"), params.calibration_images
    )
    with atomic_output(export_dir) as out_dir, SecondProcess() as second_process:
        out_dir.mkdir()
        start_export_beside(
            second_process,
            model_files,
            out_dir,
            calibration=calibration,
            test_files=test_files,
            count=check_count,
            params=params,
        )
        model = write_formats(
            model_files,
            meta,
            out_dir,
            calibration=calibration,
            batch_size=params.batch_size,
            model_file=model_file,
        )
        saved_model = out_dir / SAVED_MODEL
        saved_model_check = check_saved_model_beside(
            second_process,
            saved_model,
            test_files,
            count=check_count,
            batch_size=reference_batch_size,
            beside=not params.onnx,
        )
        probabilities, labels = check_formats(
            model,
            [name for name in names if name not in SECOND_PROCESS_FORMATS],
            out_dir,
            test_files,
            count=check_count,
            batch_size=params.batch_size,
            reference_batch_size=reference_batch_size,
        )
        served = gather_checks(
            second_process, saved_model, saved_model_check, probabilities, beside=not params.onnx
        )
        latencies = time_formats(names, out_dir, served, test_files=test_files, count=test_count)
    return format_table(names, probabilities, labels, latencies)
