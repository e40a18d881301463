"""The whole export: the Keras file, the SavedModel, the TFLite models (float, float16,
dynamic range, int8) and, with export.onnx, the ONNX model, each checked against the Keras
classifier on the test images."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.atomic import atomic_output
from transfer.export.checks import LATENCY_IMAGES, check_figures, encoded_test_images
from transfer.export.formats import FORMAT_FILES, predict_format, serving_figures
from transfer.export.onnx_model import ONNX_FILE, export_onnx
from transfer.export.serving import SAVED_MODEL, export_saved_model
from transfer.export.tflite import (
    TFLITE_FLOAT,
    TFLITE_INT8,
    export_int8,
    representative_images,
)
from transfer.export.weights_only import (
    TFLITE_DYNAMIC_RANGE,
    TFLITE_FLOAT16,
    convert_weights_only,
)
from transfer.inference import run_on_records, traced_call
from transfer.litert import serving_function, to_tflite
from transfer.models.files import load_classifier, save_model
from transfer.params import ExportParams
from transfer.records.cache_meta import CacheMeta
from transfer.second_process import SecondProcess
from transfer.timing import phase


def write_formats(
    model: keras.Model, meta: CacheMeta, out_dir: Path, *, model_file: Path, onnx: bool
) -> None:
    """Write every format but int8 (export_int8's) to `out_dir`: the SavedModel, the float,
    float16 and dynamic-range TFLite models and, if `onnx`, the ONNX model; and the Keras
    classifier to `model_file`."""
    serve = serving_function(model)  # traced once, for all
    with phase("export: SavedModel"):
        export_saved_model(serve, list(meta.classes), meta.image_size, meta.jpeg_quality, out_dir)
    with phase("export: float TFLite"):
        (out_dir / TFLITE_FLOAT).write_bytes(to_tflite(serve))
    with phase("export: float16 TFLite"):
        (out_dir / TFLITE_FLOAT16).write_bytes(convert_weights_only(serve, tf.float16))
    with phase("export: dynamic-range TFLite"):
        (out_dir / TFLITE_DYNAMIC_RANGE).write_bytes(convert_weights_only(serve, tf.int8))
    if onnx:
        with phase("export: ONNX"):
            export_onnx(model, out_dir / ONNX_FILE)
    with phase("save models"):
        save_model(model, model_file)


def check_formats(
    model: keras.Model,
    names: list[str],
    out_dir: Path,
    test_files: list[Path],
    *,
    count: int,
    batch_size: int,
    reference_batch_size: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
    """({"keras": the classifier's probabilities, and each format's but int8's (checked in
    its own process)}, labels, the loaded SavedModel) on the first `count` test images.

    Keras and the SavedModel run in batches of `reference_batch_size` (backbone.batch_size),
    the rest in batches of `batch_size`, in a thread beside them: LiteRT and ONNX Runtime
    release the GIL, so their checks keep a core busy while TensorFlow runs.
    """
    classes = model.output_shape[-1]

    def run(name: str, served: Any, size: int) -> np.ndarray:
        path = out_dir / FORMAT_FILES[name]
        return predict_format(
            name, path, served, test_files, count=count, batch_size=size, classes=classes
        )

    beside = [name for name in names if FORMAT_FILES[name] not in (SAVED_MODEL, TFLITE_INT8)]
    with ThreadPoolExecutor(1) as pool:
        futures = {name: pool.submit(run, name, None, batch_size) for name in beside}
        # The Keras classifier's own predictions, which every format must reproduce. Not the
        # test probabilities finetune wrote: those come from a TFLite conversion too
        # (backbone.engine: litert), so agreeing with them would not catch a bad conversion.
        with phase("export: Keras reference"):
            reference, labels = run_on_records(
                traced_call(model), classes, test_files, count, reference_batch_size
            )
        with phase("export: SavedModel checks"):
            served = tf.saved_model.load(str(out_dir / SAVED_MODEL))
            probabilities = {
                name: run(name, served, reference_batch_size)
                for name in names
                if FORMAT_FILES[name] == SAVED_MODEL
            }
        with phase("export: waiting for the other checks"):
            probabilities.update((name, future.result()) for name, future in futures.items())
    return {"keras": reference, **probabilities}, labels, served


def time_formats(
    names: list[str], out_dir: Path, served: object, test_files: list[Path], test_count: int
) -> dict[str, dict]:
    """Each format's size and latency (formats.serving_figures) on the first test images,
    timed one after the other, none beside other work: a latency is the model's own."""
    images = representative_images(test_files, min(test_count, LATENCY_IMAGES))
    encoded = encoded_test_images(test_files, len(images))
    return {
        name: serving_figures(name, out_dir / FORMAT_FILES[name], served, images, encoded)
        for name in names
    }


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
    its serving forms to `export_dir`; return each format's figures against the Keras
    classifier, which runs in batches of `reference_batch_size` (backbone.batch_size)."""
    batch_size = params.batch_size
    test_files, test_count = meta.split_files(cache_dir, "test"), meta.counts["test"]
    # The checks run on the first `check_images` test images (the records' seeded order: a
    # random sample): they catch a conversion that changes the predictions; the whole test
    # set's accuracy is evaluate's.
    check_count = min(test_count, params.check_images or test_count)
    names = [name for name in FORMAT_FILES if params.onnx or FORMAT_FILES[name] != ONNX_FILE]
    # The int8 model is converted, calibrated and checked in a second process, beside the
    # other formats here, each keeping a core busy; it starts first, to overlap the imports.
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
        write_formats(model, meta, out_dir, model_file=model_file, onnx=params.onnx)
        probabilities, labels, served = check_formats(
            model,
            names,
            out_dir,
            test_files,
            count=check_count,
            batch_size=batch_size,
            reference_batch_size=reference_batch_size,
        )
        with phase("export: waiting for int8"):
            probabilities["tflite_int8"] = int8_process.result()
        with phase("export: latency"):
            served_figures = time_formats(names, out_dir, served, test_files, test_count)
    return {
        name: {
            "file": FORMAT_FILES[name],
            **check_figures(probabilities[name], labels, probabilities["keras"]),
            **served_figures[name],
        }
        for name in names
    }
