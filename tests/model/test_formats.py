"""Every exported format checked the same way, on a tiny trained classifier: float16 and
dynamic range agree with Keras, and each format's row of the table holds what it claims."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.model.test_export import SIZE, coloured_images
from transfer.export.checks import check_figures, encoded_test_images, file_bytes
from transfer.export.formats import FORMAT_FILES, predict_format, serving_figures
from transfer.export.onnx_model import ONNX_FILE, export_onnx
from transfer.export.serving import SAVED_MODEL, export_saved_model
from transfer.export.tflite import TFLITE_FLOAT, TFLITE_INT8, convert_int8
from transfer.export.weights_only import TFLITE_DYNAMIC_RANGE, TFLITE_FLOAT16, weights_only
from transfer.inference import run_on_records
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.models.factories import (
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.params import HeadParams

pytestmark = pytest.mark.model
# What the issue asks of the weight-only formats on real test sets; a tiny classifier that
# tells its classes apart clearly meets them (measured: 1.0 for both).
FLOAT16_AGREEMENT, DYNAMIC_RANGE_AGREEMENT = 0.99, 0.97


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    """A VGG16 classifier (random features, which still tell images apart) whose head has
    learned the three colours of coloured_images."""
    keras.utils.set_random_seed(0)
    extractor = build_feature_extractor("VGG16", SIZE, None)
    classifier = build_classifier(
        extractor, build_head(extractor.output_shape[-1], 3, HeadParams())
    )
    train, labels = coloured_images(60, 0)
    head = classifier.get_layer(HEAD_LAYER)
    features = classifier.get_layer(EXTRACTOR_LAYER).predict(train.astype(np.float32), verbose=0)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(features, labels, epochs=30, batch_size=16, verbose=0)
    return classifier


def test_float16_and_dynamic_range_agree_with_keras_at_a_fraction_of_the_size(
    trained: keras.Model,
) -> None:
    float32 = to_tflite(serving_function(trained))
    test, labels = coloured_images(60, 1)
    reference = trained.predict(test.astype(np.float32), verbose=0)
    assert np.mean(reference.argmax(axis=1) == labels) > 0.9  # it learned
    figures = {}
    for name in (TFLITE_FLOAT16, TFLITE_DYNAMIC_RANGE):
        content = weights_only(float32, name)
        assert weights_only(float32, name) == content  # the same bytes each time
        probabilities = LiteRTModel(content, 4)(test)[0]
        figures[name] = {**check_figures(probabilities, labels, reference), "size": len(content)}
    assert figures[TFLITE_FLOAT16]["agreement"] >= FLOAT16_AGREEMENT
    assert figures[TFLITE_DYNAMIC_RANGE]["agreement"] >= DYNAMIC_RANGE_AGREEMENT
    # float16 halves the weights and keeps float's probabilities; int8 weights quarter them.
    assert 0.45 < figures[TFLITE_FLOAT16]["size"] / len(float32) < 0.55
    assert figures[TFLITE_FLOAT16]["max_probability_difference"] < 0.01
    assert 0.2 < figures[TFLITE_DYNAMIC_RANGE]["size"] / len(float32) < 0.3
    with pytest.raises(ValueError, match="no weights-only format"):
        weights_only(float32, TFLITE_FLOAT)


def test_each_format_is_checked_on_the_test_records_against_keras(
    trained: keras.Model, shards: list[Path], tmp_path: Path
) -> None:
    """Every row of the table: the format's probabilities on the cached test images (their
    JPEGs' bytes for classify_image_bytes), its size and its latency."""
    serve = serving_function(trained)
    export_saved_model(serve, ["r", "g", "b"], SIZE, 95, tmp_path)
    float32 = to_tflite(serve)
    (tmp_path / TFLITE_FLOAT).write_bytes(float32)
    for name in (TFLITE_FLOAT16, TFLITE_DYNAMIC_RANGE):
        (tmp_path / name).write_bytes(weights_only(float32, name))
    pixels, _ = coloured_images(8, 0)
    (tmp_path / TFLITE_INT8).write_bytes(convert_int8(trained, pixels, batch_size=4))
    served = tf.saved_model.load(str(tmp_path / SAVED_MODEL))
    reference, labels = run_on_records(serve, 3, shards, 20, 8)
    images = np.stack([tf.io.decode_jpeg(d).numpy() for d in encoded_test_images(shards, 3)])
    names = [name for name in FORMAT_FILES if name != "onnx"]
    for name in names:
        path = tmp_path / FORMAT_FILES[name]
        probabilities = predict_format(
            name, path, served, shards, count=20, batch_size=8, classes=3
        )
        figures = check_figures(probabilities, labels, reference)
        assert figures["images"] == 20
        assert figures["agreement"] == 1.0, (name, figures)
        if name in ("saved_model", "tflite_float"):  # the same float computation
            assert figures["max_probability_difference"] < 1e-4, (name, figures)
        served_figures = serving_figures(
            name, path, served, images=images, encoded=encoded_test_images(shards, 3)
        )
        assert served_figures["bytes"] == file_bytes(path) > 0
        assert 0 < served_figures["latency_ms_all_threads"] < 1000
        one_thread = served_figures["latency_ms_1_thread"]
        assert (one_thread is None) == (FORMAT_FILES[name] == SAVED_MODEL), name
    # The SavedModel's size is its directory's: its float32 weights, as the float model's.
    assert file_bytes(tmp_path / SAVED_MODEL) > file_bytes(tmp_path / TFLITE_FLOAT)


def test_the_onnx_model_agrees_with_keras(
    trained: keras.Model, shards: list[Path], tmp_path: Path
) -> None:
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    export_onnx(trained, tmp_path / ONNX_FILE)
    reference, labels = run_on_records(serving_function(trained), 3, shards, 20, 8)
    served = None  # the ONNX model needs no SavedModel
    probabilities = predict_format(
        "onnx", tmp_path / ONNX_FILE, served, shards, count=20, batch_size=8, classes=3
    )
    figures = check_figures(probabilities, labels, reference)
    assert figures["agreement"] == 1.0
    assert figures["max_probability_difference"] < 1e-4
    figures = serving_figures(
        "onnx", tmp_path / ONNX_FILE, served, images=np.zeros((2, SIZE, SIZE, 3)), encoded=[]
    )
    assert 0 < figures["latency_ms_1_thread"] < 1000
