"""Benchmark: where the int8 TFLite model departs from the float classifier, layer by layer.

    KERAS_HOME=/abs/path/to/keras python -m bench.int8_layers REPO [--calibration 32]
        [--images 128] [--float-layers 0 5 20]

REPO is a pipeline repo after `dvc repro` (its models/model.keras and data/cache/). TFLite's
quantization debugger (tf.lite.experimental.QuantizationDebugger) converts the classifier
with the export's int8 settings and calibration, runs the first test images through it and
compares every quantized tensor with its float value: printed, the tensors furthest off in
quantization steps (RMSE / scale) and the error's growth through the network. Then, for each
--float-layers count, the int8 model with that many of the worst layers kept in float: its
agreement with the float classifier on those images, and its size.
"""

import argparse
import csv
import io
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from transfer.export.tflite import int8_converter, representative_images
from transfer.litert import LiteRTModel
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.files import load_model
from transfer.paths import CACHE_DIR, MODEL_FILE


def layer_errors(debugger: tf.lite.experimental.QuantizationDebugger) -> list[dict]:
    """Each quantized tensor's statistics, in the model's order, with its RMSE in scales."""
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = list(csv.DictReader(io.StringIO(dump.getvalue())))
    for row in rows:
        row["steps"] = math.sqrt(float(row["mean_squared_error"])) / float(row["scale"])
    return rows


def agreement(content: bytes, images: np.ndarray, expected: np.ndarray) -> float:
    """The share of `images` whose top class the TFLite model gives as `expected` does."""
    probabilities = LiteRTModel(content, 8)(images)[0]
    return float(np.mean(probabilities.argmax(axis=1) == expected.argmax(axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path, help="a pipeline repo after dvc repro")
    parser.add_argument("--calibration", type=int, default=32, help="training images")
    parser.add_argument("--images", type=int, default=128, help="test images compared")
    parser.add_argument("--float-layers", type=int, nargs="+", default=[0, 5, 20])
    args = parser.parse_args()
    classifier = load_model(args.repo / MODEL_FILE)
    meta = read_cache_meta(args.repo / CACHE_DIR)
    train_files = meta.split_files(args.repo / CACHE_DIR, "train")
    calibration = representative_images(train_files, args.calibration)
    test = representative_images(meta.split_files(args.repo / CACHE_DIR, "test"), args.images)
    expected = classifier.predict(test.astype(np.float32), batch_size=16, verbose=0)

    converter = int8_converter(classifier, calibration, 8)
    debug_images = [test[i : i + 1].astype(np.float32) for i in range(len(test))]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([image] for image in debug_images)
    )
    debugger.run()
    rows = layer_errors(debugger)
    print(f"{len(rows)} quantized tensors; RMSE in quantization steps, in the model's order:")
    for index in np.linspace(0, len(rows) - 1, 12).astype(int):
        row = rows[index]
        print(f"  {index:4d} {row['op_name']:<22} {row['steps']:8.3f}  {row['tensor_name'][:70]}")
    worst = sorted(rows, key=lambda row: row["steps"], reverse=True)
    print("the furthest off:")
    for row in worst[:10]:
        print(f"  {row['op_name']:<22} {row['steps']:8.3f}  {row['tensor_name'][:70]}")

    for count in args.float_layers:
        denied = [row["tensor_name"] for row in worst[:count]]
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied)
        selective = tf.lite.experimental.QuantizationDebugger(
            converter=int8_converter(classifier, calibration, 8),
            debug_dataset=lambda: ([image] for image in debug_images[:1]),
            debug_options=options,
        )
        content = selective.get_nondebug_quantized_model()
        # The debugger's model takes float pixels: compare on the same images.
        share = agreement(content, test.astype(np.float32), expected)
        print(f"{count:3d} worst layers in float: agreement {share:.4f}, {len(content)} bytes")


if __name__ == "__main__":
    main()
