"""Bias correction for int8 weights (Nagel et al. 2019, "Data-Free Quantization Through Weight
Equalization and Bias Correction", section 4.2).

Rounding a kernel to int8 moves each of its output channels' mean by (rounded - float kernel)
times the mean of the layer's input: a shift the same for every photo, which the layers after
it amplify. Measured on the calibration images, it is taken out of the next
BatchNormalization's moving mean (or the layer's own bias), so that the int8-weights model's
channels keep the float model's means. On flowers128 this took the int8-weights model's
agreement with Keras from 0.925 to 0.986-0.989 (docs/benchmarks.md).

Rounding per output channel is unchanged when a channel is multiplied by a constant, so the
kernels rounded here round as the converter's BatchNormalization-folded ones do.
"""

from typing import Any

import keras
import numpy as np

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


def rounded_layers(model: keras.Model, min_elements: int) -> list[tuple[keras.Model, keras.Layer]]:
    """(the model holding it, the layer) for every convolution and dense layer, nested models
    included, whose kernel has at least `min_elements` weights: those stored as int8."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += rounded_layers(layer, min_elements)
        elif isinstance(layer, KERNEL_LAYERS) and np.prod(layer.kernel.shape) >= min_elements:
            found.append((model, layer))
    return found


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


def _next_layers(holder: keras.Model, layer: keras.Layer) -> list[keras.Layer]:
    return [other for other in holder.layers if other.input is layer.output]


def bias_corrected(
    model: keras.Model, images: np.ndarray, *, min_elements: int, batch_size: int
) -> keras.Model:
    """A copy of `model` whose int8-rounded kernels (rounded_layers) leave each output
    channel's mean over `images` where the float kernels put it: each shift goes into the
    following BatchNormalization's moving mean, or the layer's bias (a layer with neither is
    left as it is). Its weights stay float:
    it is meant to be rounded, by the converter or LiteRT's quantizer."""
    corrected = keras.models.clone_model(model)
    corrected.set_weights(model.get_weights())
    targets = rounded_layers(corrected, min_elements)
    means = input_means(corrected, images, [layer for _, layer in targets], batch_size)
    for holder, layer in targets:
        shift = output_shift(layer, means[id(layer)])
        following = _next_layers(holder, layer)
        if len(following) == 1 and isinstance(following[0], keras.layers.BatchNormalization):
            moving_mean = following[0].moving_mean
            moving_mean.assign(np.asarray(moving_mean) + shift)
        elif layer.use_bias:
            layer.bias.assign(np.asarray(layer.bias) - shift)
    return corrected
