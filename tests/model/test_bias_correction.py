"""Bias correction for int8 weights: the rounding matches LiteRT's quantizer's, and the
corrected model, once rounded, keeps the float model's mean outputs."""

import keras
import numpy as np
import pytest

from transfer.export.bias_correction import (
    bias_corrected,
    computing_layer,
    int8_output_shifts,
    int8_rounded,
    rounded_layers,
    shifted_back,
)
from transfer.export.selective import quantization_debugger
from transfer.export.weights_only import (
    INT8_WEIGHTS_MIN_ELEMENTS,
    TFLITE_DYNAMIC_RANGE,
    weights_only,
)
from transfer.litert import LiteRTModel, serving_function, to_tflite

pytestmark = pytest.mark.model


def test_int8_rounded_keeps_each_channels_largest_weight_and_rounds_to_its_grid() -> None:
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
    rounded = int8_rounded(kernel)
    scale = np.abs(kernel).reshape(-1, 5).max(axis=0) / 127
    steps = rounded.reshape(-1, 5) / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # on the channel's grid
    assert np.all(np.abs(rounded - kernel).reshape(-1, 5).max(axis=0) <= scale / 2 * 1.0001)
    np.testing.assert_allclose(np.abs(rounded).reshape(-1, 5).max(axis=0), scale * 127)
    # A depthwise kernel's output channels are in x multiplier: 4 x 2 scales, not 2.
    depthwise = kernel[..., :2] * np.array([1.0, 100.0], dtype=np.float32)
    columns = int8_rounded(depthwise, depthwise=True).reshape(-1, 8)
    assert len(np.unique(np.abs(columns).max(axis=0))) == 8


def linear_model() -> keras.Model:
    """Nested models as the classifier's (one without a kernel, as its preprocessing), with
    every place a shift can go and nothing between that is not linear: a convolution before
    BatchNormalization, a depthwise one (multiplier 2) before another, and a dense layer
    with its own bias."""
    keras.utils.set_random_seed(1)
    pixels = keras.Input((4, 4, 32))
    x = keras.layers.Conv2D(64, 1, use_bias=False)(pixels)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(1, depth_multiplier=2, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    body = keras.Model(pixels, keras.layers.GlobalAveragePooling2D()(x), name="body")
    features = keras.Input((128,))
    head = keras.Model(features, keras.layers.Dense(10)(features), name="head")
    raw = keras.Input((4, 4, 32))
    scale = keras.Model(raw, keras.layers.Rescaling(0.5)(raw), name="scale")  # nothing rounded
    images = keras.Input((4, 4, 32))
    model = keras.Model(images, head(body(scale(images))))
    rng = np.random.default_rng(2)
    for layer in body.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, size=layer.moving_variance.shape))
    return model


def rounded(model: keras.Model, min_elements: int) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in rounded_layers(copy, min_elements):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        layer.kernel.assign(int8_rounded(np.asarray(layer.kernel), depthwise=depthwise))
    return copy


def test_the_corrected_model_rounded_keeps_the_float_models_mean_outputs() -> None:
    model = linear_model()
    images = np.random.default_rng(3).uniform(0, 2, size=(16, 4, 4, 32)).astype(np.float32)
    before = model.get_weights()
    corrected = bias_corrected(model, images, min_elements=1, batch_size=5)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    float_mean = model.predict(images, verbose=0).mean(axis=0)
    plain_shift = np.abs(rounded(model, 1).predict(images, verbose=0).mean(axis=0) - float_mean)
    left = np.abs(rounded(corrected, 1).predict(images, verbose=0).mean(axis=0) - float_mean)
    assert plain_shift.max() > 1e-2  # rounding alone moves the means
    assert left.max() < plain_shift.max() / 100


