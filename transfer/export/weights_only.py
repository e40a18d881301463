"""TFLite models whose weights alone are made smaller: float16 (half the size) and int8
weights (a quarter), both computing in float32 and taking float pixels.

Both are made from a float TFLite model by LiteRT's own quantizer (ai-edge-quantizer), which
rewrites its weights and leaves the rest of the flatbuffer as it is (TensorFlow's converter
took 6-7 s for each). The int8 weights come from a float model whose biases first absorb the
mean shift their rounding causes (transfer.export.bias_correction), and are dequantized once,
as the model loads; the layers then compute in float, unlike TFLite's dynamic-range
conversion, whose hybrid kernels quantize the activations on the fly: those ran 2.4x slower
on XNNPACK's CPU and agreed no better with Keras (docs/benchmarks.md, issue 38).
"""

import copy

import keras
import numpy as np
from ai_edge_quantizer import quantizer

from transfer.export.bias_correction import bias_corrected
from transfer.litert import serving_function, to_tflite

TFLITE_FLOAT16 = "model_float16.tflite"
TFLITE_DYNAMIC_RANGE = "model_dynamic_range.tflite"
# Tensors under this many weights (MobileNetV2's first layers' depthwise kernels, under 1% of
# its weights) stay in float in the int8-weights model, as TFLite's dynamic range left them.
INT8_WEIGHTS_MIN_ELEMENTS = 1024


def _recipe(algorithm: str, weights: dict, **options: object) -> list[dict]:
    """A recipe for every op with weights: stored as `weights` says, dequantized before the
    op (explicit_dequantize), computed in float."""
    op_config = {
        "weight_tensor_config": weights,
        "compute_precision": "FLOAT",
        "explicit_dequantize": True,
        "skip_checks": False,
        **options,
    }
    return [{"regex": ".*", "operation": "*", "algorithm_key": algorithm, "op_config": op_config}]


RECIPES = {
    TFLITE_FLOAT16: _recipe("float_casting", {"num_bits": 16, "dtype": "FLOAT"}),
    # Per output channel, symmetric, as TFLite's int8 weights (and bias_correction's rounding).
    TFLITE_DYNAMIC_RANGE: _recipe(
        "min_max_uniform_quantize",
        {"num_bits": 8, "symmetric": True, "granularity": "CHANNELWISE", "dtype": "INT"},
        min_weight_elements=INT8_WEIGHTS_MIN_ELEMENTS,
    ),
}


def weights_only(float_content: bytes, file_name: str) -> bytes:
    """The float TFLite model `float_content` with its weights stored as the format of
    `file_name` (TFLITE_FLOAT16 or TFLITE_DYNAMIC_RANGE) stores them."""
    if file_name not in RECIPES:
        raise ValueError(f"no weights-only format is written to {file_name}")
    # The quantizer keeps the recipe it is given and may fill it in: a copy each time.
    model = quantizer.Quantizer(bytearray(float_content), copy.deepcopy(RECIPES[file_name]))
    result = model.quantize(enable_progress_bar=False, enable_progress_report=False)
    return bytes(result.quantized_model)


def int8_weights(model: keras.Model, calibration: np.ndarray, batch_size: int) -> bytes:
    """The int8-weights TFLite model of `model`, its biases corrected for the rounding on the
    `calibration` images (N x H x W x 3 pixels), which run through Keras in batches of
    `batch_size`."""
    corrected = bias_corrected(
        model, calibration, min_elements=INT8_WEIGHTS_MIN_ELEMENTS, batch_size=batch_size
    )
    return weights_only(to_tflite(serving_function(corrected)), TFLITE_DYNAMIC_RANGE)
