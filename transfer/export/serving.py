"""The TensorFlow SavedModel for serving, and the labels file."""

import hashlib
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2

from transfer.atomic import atomic_output
from transfer.errors import PipelineError
from transfer.export.orientation import apply_orientation, exif_orientation
from transfer.records.schema import NO_ROOM

SAVED_MODEL = "saved_model"
LABELS = "labels.txt"
FINGERPRINT = "fingerprint.pb"  # what tf.saved_model.save writes beside saved_model.pb


def decode_resized(data: tf.Tensor, size: int, quality: int) -> tf.Tensor:
    """An encoded photo (JPEG, PNG, GIF or BMP) as the model saw its training photos: RGB,
    turned upright by its EXIF orientation (orientation.py), resized to size x size
    (bilinear, antialiased when it shrinks, as Pillow's is), stored as a JPEG of `quality`
    and decoded again (TensorFlow's encoder writes what the cache's Pillow writes), as
    float32 pixels in [0, 255]."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = apply_orientation(image, exif_orientation(data))
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    stored = tf.io.decode_jpeg(tf.io.encode_jpeg(pixels, quality=quality))
    return tf.cast(stored, tf.float32)


def serving_signatures(
    serve: tf.types.experimental.PolymorphicFunction, classes: list[str], size: int, quality: int
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """The SavedModel's signatures, both with named outputs: `probabilities` (batch x
    classes), `class_index` (int32) and `class_label` (string) of the top class.

    - serving_default: `image`, float32 RGB pixels in [0, 255], batch x size x size x 3 (the
      model's own input: `serve`, litert.serving_function);
    - classify_image_bytes: `image_bytes`, a batch of encoded photos (base64 in TensorFlow
      Serving's JSON), each decoded and resized in the graph (decode_resized).
    """
    labels = tf.constant(classes)

    def named(probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        index = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "class_index": index,
            "class_label": tf.gather(labels, index),
        }

    pixels = tf.TensorSpec((None, size, size, 3), tf.float32, name="image")
    encoded = tf.TensorSpec((None,), tf.string, name="image_bytes")
    one_image = tf.TensorSpec((size, size, 3), tf.float32)

    @tf.function(input_signature=[pixels], autograph=False)
    def classify(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return named(serve(image))

    @tf.function(input_signature=[encoded], autograph=False)
    def classify_image_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            lambda data: decode_resized(data, size, quality),
            image_bytes,
            fn_output_signature=one_image,
        )
        return named(serve(images))

    return {
        "serving_default": classify.get_concrete_function(),
        "classify_image_bytes": classify_image_bytes.get_concrete_function(),
    }


def save_serving_model(
    signatures: dict[str, tf.types.experimental.ConcreteFunction], directory: Path
) -> None:
    """A SavedModel of the signatures (serving_signatures) and the variables they read: what
    `model.export` writes, without its walk over every object the model tracks, which takes
    longer than the rest of the export (MobileNetV2, 224 px, 2-core CPU: 10.9 s against 4 s).
    """
    root = tf.Module()
    variables = {id(v): v for function in signatures.values() for v in function.variables}
    # Saved with the graph that reads them, in an order of their own: the functions' order
    # changes from run to run, and with it saved_model.pb and the checkpoint's bytes.
    root.model_variables = sorted(variables.values(), key=lambda variable: variable.name)
    try:
        tf.saved_model.save(root, str(directory), signatures=signatures)
    except NO_ROOM as error:
        raise PipelineError(f"cannot write {error.message}") from None
    stabilise_fingerprint(directory)


def stabilise_fingerprint(directory: Path) -> None:
    """Give fingerprint.pb a UUID that follows from the SavedModel's content.

    TensorFlow writes a random UUID into each save's fingerprint (no public option turns
    fingerprinting off), so two saves of the same model differ in this file alone; a UUID
    derived from the fingerprint's own hashes keeps its meaning (this SavedModel) and makes
    a rerun write the same bytes (saving is not reproducible upstream either:
    tensorflow/tensorflow#54067).
    """
    file = directory / FINGERPRINT
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(file.read_bytes())
    fingerprint.ClearField("uuid")
    content = fingerprint.SerializeToString(deterministic=True)
    fingerprint.uuid = str(int.from_bytes(hashlib.sha256(content).digest()[:16], "big"))
    with atomic_output(file) as temporary:
        temporary.write_bytes(fingerprint.SerializeToString(deterministic=True))


def export_saved_model(
    serve: tf.types.experimental.PolymorphicFunction,
    classes: list[str],
    size: int,
    quality: int,
    out_dir: Path,
) -> None:
    """Write the SavedModel of a serving function (serving_signatures: images of size x size,
    stored at JPEG `quality`) and labels.txt (one class name per line, in label order)."""
    save_serving_model(serving_signatures(serve, classes, size, quality), out_dir / SAVED_MODEL)
    (out_dir / LABELS).write_text("".join(f"{name}\n" for name in classes))
