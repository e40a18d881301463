"""The optional ONNX export (export.onnx): the classifier through Keras' own ONNX export
(tf2onnx), run by ONNX Runtime for its check. Both come with the `onnx` extra."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from transfer.errors import PipelineError

ONNX_FILE = "model.onnx"


def export_onnx(model: keras.Model, path: Path) -> None:
    """Write the classifier as ONNX: raw float32 pixels in (`image`, a batch of any size),
    class probabilities out, as the other exported models."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")
    try:
        model.export(str(path), format="onnx", input_signature=[spec], verbose=False)
    except ImportError as error:
        raise PipelineError(
            f"export.onnx needs the onnx extra (pip install -e '.[onnx]'): {error}"
        ) from None


class OnnxModel:
    """An ONNX file in ONNX Runtime (CPU), called on float32 batches; returns [probabilities],
    as a LiteRTModel does."""

    def __init__(self, content: bytes, threads: int) -> None:
        try:
            import onnxruntime  # the onnx extra; only export.onnx needs it
        except ImportError as error:
            raise PipelineError(
                f"export.onnx needs the onnx extra (pip install -e '.[onnx]'): {error}"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            content, options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input: np.asarray(inputs, np.float32)})
