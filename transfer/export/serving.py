"""The TensorFlow SavedModel for serving, and the labels file."""

from pathlib import Path

import tensorflow as tf

SAVED_MODEL = "saved_model"
LABELS = "labels.txt"


def save_serving_model(serve: tf.types.experimental.PolymorphicFunction, directory: Path) -> None:
    """A SavedModel whose `serve` (and `serving_default`) signature is a model's serving
    function (litert.serving_function), raw pixels to probabilities: what `model.export`
    writes, without its walk over every object the model tracks, which takes longer than the
    rest of the export (MobileNetV2, 224 px, 2-core CPU: 10.9 s against 4.0 s).
    """
    signature = serve.get_concrete_function()
    root = tf.Module()
    root.serve = serve
    root.model_variables = list(signature.variables)  # saved with the graph that reads them
    tf.saved_model.save(
        root, str(directory), signatures={"serve": signature, "serving_default": signature}
    )


def export_saved_model(
    serve: tf.types.experimental.PolymorphicFunction, classes: list[str], out_dir: Path
) -> None:
    """Write the SavedModel of a serving function and labels.txt (one class name per line,
    in label order)."""
    save_serving_model(serve, out_dir / SAVED_MODEL)
    (out_dir / LABELS).write_text("".join(f"{name}\n" for name in classes))
