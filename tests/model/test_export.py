"""The export's pieces on a tiny random model: the assembled classifier, the SavedModel and
both TFLite models."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from transfer.export.serving import export_saved_model, save_serving_model
from transfer.export.tflite import convert_int8
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.models.factories import (
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.models.files import load_classifier, save_model
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


def test_a_head_only_classifier_is_the_head_on_the_extractors_features(
    classifier: keras.Model, tmp_path: Path
) -> None:
    """With no fine-tuned model, export assembles the classifier from the extractor and the
    head: on images it predicts what the head predicts on their features."""
    extractor, head = classifier.get_layer(EXTRACTOR_LAYER), classifier.get_layer(HEAD_LAYER)
    save_model(extractor, tmp_path / "extractor.keras")
    save_model(head, tmp_path / "head.keras")
    assembled = load_classifier([tmp_path / "extractor.keras", tmp_path / "head.keras"])
    pixels = images().astype(np.float32)
    on_features = head.predict(extractor.predict(pixels, verbose=0), verbose=0)
    on_images = assembled.predict(pixels, verbose=0)
    assert not np.allclose(on_images, on_images[0])  # the images get different answers
    np.testing.assert_allclose(on_images, on_features, rtol=1e-5, atol=1e-7)
    # A fine-tuned model, when there is one, is the classifier as it is.
    save_model(classifier, tmp_path / "tuned.keras")
    loaded = load_classifier([tmp_path / "tuned.keras"])
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), on_images, rtol=1e-6)


def test_the_saved_model_serves_the_classifiers_probabilities(
    classifier: keras.Model, tmp_path: Path
) -> None:
    save_serving_model(serving_function(classifier), tmp_path / "saved_model")
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    pixels = images().astype(np.float32)
    expected = classifier.predict(pixels, verbose=0)
    np.testing.assert_allclose(served.serve(pixels).numpy(), expected, rtol=1e-5, atol=1e-7)
    outputs = served.signatures["serving_default"](image=tf.constant(pixels))
    np.testing.assert_allclose(outputs["output_0"].numpy(), expected, rtol=1e-5, atol=1e-7)


def test_both_tflite_models_convert_and_the_float_one_matches_keras(
    classifier: keras.Model, tmp_path: Path
) -> None:
    serve = serving_function(classifier)
    export_saved_model(serve, ["a", "b", "c"], tmp_path)
    (tmp_path / "float.tflite").write_bytes(to_tflite(serve))
    # Calibrated in batches of 2, 2 and 1.
    (tmp_path / "int8.tflite").write_bytes(convert_int8(classifier, images()[:5], batch_size=2))
    pixels = images()
    expected = classifier.predict(pixels.astype(np.float32), verbose=0)
    float_output = LiteRTModel((tmp_path / "float.tflite").read_bytes(), 4)(pixels)[0]
    np.testing.assert_allclose(float_output, expected, rtol=1e-4, atol=1e-6)
    int8_output = LiteRTModel((tmp_path / "int8.tflite").read_bytes(), 4)(pixels)[0]
    assert int8_output.shape == expected.shape
    np.testing.assert_allclose(int8_output.sum(axis=1), 1.0, atol=0.02)
    assert (tmp_path / "labels.txt").read_text() == "a\nb\nc\n"
