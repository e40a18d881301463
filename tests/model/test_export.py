"""The export's pieces on a tiny random model: the assembled classifier, the SavedModel and
both TFLite models."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import WITHOUT_THE_PROJECT, run_without_the_project
from transfer.export.serving import decode_resized, export_saved_model
from transfer.export.tflite import convert_int8, int8_converter
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.models.factories import (
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    PROBABILITIES_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.models.files import load_classifier, save_model
from transfer.params import HeadParams
from transfer.records.encoding import resize_jpeg

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


# Run in a fresh interpreter that cannot import this project, as TensorFlow Serving or a
# user's script would: both signatures of a SavedModel on pixels and on encoded photos.
PLAIN_TENSORFLOW_SERVE = (
    WITHOUT_THE_PROJECT
    + """
from pathlib import Path

import numpy as np
import tensorflow as tf

served = tf.saved_model.load(sys.argv[1])
pixels = np.load(sys.argv[2])
photos = [Path(name).read_bytes() for name in sys.argv[4:]]
by_pixels = served.signatures["serving_default"](image=tf.constant(pixels))
by_bytes = served.signatures["classify_image_bytes"](image_bytes=tf.constant(photos))
np.savez(sys.argv[3], **{f"pixels_{k}": v.numpy() for k, v in by_pixels.items()},
         **{f"bytes_{k}": v.numpy() for k, v in by_bytes.items()})
"""
)
# How far the SavedModel's decoding and resizing (TensorFlow's antialiased bilinear, then the
# same JPEG round trip as the cache) may move a pixel from the pipeline's (Pillow's resize):
# measured 0.8 to 1.5 levels on average over these photos, 11 at most.
MEAN_PIXEL_TOLERANCE = 2.0


def test_the_saved_model_serves_pixels_and_encoded_photos_with_named_outputs(
    classifier: keras.Model, tmp_path: Path
) -> None:
    """Loaded by plain TensorFlow: pixels give the classifier's probabilities; photos, as
    bytes, give the classifier's probabilities on the photos decoded and resized in the
    graph, which differ from the pipeline's by what the resize explains."""
    output = classifier.get_layer(HEAD_LAYER).get_layer(PROBABILITIES_LAYER)
    kernel, bias = output.get_weights()
    output.set_weights([kernel * 30, bias])  # more confident: the photos' answers differ
    export_saved_model(serving_function(classifier), ["a", "b", "c"], SIZE, 95, tmp_path)
    photos = []
    shapes = [(48, ".jpg"), (64, ".jpg"), (20, ".png"), (40, ".png"), (33, ".jpg")]
    for index, (side, suffix) in enumerate(shapes):
        coarse = np.random.default_rng(index).integers(0, 256, (5, 6, 3)).astype(np.uint8)
        photo = Image.fromarray(coarse).resize((side + 8, side), Image.Resampling.BICUBIC)
        photos.append(tmp_path / f"photo{index}{suffix}")  # smooth, as photos are
        photo.save(photos[-1])
    data = [photo.read_bytes() for photo in photos]
    # The pipeline's pixels: resized and stored as the cache does.
    cached = np.stack([tf.io.decode_jpeg(resize_jpeg(d, SIZE, 95)).numpy() for d in data])
    in_graph = np.stack([decode_resized(tf.constant(d), SIZE, 95).numpy() for d in data])
    pixel_gap = np.abs(in_graph - cached.astype(np.float32)).mean(axis=(1, 2, 3))
    assert pixel_gap.max() < MEAN_PIXEL_TOLERANCE, pixel_gap
    expected = classifier.predict(cached.astype(np.float32), verbose=0)
    np.save(tmp_path / "pixels.npy", cached.astype(np.float32))
    args = [str(tmp_path / "saved_model"), "pixels.npy", "served.npz", *map(str, photos)]
    run_without_the_project(PLAIN_TENSORFLOW_SERVE, args, tmp_path)
    served = np.load(tmp_path / "served.npz", allow_pickle=True)
    np.testing.assert_allclose(served["pixels_probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, expected[0], atol=1e-3)  # the photos get other answers
    on_graph_pixels = classifier.predict(in_graph, verbose=0)
    np.testing.assert_allclose(served["bytes_probabilities"], on_graph_pixels, atol=1e-5)
    for prefix in ("pixels", "bytes"):
        index = served[f"{prefix}_class_index"]
        np.testing.assert_array_equal(index, served[f"{prefix}_probabilities"].argmax(axis=1))
        labels = [label.decode() for label in served[f"{prefix}_class_label"]]
        assert labels == [["a", "b", "c"][i] for i in index]


def test_both_tflite_models_convert_and_the_float_one_matches_keras(
    classifier: keras.Model, tmp_path: Path
) -> None:
    serve = serving_function(classifier)
    export_saved_model(serve, ["a", "b", "c"], SIZE, 95, tmp_path)
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


def coloured_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels): three classes of one dominant colour each, noisy."""
    random = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])
    pixels = colours[labels][:, None, None, :] + random.normal(0, 30, (count, SIZE, SIZE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), labels


def int8_agreement(content: bytes, classifier: keras.Model, test: np.ndarray) -> float:
    int8 = LiteRTModel(content, 4)(test)[0]
    reference = classifier.predict(test.astype(np.float32), verbose=0)
    return float(np.mean(int8.argmax(axis=1) == reference.argmax(axis=1)))


# A classifier that tells the classes apart clearly agrees with its int8 model on all or
# almost all of them (measured: 1.0); a conversion or a calibration that goes wrong does not.
INT8_AGREEMENT = 0.9


def test_the_int8_model_agrees_with_a_classifier_that_tells_the_classes_apart(
    classifier: keras.Model,
) -> None:
    train, labels = coloured_images(60, 0)
    test, _ = coloured_images(60, 1)
    extractor = classifier.get_layer(EXTRACTOR_LAYER)
    head = classifier.get_layer(HEAD_LAYER)
    features = extractor.predict(train.astype(np.float32), verbose=0)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(features, labels, epochs=30, batch_size=16, verbose=0)
    reference = classifier.predict(test.astype(np.float32), verbose=0)
    assert np.mean(reference.argmax(axis=1) == np.arange(60) % 3) > 0.9  # it learned
    shipped = convert_int8(classifier, train[:16], batch_size=4)
    assert int8_agreement(shipped, classifier, test) >= INT8_AGREEMENT
    # Calibrated on images unlike those it will see, the same model (every layer int8, one
    # conversion) falls below it: the threshold catches a calibration gone wrong.
    dark = (train[:16] // 16).astype(np.uint8)
    miscalibrated = int8_converter(classifier, dark, batch_size=4).convert()
    assert int8_agreement(miscalibrated, classifier, test) < INT8_AGREEMENT
