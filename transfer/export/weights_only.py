"""TFLite models whose weights alone are made smaller: float16 (half the size; float's
accuracy, and half-precision kernels where a GPU delegate has them) and dynamic range (int8
weights, float activations: a quarter of the size, no calibration). Both take float pixels."""

import tensorflow as tf

TFLITE_FLOAT16 = "model_float16.tflite"
TFLITE_DYNAMIC_RANGE = "model_dynamic_range.tflite"


def convert_weights_only(
    serve: tf.types.experimental.PolymorphicFunction, weights: tf.DType
) -> bytes:
    """A model's serving function (litert.serving_function) as a TFLite flatbuffer with its
    weights stored as `weights`: tf.float16, or tf.int8 (dynamic range)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if weights == tf.float16:
        converter.target_spec.supported_types = [tf.float16]
    elif weights != tf.int8:
        raise ValueError(f"weights must be tf.float16 or tf.int8, got {weights}")
    return converter.convert()
