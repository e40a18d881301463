"""Benchmark: the float16 and int8-weights TFLite models, TensorFlow's converter against LiteRT's
quantizer, and the int8 weights with and without bias correction (the export ships the
quantizer's float16 and its bias-corrected int8 weights), on all test images.

    KERAS_HOME=/abs/path/to/keras python -m bench.weights_only REPO [--head-only]

REPO is a pipeline repo after `dvc repro`: its classifier (models/finetuned/model.keras, or
with --head-only the extractor and the head) and data/cache/. Each model runs on every test
image: its agreement with the Keras classifier's top class, its accuracy, the largest
probability difference, its size, the Keras top-2 gaps of the images whose answer changed
(near ties or not), and how long making it took.
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from bench.common import in_own_process, machine, raw_forward_speed
from transfer.evaluation.metrics import agreement_metrics
from transfer.export.tflite import representative_images
from transfer.export.weights_only import (
    TFLITE_DYNAMIC_RANGE,
    TFLITE_FLOAT16,
    int8_weights,
    weights_only,
)
from transfer.inference import run_on_records, traced_call
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.files import load_classifier
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FINETUNED_DIR, FINETUNED_MODEL, HEAD_FILE

BATCH = 8  # export.batch_size
CALIBRATION = 32  # export.calibration_images


def converter_model(serve: tf.types.experimental.PolymorphicFunction, weights: tf.DType) -> bytes:
    """TensorFlow's converter: float16 weights, or dynamic range (int8 weights, hybrid)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if weights == tf.float16:
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def figures(content: bytes, reference: np.ndarray, labels: np.ndarray, data: dict) -> dict:
    """A TFLite model's figures against Keras' `reference` on all test images."""
    model = LiteRTModel(content, BATCH)
    probabilities, _ = run_on_records(
        lambda batch: model(batch)[0], reference.shape[1], data["files"], data["count"], BATCH
    )
    changed = probabilities.argmax(axis=1) != reference.argmax(axis=1)
    top2 = np.sort(reference, axis=1)[:, -2:]
    gaps = np.sort(top2[changed, 1] - top2[changed, 0])
    return {
        **agreement_metrics(probabilities, labels, reference.argmax(axis=1)),
        "max_probability_difference": round(float(np.abs(probabilities - reference).max()), 4),
        "bytes": len(content),
        "changed_top2_gaps": [round(float(gap), 3) for gap in gaps],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path, help="a pipeline repo after dvc repro")
    parser.add_argument("--head-only", action="store_true", help="the extractor and the head")
    args = parser.parse_args()
    speed = in_own_process(raw_forward_speed)
    print(f"{args.repo}: {machine()}; raw Keras MobileNetV2 forward {speed:.1f} images/s")
    files = (
        [args.repo / EXTRACTOR_FILE, args.repo / HEAD_FILE]
        if args.head_only
        else [args.repo / FINETUNED_DIR / FINETUNED_MODEL]
    )
    model = load_classifier(files)
    meta = read_cache_meta(args.repo / CACHE_DIR)
    data = {"files": meta.split_files(args.repo / CACHE_DIR, "test"), "count": meta.counts["test"]}
    reference, labels = run_on_records(
        traced_call(model), meta.n_classes, data["files"], data["count"], BATCH
    )
    accuracy = np.mean(reference.argmax(axis=1) == labels)
    print(f"{data['count']} test images; Keras accuracy {accuracy:.4f}")
    serve = serving_function(model)
    float_content = to_tflite(serve)
    makers: dict[str, Callable[[], bytes]] = {
        "converter_float16": lambda: converter_model(serve, tf.float16),
        "quantizer_float16": lambda: weights_only(float_content, TFLITE_FLOAT16),
        "converter_dynamic_range": lambda: converter_model(serve, tf.int8),
        "quantizer_int8_weights": lambda: weights_only(float_content, TFLITE_DYNAMIC_RANGE),
        "quantizer_int8_weights_bias_corrected": lambda: int8_weights(
            model,
            representative_images(meta.split_files(args.repo / CACHE_DIR, "train"), CALIBRATION),
            BATCH,
        ),
    }
    for name, make in makers.items():
        start = time.perf_counter()
        content = make()
        seconds = round(time.perf_counter() - start, 1)
        row = {**figures(content, reference, labels, data), "make_s": seconds}
        print(f"{name:<24} " + "  ".join(f"{key} {value}" for key, value in row.items()))


if __name__ == "__main__":
    main()
