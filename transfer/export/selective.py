"""The int8 model with a few layers left in float, uint8 pixels still in.

MobileNetV2 loses its int8 accuracy in its first layers: the depthwise convolutions of the
first blocks amplify, with weights up to 56 after BatchNorm folding, the rounding of
activations that share one int8 scale per tensor (TFLite's quantization debugger: 1.3 and 0.8
quantization steps off, the other layers at most 0.6). Neither cross-layer equalization of
the weights (TFLite's weights are already per channel) nor of the activations (the channels
that matter already span the whole range) removes it (docs/benchmarks.md). Keeping those
layers in float does, at a few kilobytes and a few per cent of latency. What int8 still
shifts in the other layers' means is measured and taken out of their offsets
(transfer.export.bias_correction).

The pixels go in as uint8: the graph's first op casts them to float, so the calibration,
the quantizer's float layers and a phone's camera all see the same 8-bit values.
"""

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from transfer.export.bias_correction import int8_output_shifts, shifted_back
from transfer.litert import to_tflite

# Keras layers kept in float wherever a model has them: MobileNetV2's first convolution and
# the two depthwise layers furthest off in int8, measured on flowers128 and signdigits.
FLOAT_LAYERS = ("Conv1", "expanded_conv_depthwise", "block_2_depthwise")


def uint8_serving_function(model: keras.Model) -> tf.types.experimental.PolymorphicFunction:
    """The model's inference call on uint8 pixels (any batch size), cast to float inside."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="image")
    return tf.function(
        lambda images: model(tf.cast(images, tf.float32), training=False),
        input_signature=[spec],
        autograph=False,
    )


def float_nodes(float_content: bytes, layers: tuple[str, ...]) -> list[str]:
    """The names of the tensors of a float TFLite model that the Keras `layers` compute."""
    details = Interpreter(model_content=float_content).get_tensor_details()
    return [detail["name"] for detail in details if _computed_by(detail["name"], layers)]


def _computed_by(name: str, layers: tuple[str, ...]) -> bool:
    """Whether one of the Keras `layers` computes a tensor. A fused op's name lists its own
    first (a convolution fused with its BatchNormalization and ReLU6 is named after the
    ReLU6), then those of constants that it may share with other layers."""
    own = name.split(";")[0]
    return any(f"/{layer}_" in own or f"/{layer}/" in own for layer in layers)


def quantization_debugger(
    model: keras.Model, representative: np.ndarray, batch_size: int, float_layers: tuple[str, ...]
) -> tf.lite.experimental.QuantizationDebugger:
    """TFLite's quantization debugger on the int8 conversion of `model`, uint8 pixels in,
    calibrated on `representative` in batches, with the Keras `float_layers` left in float."""
    serve = uint8_serving_function(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [representative[start : start + batch_size]]
        for start in range(0, len(representative), batch_size)
    )
    denied = float_nodes(to_tflite(serve), float_layers)
    return tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: iter([[representative[:1]]]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied),
    )


def selective_int8(
    model: keras.Model,
    representative: np.ndarray,
    batch_size: int,
    *,
    float_layers: tuple[str, ...] = FLOAT_LAYERS,
) -> bytes:
    """The int8 TFLite model, uint8 pixels in, with the Keras `float_layers` the model has
    left in float; calibrated on `representative` (N x H x W x 3 uint8) in batches, and its
    layers' offsets corrected for the mean shift int8 leaves on those images
    (bias_correction: converted once to measure the shifts, then again without them)."""
    debug_model = quantization_debugger(model, representative, batch_size, float_layers)
    shifts = int8_output_shifts(debug_model.get_debug_quantized_model(), representative)
    corrected = shifted_back(model, shifts)
    return quantization_debugger(
        corrected, representative, batch_size, float_layers
    ).get_nondebug_quantized_model()
