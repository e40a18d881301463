"""Cross-layer equalization of the classifier's activations before its int8 conversion: a
trial of bench/int8_equalization.py that the export does not ship (it did not pay: see
docs/benchmarks.md; transfer/export/selective.py does what did).

Nagel et al. 2019 ("Data-Free Quantization Through Weight Equalization and Bias Correction",
sec. 4.1) rescale output channel i of a convolution by 1/s_i and input channel i of the next
one by s_i, through a positive-homogeneous activation, so that the float model computes the
same and the channels' ranges match. They equalize weight ranges, for per-tensor int8 weights.
TFLite quantizes convolution weights per output channel, and each activation tensor with one
scale: there the loss is in activations whose channels span orders of magnitude (MobileNetV2's
first expand output, read by depthwise weights up to 56 after folding). So here each channel
of the activation between a pair is scaled up to fill the tensor's range: to the ReLU6 cap
of 6 (a plain ReLU: the largest channel's maximum), from its maximum on the calibration
images. Both sides of a depthwise convolution are per channel, so the rescaling costs its
weights nothing; a 1x1 projection's would lose resolution, so only pairs whose second
convolution is depthwise are rescaled.

A pair: convolution -> BatchNormalization -> ReLU or ReLU6 -> [zero padding] -> depthwise
convolution, each the only reader of the one before; the scale goes into the
BatchNormalization's gamma and beta. ReLU6 is not positive-homogeneous: a channel scaled up by
t is capped at 6 / t of its former units, its maximum on the calibration images, which is
where the int8 model caps it anyway (each tensor at its calibrated range); a channel that
reaches 6 there is left as it is. So the equalized model computes what the original does on
the calibration images, and on others up to that cap.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from transfer.models.factories import BACKBONE_LAYER, EXTRACTOR_LAYER, PREPROCESS_LAYER

DEAD = 1e-3  # a channel whose maximum stays below this share of the target is left as it is


@dataclass(frozen=True)
class Pair:
    """A convolution whose output channels are scaled up, and the depthwise one that reads them."""

    first: keras.layers.Layer
    norm: layers.BatchNormalization
    relu: layers.ReLU
    second: layers.DepthwiseConv2D


def _readers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    """The layers of a functional model reading each tensor (by id)."""
    readers: dict[int, list[keras.layers.Layer]] = {}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        for tensor in inputs:
            readers.setdefault(id(tensor), []).append(layer)
    return readers


def _sole_reader(layer: keras.layers.Layer, readers: dict) -> keras.layers.Layer | None:
    found = readers.get(id(layer.output), [])
    return found[0] if len(found) == 1 else None


def find_pairs(backbone: keras.Model) -> list[Pair]:
    """The pairs of a functional backbone that equalization rescales, in the model's order."""
    readers, pairs = _readers(backbone), []
    for first in backbone.layers:
        norm = _sole_reader(first, readers)
        if not isinstance(first, layers.Conv2D | layers.DepthwiseConv2D) or not (
            isinstance(norm, layers.BatchNormalization) and norm.scale and norm.center
        ):
            continue
        relu = _sole_reader(norm, readers)
        if not isinstance(relu, layers.ReLU) or relu.negative_slope or relu.threshold:
            continue
        second = _sole_reader(relu, readers)
        if isinstance(second, layers.ZeroPadding2D):
            second = _sole_reader(second, readers)
        if isinstance(second, layers.DepthwiseConv2D) and second.depth_multiplier == 1:
            pairs.append(Pair(first, norm, relu, second))
    return pairs


def channel_maxima(
    classifier: keras.Model, pairs: list[Pair], images: np.ndarray
) -> list[np.ndarray]:
    """Each pair's activation (its ReLU's output): the largest value of each channel over
    `images` (raw pixels into the classifier, as built by build_classifier)."""
    extractor = classifier.get_layer(EXTRACTOR_LAYER)
    backbone = extractor.get_layer(BACKBONE_LAYER)
    pixels = extractor.get_layer(PREPROCESS_LAYER).predict(images, verbose=0)
    probe = keras.Model(backbone.input, [pair.relu.output for pair in pairs])
    return [np.asarray(a).max(axis=(0, 1, 2)) for a in probe.predict(pixels, verbose=0)]


def channel_scales(maxima: np.ndarray, cap: float | None) -> np.ndarray:
    """How much each channel is scaled up: to `cap` (the ReLU's maximum) or the largest."""
    target = cap or float(maxima.max())
    live = maxima > DEAD * target
    return np.where(live, target / np.where(live, maxima, 1.0), 1.0).astype(np.float32)


def equalize(classifier: keras.Model, images: np.ndarray) -> keras.Model:
    """A copy of the classifier (built by build_classifier: same layers, names and
    architecture, a plain Keras model) with its backbone's pairs equalized on `images`, the
    int8 calibration's raw pixels. The classifier itself is left as it is."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(classifier))
    copy.set_weights(classifier.get_weights())
    backbone = copy.get_layer(EXTRACTOR_LAYER).get_layer(BACKBONE_LAYER)
    pairs = find_pairs(backbone)
    if not pairs:
        return copy
    for pair, maxima in zip(pairs, channel_maxima(copy, pairs, images), strict=True):
        scale = channel_scales(maxima, pair.relu.max_value)
        gamma, beta, *statistics = pair.norm.get_weights()
        pair.norm.set_weights([gamma * scale, beta * scale, *statistics])
        kernel, *bias = pair.second.get_weights()  # kernel[h, w, channel, 1]
        pair.second.set_weights([kernel / scale[:, None], *bias])
    return copy
