"""The int8 model with MobileNetV2's worst layers left in float, on a tiny random classifier."""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from transfer.export.selective import FLOAT_LAYERS, selective_int8
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.models.factories import build_classifier, build_feature_extractor, build_head
from transfer.params import HeadParams

pytestmark = pytest.mark.model
SIZE = 32


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    extractor = build_feature_extractor("MobileNetV2", SIZE, None)
    return build_classifier(extractor, build_head(extractor.output_shape[-1], 3, HeadParams()))


def images(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (6, SIZE, SIZE, 3)).astype(np.uint8)


def float_activations(content: bytes) -> set[str]:
    """The Keras layers whose activation (a ReLU6's output, the op it ends) is a float tensor."""
    details = Interpreter(model_content=content).get_tensor_details()
    names = [d["name"].split(";")[0] for d in details if d["dtype"] == np.float32]
    return {name.split("/")[-2].removesuffix("_relu_1") for name in names if "_relu_1/" in name}


def test_the_worst_layers_run_in_float_on_uint8_pixels(classifier: keras.Model) -> None:
    content = selective_int8(classifier, images(0), batch_size=4)
    interpreter = Interpreter(model_content=content)
    pixels = interpreter.get_input_details()[0]
    assert pixels["dtype"] == np.uint8 and pixels["quantization"] == (0.0, 0)  # raw pixels
    # Those layers, and only those, run in float beyond what the quantizer leaves in float
    # anyway (activations that random weights leave constant).
    full_int8 = selective_int8(classifier, images(0), batch_size=4, float_layers=())
    assert float_activations(content) - float_activations(full_int8) == set(FLOAT_LAYERS)
    assert len(content) < len(to_tflite(serving_function(classifier))) / 3  # int8 weights
    test = images(1)
    expected = classifier.predict(test.astype(np.float32), verbose=0)
    np.testing.assert_allclose(LiteRTModel(content, 4)(test)[0], expected, atol=0.05)
