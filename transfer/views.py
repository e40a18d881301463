"""Augmented views of a training image: random flip, rotation, zoom, translation, contrast and
brightness, drawn with TensorFlow's stateless random ops.

A view is a function of (seed, the photo's key, a draw number) only; the key is the SHA-256
of the photo's file, so a photo moved or relabelled keeps its views. `extract` and the
activation cache use draw = the view's index, so each cached view is the same on every run
and adding an image changes no other image's views; the ordinary fine-tune draws a new number
per image per epoch.
"""

import dataclasses
import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from transfer.frozen.rows import row_keys
from transfer.params import AugmentParams
from transfer.row_order import CLEAN
from transfer.tfdata import ImageTransform, RecordIndex

# One block of rows: every record of a split, through a transform (None: as it is), with each
# row's memo key.
Block = tuple[ImageTransform | None, list[str]]

KEY_BUCKETS = 2**62  # the photo's key's FarmHash fingerprint, the same on every machine


def view_seed(seed: int, key: tf.Tensor, draw: tf.Tensor) -> tf.Tensor:
    """The stateless seed (two int64s) of one view of the photo whose key is `key`."""
    bucket = tf.strings.to_hash_bucket_fast(key, KEY_BUCKETS)
    image_seed = tf.stack([tf.constant(seed, tf.int64), bucket])
    return tf.random.experimental.stateless_fold_in(image_seed, tf.cast(draw, tf.int32))


def _uniform(seed: tf.Tensor, limit: float) -> tf.Tensor:
    return tf.random.stateless_uniform((), seed, -limit, limit)


def _geometry(params: AugmentParams, size: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """The 8-number projective transform (output pixel -> input pixel, Keras' convention) of a
    rotation and a zoom about the centre, then a translation."""
    angle = _uniform(seeds[0], params.rotation * 2 * math.pi)
    scale = 1 + _uniform(seeds[1], params.zoom)  # above 1 shows more of the image: zooms out
    shift_x = _uniform(seeds[2], params.translation) * size[1]
    shift_y = _uniform(seeds[3], params.translation) * size[0]
    centre_x, centre_y = (size[1] - 1) / 2, (size[0] - 1) / 2
    a0, a1 = scale * tf.cos(angle), -scale * tf.sin(angle)
    b0, b1 = scale * tf.sin(angle), scale * tf.cos(angle)
    a2 = centre_x - a0 * centre_x - a1 * centre_y - shift_x
    b2 = centre_y - b0 * centre_x - b1 * centre_y - shift_y
    return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])


def augment(image: tf.Tensor, seed: tf.Tensor, params: AugmentParams) -> tf.Tensor:
    """One view of a float32 RGB image with pixels in [0, 255], from a stateless seed."""
    seeds = tf.random.experimental.stateless_split(seed, num=8)
    if params.flip in ("horizontal", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if params.flip in ("vertical", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_up_down(image, seeds[1])
    if params.rotation or params.zoom or params.translation:
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        transform = _geometry(params, size, seeds[2:6])
        # Reflected edges, as Keras' RandomRotation and RandomZoom fill them.
        image = keras.ops.image.affine_transform(
            image[None], transform[None], interpolation="bilinear", fill_mode="reflect"
        )[0]
    if params.contrast:
        factor = 1 + _uniform(seeds[6], params.contrast)
        mean = tf.reduce_mean(image, axis=(0, 1), keepdims=True)
        image = mean + (image - mean) * factor
    if params.brightness:
        image = image + _uniform(seeds[7], params.brightness) * 255.0
    return tf.clip_by_value(image, 0.0, 255.0)


def view_transform(params: AugmentParams, seed: int) -> ImageTransform:
    """Image -> its augmented view number `draw` (see the module's docstring)."""

    def transform(image: tf.Tensor, key: tf.Tensor, draw: tf.Tensor) -> tf.Tensor:
        return augment(tf.cast(image, tf.float32), view_seed(seed, key, draw), params)

    return transform


def view_identity(params: AugmentParams, seed: int, view: int) -> dict:
    """What makes view number `view` of a photo what it is, besides the photo: for memo
    keys (the code that draws it is in frozen.version)."""
    settings = dataclasses.asdict(params)
    del settings["views"]  # how many views there are changes none of them
    return {"view": view, "seed": seed, "augment": settings}


def fixed_view(transform: ImageTransform, view: int) -> ImageTransform:
    """`transform` with the draw fixed to `view`: the cached view of that index."""
    return lambda image, key, _draw: transform(image, key, tf.constant(view, tf.int64))


def mirror(image: tf.Tensor, _key: tf.Tensor, _draw: tf.Tensor) -> tf.Tensor:
    """The image mirrored left to right: what test-time augmentation averages in."""
    return tf.image.flip_left_right(tf.cast(image, tf.float32))


@dataclass(frozen=True)
class Views:
    """The training images' augmented views as every stage draws them: `augment` and the seed."""

    augment: AugmentParams
    seed: int

    @property
    def count(self) -> int:
        """Views of each training image (augment.views)."""
        return self.augment.views

    def transform(self) -> ImageTransform:
        """Image -> its view number `draw`: a new view per draw (the ordinary fine-tune)."""
        return view_transform(self.augment, self.seed)

    def block(self, version: str, index: RecordIndex, variant: int | None) -> Block:
        """Every record of `index` as `variant` (CLEAN, or a view's number: the cached view
        of that number), with each row's memo key for a forward pass of `version`."""
        if variant is CLEAN:
            return None, row_keys(version, index, CLEAN)
        identity = view_identity(self.augment, self.seed, variant)
        return fixed_view(self.transform(), variant), row_keys(version, index, identity)
