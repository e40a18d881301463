"""TFLite float and int8 models converted from the SavedModel, and running them."""

from itertools import islice
from pathlib import Path

import numpy as np
import tensorflow as tf

from transfer.evaluation.predictions import read_images
from transfer.export.serving import SAVED_MODEL
from transfer.inference import predict_array
from transfer.litert import LiteRTModel
from transfer.tfdata import make_dataset

TFLITE_FLOAT = "model_float.tflite"
TFLITE_INT8 = "model_int8.tflite"


def convert_float(out_dir: Path) -> None:
    """Write the float TFLite model, converted from out_dir's SavedModel."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(out_dir / SAVED_MODEL))
    (out_dir / TFLITE_FLOAT).write_bytes(converter.convert())


def convert_int8(out_dir: Path, representative: np.ndarray, batch_size: int) -> None:
    """Write the int8 TFLite model, converted from out_dir's SavedModel.

    `representative` holds N x H x W x 3 raw training pixels; they calibrate the value ranges
    in batches of `batch_size`, which is faster than one image at a time.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(out_dir / SAVED_MODEL))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [representative[start : start + batch_size].astype(np.float32)]
        for start in range(0, len(representative), batch_size)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # a phone's camera gives 8-bit pixels
    (out_dir / TFLITE_INT8).write_bytes(converter.convert())


def representative_images(files: list[Path], count: int) -> np.ndarray:
    """The first `count` images of a split (uint8), in the cached order, for int8 calibration."""
    pixels = [batch.numpy() for batch, _ in islice(make_dataset(files, 1), count)]
    return np.concatenate(pixels).astype(np.uint8)


def int8_test_probabilities(
    out_dir: Path,
    train_files: list[Path],
    test_files: list[Path],
    calibration_images: int,
    batch_size: int,
) -> np.ndarray:
    """Convert the int8 model (calibrated on the first `calibration_images` training images)
    and return its class probabilities for the test images, in the cached order."""
    representative = representative_images(train_files, calibration_images)
    convert_int8(out_dir, representative, batch_size)
    images, _, _ = read_images(test_files, batch_size)
    return tflite_predict(out_dir / TFLITE_INT8, images, batch_size)


def tflite_predict(model_file: Path, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Class probabilities of a TFLite model for N x H x W x 3 raw pixels, run by LiteRT."""
    model = LiteRTModel(model_file.read_bytes(), batch_size)
    width = int(model.outputs[0]["shape"][-1])
    return predict_array(lambda batch: model(batch)[0], images, width, batch_size)
