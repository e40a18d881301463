"""Every exported format, named once: its file in models/export/ and how it runs, so that
each one is checked the same way (checks.py) and reported in one table."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.export.checks import (
    LATENCY_IMAGES,
    encoded_test_images,
    file_bytes,
    median_ms,
    predict_encoded,
)
from transfer.export.onnx_model import ONNX_FILE, OnnxModel
from transfer.export.serving import SAVED_MODEL
from transfer.export.tflite import TFLITE_FLOAT, TFLITE_INT8, representative_images
from transfer.export.weights_only import TFLITE_DYNAMIC_RANGE, TFLITE_FLOAT16
from transfer.inference import run_on_records, traced_call
from transfer.litert import LiteRTModel, available_cores
from transfer.timing import phase

# The table's rows and their files; both SavedModel signatures read one directory.
FORMAT_FILES = {
    "saved_model": SAVED_MODEL,  # serving_default: float pixels
    "saved_model_bytes": SAVED_MODEL,  # classify_image_bytes: the cached JPEGs' bytes
    "tflite_float": TFLITE_FLOAT,
    "tflite_float16": TFLITE_FLOAT16,
    "tflite_dynamic_range": TFLITE_DYNAMIC_RANGE,
    "tflite_int8": TFLITE_INT8,
    "onnx": ONNX_FILE,
}
TAKES_BYTES = frozenset({"saved_model_bytes"})  # the rest take pixels


def saved_model_call(served: Any, name: str) -> Callable[[Any], np.ndarray]:
    """The probabilities of a loaded SavedModel's signature: serving_default on float pixels,
    classify_image_bytes (for `saved_model_bytes`) on a batch of encoded photos."""
    if name in TAKES_BYTES:
        signature = served.signatures["classify_image_bytes"]
        return lambda data: signature(image_bytes=tf.constant(data))["probabilities"].numpy()
    signature = served.signatures["serving_default"]
    return lambda pixels: signature(image=tf.constant(pixels, tf.float32))["probabilities"].numpy()


def format_call(
    name: str, path: Path, served: Any, *, batch_size: int, threads: int | None
) -> Callable[[Any], np.ndarray] | None:
    """A format's probabilities for a batch, on `threads` threads (None: every core). The
    SavedModel's are `served`'s (tf.saved_model.load), on every core only: TensorFlow sets
    its threads once per process, so on one thread there is no call (None)."""
    if FORMAT_FILES[name] == SAVED_MODEL:
        return None if threads == 1 else saved_model_call(served, name)
    if FORMAT_FILES[name] == ONNX_FILE:
        model = OnnxModel(path.read_bytes(), threads or available_cores())
        return lambda batch: model(batch)[0]
    tflite = LiteRTModel(path.read_bytes(), batch_size, threads)
    return lambda batch: tflite(batch)[0]


def predict_format(
    name: str,
    path: Path,
    served: Any,
    files: list[Path],
    *,
    count: int,
    batch_size: int,
    classes: int,
) -> np.ndarray:
    """A format's probabilities of the `classes` classes for the first `count` test images
    of the TFRecord `files`, in batches of `batch_size`: on their pixels, or on their cached
    JPEGs' bytes."""
    call = format_call(name, path, served, batch_size=batch_size, threads=None)
    if name in TAKES_BYTES:
        return predict_encoded(call, classes, files, count=count, batch_size=batch_size)
    probabilities, _ = run_on_records(call, classes, files, count, batch_size)
    return probabilities


def predict_saved_model(
    directory: Path, files: list[Path], *, count: int, batch_size: int, served: Any = None
) -> dict[str, np.ndarray]:
    """predict_format for both signatures of the SavedModel in `directory`: `served`, that
    SavedModel already loaded (tf.saved_model.load), or None to load it here (in the second
    process)."""
    with phase("export: SavedModel checks"):
        served = tf.saved_model.load(str(directory)) if served is None else served
        signature = served.signatures["serving_default"]
        classes = signature.structured_outputs["probabilities"].shape[-1]
        return {
            name: predict_format(
                name, directory, served, files, count=count, batch_size=batch_size, classes=classes
            )
            for name in FORMAT_FILES
            if FORMAT_FILES[name] == SAVED_MODEL
        }


def serving_figures(
    name: str, path: Path, served: Any, *, images: np.ndarray, encoded: list[bytes]
) -> dict[str, float | int | None]:
    """What a user weighs before shipping a format: its size, and its median latency per
    image on one thread and on all the cores (null where it cannot be set)."""
    inputs = [[data] for data in encoded] if name in TAKES_BYTES else images[:, None]
    latencies = {}
    for key, threads in (("latency_ms_1_thread", 1), ("latency_ms_all_threads", None)):
        call = format_call(name, path, served, batch_size=1, threads=threads)
        latencies[key] = None if call is None else median_ms(call, inputs)
    return {"bytes": file_bytes(path), **latencies, "threads": available_cores()}


def check_formats(
    model: keras.Model,
    names: list[str],
    out_dir: Path,
    test_files: list[Path],
    *,
    count: int,
    batch_size: int,
    reference_batch_size: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({"keras": the classifier's probabilities, and each of `names`' (TFLite models)},
    labels) on the first `count` test images.

    Keras runs in batches of `reference_batch_size` (backbone.batch_size), the TFLite models
    in batches of `batch_size`, in a thread beside it: LiteRT releases the GIL, so their
    checks keep a core busy while TensorFlow runs.
    """
    classes = model.output_shape[-1]

    def run(name: str) -> np.ndarray:
        path = out_dir / FORMAT_FILES[name]
        return predict_format(
            name, path, None, test_files, count=count, batch_size=batch_size, classes=classes
        )

    with ThreadPoolExecutor(1) as pool:
        futures = {name: pool.submit(run, name) for name in names}
        # The Keras classifier's own predictions, which every format must reproduce. Not the
        # test probabilities finetune wrote: those come from a TFLite conversion too
        # (backbone.engine: litert), so agreeing with them would not catch a bad conversion.
        with phase("export: Keras reference"):
            reference, labels = run_on_records(
                traced_call(model), classes, test_files, count, reference_batch_size
            )
        with phase("export: waiting for the TFLite checks"):
            probabilities = {name: future.result() for name, future in futures.items()}
    return {"keras": reference, **probabilities}, labels


def time_formats(
    names: list[str], out_dir: Path, served: Any, *, test_files: list[Path], count: int
) -> dict[str, dict]:
    """Each format's size and latency (formats.serving_figures) on the first test images,
    timed one after the other, none beside other work: a latency is the model's own.
    `served`: the SavedModel of `out_dir`, loaded (tf.saved_model.load); `count`: the test
    images there are."""
    with phase("export: latency"):
        images = representative_images(test_files, min(count, LATENCY_IMAGES))
        encoded = encoded_test_images(test_files, len(images))
        return {
            name: serving_figures(
                name, out_dir / FORMAT_FILES[name], served, images=images, encoded=encoded
            )
            for name in names
        }
