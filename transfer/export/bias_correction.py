"""Bias correction for int8 weights and activations (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.2).

Rounding a kernel to int8 moves each of its output channels' mean by (rounded - float kernel)
times the mean of the layer's input: a shift the same for every photo, which the layers after
it amplify. Measured on the calibration images, it is taken out of the next
BatchNormalization's moving mean (or the layer's own bias), so that the int8-weights model's
channels keep the float model's means. On flowers128 this took the int8-weights model's
agreement with Keras from 0.925 to 0.988-0.989 (docs/benchmarks.md).

Rounding per output channel is unchanged when a channel is multiplied by a constant, so the
kernels rounded here round as the converter's BatchNormalization-folded ones do.

The int8 model rounds its activations too, which shifts its layers' means further; those
shifts are measured rather than computed: TFLite's quantization debugger's model runs each
int8 layer beside its float twin on the same int8 input, and its NumericVerify ops give the
difference. On flowers128 (`unfreeze: 50`) the int8 model's agreement went from 0.916 to
0.952.
"""

import re
from typing import Any

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

INT8_LEVELS = 127  # symmetric int8 weights: -127..127, one scale per output channel
KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def int8_rounded(kernel: np.ndarray, *, depthwise: bool = False) -> np.ndarray:
    """`kernel` rounded to int8 per output channel (symmetric, the channel's largest magnitude
    at 127) and back to float. A depthwise kernel (H x W x in x multiplier) has in x
    multiplier output channels; the others, the last axis."""
    channels = kernel.shape[-2] * kernel.shape[-1] if depthwise else kernel.shape[-1]
    columns = kernel.reshape(-1, channels)
    scale = np.abs(columns).max(axis=0) / INT8_LEVELS
    scale[scale == 0] = 1.0
    rounded = np.clip(np.round(columns / scale), -INT8_LEVELS, INT8_LEVELS) * scale
    return rounded.reshape(kernel.shape).astype(kernel.dtype)


def all_layers(model: keras.Model) -> list[keras.Layer]:
    """Every layer of `model` but nested models, whose layers it lists instead."""
    found = []
    for layer in model.layers:
        found += all_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


def following_layers(layers: list[keras.Layer], layer: keras.Layer) -> list[keras.Layer]:
    """Those of `layers` that take `layer`'s output."""
    return [other for other in layers if other.input is layer.output]


def rounded_layers(model: keras.Model, min_elements: int) -> list[keras.Layer]:
    """The convolution and dense layers of `model` (nested models included) whose kernel has
    at least `min_elements` weights: those stored as int8."""
    return [
        layer
        for layer in all_layers(model)
        if isinstance(layer, KERNEL_LAYERS) and np.prod(layer.kernel.shape) >= min_elements
    ]


def input_means(
    model: keras.Model, images: np.ndarray, layers: list[keras.Layer], batch_size: int
) -> dict[int, np.ndarray]:
    """The mean of each of `layers`' inputs per channel, over `images` and every position,
    keyed by the layer's id. A model holds either layers or models, the latter applied one
    after the other, as transfer.models.factories composes the classifier."""
    wanted = {id(layer) for layer in layers}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    probes: dict[int, keras.Model] = {}

    def run(holder: keras.Model, values: Any) -> Any:
        parts = [layer for layer in holder.layers if isinstance(layer, keras.Model)]
        if parts:
            for part in parts:
                values = run(part, values)
            return values
        chosen = [layer for layer in holder.layers if id(layer) in wanted]
        if not chosen:
            return holder(values)
        if id(holder) not in probes:
            outputs = [holder.outputs[0], *(layer.input for layer in chosen)]
            probes[id(holder)] = keras.Model(holder.inputs[0], outputs)
        output, *inputs = probes[id(holder)](values)
        for layer, value in zip(chosen, inputs, strict=True):
            rows = np.asarray(value).reshape(-1, value.shape[-1])
            sums[id(layer)] = sums.get(id(layer), 0) + rows.sum(axis=0, dtype=np.float64)
            counts[id(layer)] = counts.get(id(layer), 0) + len(rows)
        return output

    for start in range(0, len(images), batch_size):
        run(model, images[start : start + batch_size].astype(np.float32))
    return {key: sums[key] / counts[key] for key in sums}


def output_shift(layer: keras.Layer, input_mean: np.ndarray) -> np.ndarray:
    """How far rounding `layer`'s kernel to int8 moves the mean of each output channel, for
    inputs of mean `input_mean` per channel (zero padding at the borders left aside)."""
    kernel = np.asarray(layer.kernel)
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    error = int8_rounded(kernel, depthwise=depthwise) - kernel
    if depthwise:  # H x W x in x multiplier: output channel in * multiplier + m
        return (input_mean[:, None] * error.sum(axis=(0, 1))).reshape(-1)
    if isinstance(layer, keras.layers.Conv2D):
        return input_mean @ error.sum(axis=(0, 1))
    return input_mean @ error