def test_litert_quantizer_rounds_the_weights_as_int8_rounded_does() -> None:
    """The correction is computed for int8_rounded's rounding: the int8-weights TFLite model
    (BatchNormalization folded into its kernels first) computes what Keras does with the
    kernels int8_rounded."""
    model = linear_model()
    images = np.random.default_rng(4).uniform(0, 2, size=(8, 4, 4, 32)).astype(np.float32)
    content = weights_only(to_tflite(serving_function(model)), TFLITE_DYNAMIC_RANGE)
    lite = LiteRTModel(content, 8)(images)[0]
    keras_rounded = rounded(model, INT8_WEIGHTS_MIN_ELEMENTS).predict(images, verbose=0)
    keras_float = model.predict(images, verbose=0)
    assert np.abs(lite - keras_float).max() > 1e-3  # the weights were rounded
    np.testing.assert_allclose(lite, keras_rounded, atol=1e-4)


def test_computing_layer_tells_a_layer_from_one_whose_name_extends_it() -> None:
    expand, relu = (
        keras.layers.Identity(name="block_1_expand"),
        keras.layers.ReLU(name="block_1_expand_relu"),
    )
    fused = "m/backbone_1/block_1_expand_relu_1/Relu6;m/backbone_1/block_1_expand_1/convolution"
    assert computing_layer(fused, [expand, relu]) is relu
    assert computing_layer("m/backbone_1/block_1_expand_1/convolution", [relu, expand]) is expand
    assert computing_layer("m/backbone_1/block_1_add_1/Add", [expand, relu]) is None


def small_convolutional_model() -> keras.Model:
    keras.utils.set_random_seed(5)
    pixels = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(pixels)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="expand")(x)
    x = keras.layers.BatchNormalization(name="expand_BN")(x)
    x = keras.layers.ReLU(6.0, name="expand_relu")(x)
    x = keras.layers.Conv2D(8, 1, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_BN")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(pixels, keras.layers.Dense(4, name="logits")(x))


def test_each_shift_is_taken_out_of_the_offset_that_moves_that_output() -> None:
    """Named as TFLite names the tensors: a convolution fused with its BatchNormalization and
    ReLU6 after the ReLU, one without a ReLU after the convolution, the logits after the
    dense layer; a shift of a layer without an offset (the rescaling) changes nothing."""
    model = small_convolutional_model()
    rng = np.random.default_rng(7)
    shifts = {
        "m/expand_relu_1/Relu6;m/expand_1/convolution1:27": rng.normal(size=16),
        "m/project_1/convolution11:31": rng.normal(size=8),
        "m/logits_1/MatMul;m/logits_1/BiasAdd": rng.normal(size=4),
        "m/scale_1/add1:23": rng.normal(size=3),
    }
    before = model.get_weights()
    corrected = shifted_back(model, shifts)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    moved = {
        "expand_BN": corrected.get_layer("expand_BN").beta,
        "project_BN": corrected.get_layer("project_BN").beta,
        "logits": corrected.get_layer("logits").bias,
    }
    for (name, offset), shift in zip(moved.items(), list(shifts.values())[:3], strict=True):
        original = np.asarray(model.get_layer(name).weights[1])  # beta, or the bias
        np.testing.assert_allclose(np.asarray(offset), original - shift, rtol=1e-6, atol=1e-6)
    changed = sum(
        not np.array_equal(a, b) for a, b in zip(corrected.get_weights(), before, strict=True)
    )
    assert changed == 3  # those three, nothing else


def test_int8_output_shifts_gives_each_verified_layer_a_mean_per_channel() -> None:
    model = small_convolutional_model()
    images = np.random.default_rng(6).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    debugger = quantization_debugger(model, images, 4, ())
    shifts = int8_output_shifts(debugger.get_debug_quantized_model(), images)
    widths = {
        layer.name: len(shifts[name])
        for name in shifts
        if (layer := computing_layer(name, model.layers)) is not None
    }
    assert widths == {"scale": 3, "expand_relu": 16, "project": 8, "pool": 8}
    # Rounding leaves a shift, but a small one: a fraction of the outputs' int8 step.
    assert 0 < max(np.abs(values).max() for values in shifts.values()) < 0.05
