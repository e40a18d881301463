"""Evaluation's shortcut for head-only models, and the serving export, on a tiny random model."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from transfer.evaluation.predictions import classify_split
from transfer.export.serving import export_saved_model, save_serving_model
from transfer.export.tflite import (
    TFLITE_FLOAT,
    TFLITE_INT8,
    convert_float,
    convert_int8,
    tflite_predict,
)
from transfer.features import features_file, labels_file
from transfer.models.factories import (
    BACKBONE_LAYER,
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.models.files import save_model
from transfer.params import HeadParams

pytestmark = pytest.mark.model
SIZE = 32


@pytest.fixture
def classifier() -> keras.Model:
    """VGG16: with random weights, its features still tell images apart (MobileNetV2's vanish)."""
    keras.utils.set_random_seed(0)
    extractor = build_feature_extractor("VGG16", SIZE, None)
    return build_classifier(extractor, build_head(extractor.output_shape[-1], 3, HeadParams()))


def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, SIZE, SIZE, 3)).astype(np.uint8)


def test_a_head_only_model_is_classified_from_the_cached_features(
    classifier: keras.Model, tmp_path: Path
) -> None:
    extractor, head = classifier.get_layer(EXTRACTOR_LAYER), classifier.get_layer(HEAD_LAYER)
    save_model(extractor, tmp_path / "extractor.keras")
    pixels, labels = images(), np.arange(10) % 3
    features = extractor.predict(pixels.astype(np.float32), verbose=0)
    np.save(labels_file(tmp_path, "test"), labels)

    def classify() -> np.ndarray:
        return classify_split(
            classifier, tmp_path / "extractor.keras", tmp_path, "test", pixels, labels, 4
        )

    full_forward = classifier.predict(pixels.astype(np.float32), verbose=0)
    assert not np.allclose(full_forward, full_forward[0])  # the images get different answers
    np.save(features_file(tmp_path, "test"), features)
    np.testing.assert_allclose(classify(), full_forward, rtol=1e-5, atol=1e-7)
    # What it classified were the cached features: swapped for zeros, the head sees zeros.
    zeros = np.zeros_like(features)
    np.save(features_file(tmp_path, "test"), zeros)
    np.testing.assert_allclose(classify(), head.predict(zeros, verbose=0), rtol=1e-6)

    # Fine-tuned (a backbone weight changed): the images go through the whole model.
    backbone = extractor.get_layer(BACKBONE_LAYER)
    top = next(layer for layer in reversed(backbone.layers) if layer.get_weights())
    top.set_weights([weight + 0.5 for weight in top.get_weights()])
    tuned = classifier.predict(pixels.astype(np.float32), verbose=0)
    assert not np.allclose(tuned, full_forward)
    np.testing.assert_allclose(classify(), tuned, rtol=1e-5, atol=1e-7)


def test_the_saved_model_serves_the_classifiers_probabilities(
    classifier: keras.Model, tmp_path: Path
) -> None:
    save_serving_model(classifier, tmp_path / "saved_model")
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    pixels = images().astype(np.float32)
    expected = classifier.predict(pixels, verbose=0)
    np.testing.assert_allclose(served.serve(pixels).numpy(), expected, rtol=1e-5, atol=1e-7)
    outputs = served.signatures["serving_default"](image=tf.constant(pixels))
    np.testing.assert_allclose(outputs["output_0"].numpy(), expected, rtol=1e-5, atol=1e-7)


def test_both_tflite_models_convert_and_the_float_one_matches_keras(
    classifier: keras.Model, tmp_path: Path
) -> None:
    export_saved_model(classifier, ["a", "b", "c"], tmp_path)
    convert_float(tmp_path)
    convert_int8(tmp_path, images()[:5], batch_size=2)  # calibrated in batches of 2, 2 and 1
    pixels = images()
    expected = classifier.predict(pixels.astype(np.float32), verbose=0)
    float_output = tflite_predict(tmp_path / TFLITE_FLOAT, pixels, batch_size=4)
    np.testing.assert_allclose(float_output, expected, rtol=1e-4, atol=1e-6)
    int8_output = tflite_predict(tmp_path / TFLITE_INT8, pixels, batch_size=4)
    assert int8_output.shape == expected.shape
    np.testing.assert_allclose(int8_output.sum(axis=1), 1.0, atol=0.02)
    assert (tmp_path / "labels.txt").read_text() == "a\nb\nc\n"
