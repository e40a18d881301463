"""Grad-CAM (Selvaraju et al., 2017) on the pipeline's classifier: where in a photo it found
the evidence for a class.

The gradient of the class's score before the softmax with respect to the output of the
backbone's last convolutional block, averaged over the block's positions, weighs each of its
channels; the weighted sum of the channels, negative parts cut, is the map. It is as coarse as
the block (7 x 7 for MobileNetV2 at 224 px) and scaled to 1 where the evidence is strongest.
"""

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from transfer.errors import PipelineError
from transfer.image_files import NO_PIXEL_LIMIT, resize_rgb
from transfer.models.factories import (
    BACKBONE_LAYER,
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    PREPROCESS_LAYER,
    PROBABILITIES_LAYER,
)
from transfer.models.files import load_classifier

BATCH_SIZE = 8  # photos explained at a time: the peak memory grows with it, the speed not


@dataclass(frozen=True)
class Explained:
    """Grad-CAM of a batch: `maps` (images x rows x columns, in [0, 1], at the block's
    resolution), the class each map is for and the classifier's `probabilities`."""

    maps: np.ndarray
    classes: list[int]
    probabilities: np.ndarray


@dataclass(frozen=True)
class GradCam:
    """A classifier split at the output of its backbone's last convolutional block, on its own
    layers: `below` (raw pixels -> the block's output), `above` (the block's output -> what
    the output layer takes) and `output` (the head's last Dense, whose softmax is left out)."""

    below: keras.Model
    above: keras.Model
    output: layers.Dense

    @property
    def size(self) -> int:
        """The side of the square images the classifier takes."""
        return self.below.input_shape[1]

    def pixels(self, data: bytes) -> np.ndarray:
        """A photo of data/raw (its bytes) as the classifier sees it: raw RGB pixels at its
        input size. The photos there passed download's checks, so no pixel limit again."""
        return np.asarray(resize_rgb(data, self.size, NO_PIXEL_LIMIT), dtype=np.float32)

    def explain(self, images: np.ndarray, wanted: list[int | None]) -> Explained:
        """The map of each raw-pixel image for its `wanted` class, or where that is None for
        the class the classifier predicts."""
        blocks = self.below(images, training=False)
        with tf.GradientTape() as tape:
            tape.watch(blocks)
            hidden = self.above(blocks, training=False)
            scores = keras.ops.matmul(hidden, self.output.kernel) + self.output.bias
            predicted = keras.ops.argmax(scores, axis=1)
            classes = [int(p) if w is None else w for w, p in zip(wanted, predicted, strict=True)]
            chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
        weights = keras.ops.mean(tape.gradient(chosen, blocks), axis=(1, 2))
        maps = keras.ops.relu(keras.ops.einsum("nhwc,nc->nhw", blocks, weights))
        peaks = keras.ops.max(maps, axis=(1, 2), keepdims=True)
        maps = keras.ops.where(peaks > 0, maps / keras.ops.maximum(peaks, 1e-12), 0.0)
        probabilities = keras.ops.softmax(scores, axis=1)
        return Explained(
            keras.ops.convert_to_numpy(maps), classes, keras.ops.convert_to_numpy(probabilities)
        )


def split_classifier(classifier: keras.Model) -> GradCam:
    """The classifier's Grad-CAM. Its backbone, nested in the extractor, ends in its global
    pooling (build_feature_extractor's pooling="avg"): the last block's output is the pooling's
    input."""
    extractor = classifier.get_layer(EXTRACTOR_LAYER)
    backbone = extractor.get_layer(BACKBONE_LAYER)
    pooling = backbone.layers[-1]
    if not isinstance(pooling, layers.GlobalAveragePooling2D):
        raise PipelineError(f"the backbone ends in {pooling.name}, not its pooling: no heat map")
    head = classifier.get_layer(HEAD_LAYER)
    output = head.get_layer(PROBABILITIES_LAYER)
    images = keras.Input(classifier.input_shape[1:], name="image")
    pixels = extractor.get_layer(PREPROCESS_LAYER)(images)
    blocks = keras.Model(backbone.inputs, pooling.input, name="blocks")(pixels, training=False)
    below = keras.Model(images, blocks, name="below_last_block")
    block_output = keras.Input(blocks.shape[1:], name="last_block")
    features = pooling(block_output)
    hidden = keras.Model(head.inputs, output.input, name="head_below_output")(features)
    above = keras.Model(block_output, hidden, name="above_last_block")
    return GradCam(below, above, output)


def load_gradcam(files: list[Path]) -> GradCam:
    """The Grad-CAM of the classifier made of `files` (head_only.classifier_files)."""
    return split_classifier(load_classifier(files))


def explain_photos(gradcam: GradCam, files: list[Path], wanted: list[int | None]) -> np.ndarray:
    """The maps of photos (files of data/raw) for their `wanted` classes (None: the predicted
    one), a few photos at a time: the backbone's activations of a whole batch are held at
    once."""
    maps = []
    for start in range(0, len(files), BATCH_SIZE):
        chunk = files[start : start + BATCH_SIZE]
        batch = [gradcam.pixels(file.read_bytes()) for file in chunk]
        maps.append(gradcam.explain(np.stack(batch), wanted[start : start + BATCH_SIZE]).maps)
    return np.concatenate(maps) if maps else np.empty((0, 0, 0), np.float32)