def _copy(model: keras.Model) -> keras.Model:
    """A model like `model` with its own weights, equal to `model`'s: the corrections change
    the copy, never the model the export ships."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def bias_corrected(
    model: keras.Model, images: np.ndarray, *, min_elements: int, batch_size: int
) -> keras.Model:
    """A copy of `model` whose int8-rounded kernels (rounded_layers) leave each output
    channel's mean over `images` where the float kernels put it: each shift (in the
    convolution's own units) goes into the following BatchNormalization's moving mean, or
    out of the layer's bias; a layer with neither is left as it is. Its weights stay float:
    it is meant to be rounded, by the converter or LiteRT's quantizer."""
    corrected = _copy(model)
    layers = all_layers(corrected)
    targets = rounded_layers(corrected, min_elements)
    means = input_means(corrected, images, targets, batch_size)
    for layer in targets:
        shift = output_shift(layer, means[id(layer)])
        following = following_layers(layers, layer)
        if len(following) == 1 and isinstance(following[0], keras.layers.BatchNormalization):
            moving_mean = following[0].moving_mean
            moving_mean.assign(np.asarray(moving_mean) + shift)
        elif layer.use_bias:
            layer.bias.assign(np.asarray(layer.bias) - shift)
    return corrected


NUMERIC_VERIFY = "NumericVerify/"  # the debug model's difference tensors: int8 minus float


def int8_output_shifts(debug_model: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """For each layer that TFLite's quantization debugger's `debug_model` verifies, keyed by
    its tensor's name, the mean per channel of its int8 output minus its float output on the
    same int8 input, over `images` (N x H x W x 3, the model's input type), one at a time as
    the debug model takes them."""
    interpreter = Interpreter(model_content=debug_model, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    verified = [
        (detail["name"][len(NUMERIC_VERIFY) :], detail["index"])
        for detail in interpreter.get_tensor_details()
        if detail["name"].startswith(NUMERIC_VERIFY)
    ]
    pixels = interpreter.get_input_details()[0]["index"]
    sums: dict[str, np.ndarray] = {}
    for image in images:
        interpreter.set_tensor(pixels, image[None])
        interpreter.invoke()
        for name, index in verified:
            difference = interpreter.get_tensor(index)
            rows = difference.reshape(-1, difference.shape[-1])
            sums[name] = sums.get(name, 0) + rows.mean(axis=0, dtype=np.float64)
    return {name: total / len(images) for name, total in sums.items()}


def computing_layer(tensor_name: str, layers: list[keras.Layer]) -> keras.Layer | None:
    """The one of `layers` that computes a TFLite tensor: a fused op's name lists its own
    first, in which each Keras layer's name is followed by `/`, or by the `_N` that tracing
    adds; `block_1_expand` is not `block_1_expand_relu`."""
    own = tensor_name.split(";")[0]
    for layer in layers:
        if re.search(f"/{re.escape(layer.name)}(_\\d+)?/", own):
            return layer
    return None


def _offset_layer(layer: keras.Layer | None, layers: list[keras.Layer]) -> keras.Layer | None:
    """The layer whose offset moves `layer`'s output: a ReLU's BatchNormalization (TFLite
    fuses it into the convolution, named after the ReLU), a convolution's following one
    (folded into it, named after either), or the layer itself."""
    if isinstance(layer, keras.layers.ReLU):
        return next((other for other in layers if other.output is layer.input), None)
    if isinstance(layer, KERNEL_LAYERS) and not layer.use_bias:
        following = following_layers(layers, layer)
        return following[0] if len(following) == 1 else None
    return layer


def shifted_back(model: keras.Model, shifts: dict[str, np.ndarray]) -> keras.Model:
    """A copy of `model` with each of `shifts` (int8_output_shifts) taken out of the offset
    that moves it (_offset_layer): a BatchNormalization's (the shift is in its output's
    units), or a convolution's or dense layer's bias. Shifts of other layers (additions,
    pooling, rescaling) are left: they have no offset of their own. After a ReLU6 the shift
    is measured past its clipping, so it is taken out only roughly."""
    corrected = _copy(model)
    layers = all_layers(corrected)
    for name, shift in shifts.items():
        layer = _offset_layer(computing_layer(name, layers), layers)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.center:
            layer.beta.assign(np.asarray(layer.beta) - shift)
        elif isinstance(layer, KERNEL_LAYERS) and layer.use_bias:
            layer.bias.assign(np.asarray(layer.bias) - shift)
    return corrected
