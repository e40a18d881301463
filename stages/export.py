"""Export the classifier for serving: TensorFlow SavedModel, TFLite float and int8, labels."""

import os
from itertools import islice
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.predictions import read_images
from stages.tfdata import make_dataset

SAVED_MODEL = "saved_model"
TFLITE_FLOAT = "model_float.tflite"
TFLITE_INT8 = "model_int8.tflite"
LABELS = "labels.txt"


def save_serving_model(model: keras.Model, directory: Path) -> None:
    """A SavedModel whose `serve` (and `serving_default`) signature maps raw pixels to
    probabilities: what `model.export` writes, without its walk over every object the model
    tracks, which takes longer than the rest of the export (MobileNetV2, 224 px, 2-core CPU:
    10.9 s against 4.0 s).
    """
    serve = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")],
        autograph=False,
    )
    signature = serve.get_concrete_function()
    root = tf.Module()
    root.serve = serve
    root.model_variables = list(signature.variables)  # saved with the graph that reads them
    tf.saved_model.save(
        root, str(directory), signatures={"serve": signature, "serving_default": signature}
    )


def export_saved_model(model: keras.Model, classes: list[str], out_dir: Path) -> None:
    """Write the SavedModel, which the TFLite conversions start from, and labels.txt."""
    save_serving_model(model, out_dir / SAVED_MODEL)
    (out_dir / LABELS).write_text("".join(f"{name}\n" for name in classes))


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


def representative_images(files: list[Path], n_classes: int, count: int) -> np.ndarray:
    """The first `count` images of a split (uint8), in the cached order, for int8 calibration."""
    pixels = [batch.numpy() for batch, _ in islice(make_dataset(files, n_classes, 1), count)]
    return np.concatenate(pixels).astype(np.uint8)


def int8_test_probabilities(
    out_dir: Path,
    train_files: list[Path],
    test_files: list[Path],
    n_classes: int,
    calibration_images: int,
    batch_size: int,
) -> np.ndarray:
    """Convert the int8 model (calibrated on the first `calibration_images` training images)
    and return its class probabilities for the test images, in the cached order."""
    representative = representative_images(train_files, n_classes, calibration_images)
    convert_int8(out_dir, representative, batch_size)
    images, _, _ = read_images(test_files, n_classes, batch_size)
    return tflite_predict(out_dir / TFLITE_INT8, images, batch_size)


def tflite_predict(model_file: Path, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Class probabilities of a TFLite model for N x H x W x 3 raw pixels, a batch at a time."""
    interpreter = tf.lite.Interpreter(model_path=str(model_file), num_threads=os.cpu_count())
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    results = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        if source["dtype"] != np.float32:
            scale, zero_point = source["quantization"]
            info = np.iinfo(source["dtype"])
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()  # a no-op unless the batch's size changed
        interpreter.set_tensor(source["index"], batch.astype(source["dtype"]))
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"]).astype(np.float32)
        if target["dtype"] != np.float32:
            scale, zero_point = target["quantization"]
            output = (output - zero_point) * scale
        results.append(output)
    return np.concatenate(results)
