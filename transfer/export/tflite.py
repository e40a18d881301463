"""TFLite float and int8 models converted from the classifier, and running them by LiteRT."""

from itertools import islice
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from transfer.export.selective import selective_int8
from transfer.inference import run_on_records
from transfer.litert import LiteRTModel, serving_function
from transfer.tfdata import make_dataset

TFLITE_FLOAT = "model_float.tflite"
TFLITE_INT8 = "model_int8.tflite"


def convert_int8(model: keras.Model, representative: np.ndarray, batch_size: int) -> bytes:
    """The int8 TFLite model, uint8 pixels in, MobileNetV2's worst layers left in float
    (transfer.export.selective).

    `representative` holds N x H x W x 3 raw training pixels; they calibrate the value ranges
    in batches of `batch_size`, which is faster than one image at a time. Calibration runs
    the float model on every one of them with TFLite's reference kernels, about 76 ms per
    MobileNetV2 image on a 2-core Xeon: most of the conversion's time.
    """
    return selective_int8(model, representative, batch_size)


def int8_converter(
    model: keras.Model, representative: np.ndarray, batch_size: int
) -> tf.lite.TFLiteConverter:
    """A converter to a full-int8 model, uint8 pixels in: every layer quantized, as
    convert_int8 did before it left some in float (for TFLite's quantization debugger too)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving_function(model).get_concrete_function()]
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [representative[start : start + batch_size].astype(np.float32)]
        for start in range(0, len(representative), batch_size)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # a phone's camera gives 8-bit pixels
    return converter


def representative_images(files: list[Path], count: int) -> np.ndarray:
    """The first `count` images of a split (uint8), in the cached order, for int8 calibration."""
    pixels = [batch.numpy() for batch, _ in islice(make_dataset(files, 1), count)]
    return np.concatenate(pixels).astype(np.uint8)


def tflite_predict_records(
    model_file: Path, files: list[Path], count: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities, labels) of a TFLite model for the first `count` TFRecord images
    of a split, in the cached order; the images stream through."""
    model = LiteRTModel(model_file.read_bytes(), batch_size)
    width = int(model.outputs[0]["shape"][-1])
    return run_on_records(lambda batch: model(batch)[0], width, files, count, batch_size)


def export_int8(
    model: keras.Model,
    out_dir: Path,
    calibration: np.ndarray,
    *,
    test_files: list[Path],
    test_count: int,
    batch_size: int,
) -> np.ndarray:
    """Write the int8 model of the classifier, calibrated on the `calibration` images
    (representative_images), and return its class probabilities for the first `test_count`
    test images."""
    (out_dir / TFLITE_INT8).write_bytes(convert_int8(model, calibration, batch_size))
    probabilities, _ = tflite_predict_records(
        out_dir / TFLITE_INT8, test_files, test_count, batch_size
    )
    return probabilities
