"""Frozen forward passes through LiteRT: a Keras model converted once to TFLite and run by the
`ai-edge-litert` interpreter (XNNPACK kernels), much faster on a CPU than Keras' own call.

Also runs the exported TFLite models, quantized ones included.
"""

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from transfer.inference import inference_call
from transfer.timing import phase

log = logging.getLogger(__name__)
# Images per interpreter call: the fastest in extract's loop, which decodes the JPEGs on the
# same cores (docs/benchmarks.md, "Figures behind the code's choices").
LITERT_BATCH = 8


def serving_function(model: keras.Model) -> tf.types.experimental.PolymorphicFunction:
    """The model's inference call with a fixed signature (float32 batches of any size, named
    `image`), for serving and conversion, unlike inference.traced_call."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")
    return tf.function(
        lambda images: model(images, training=False), input_signature=[spec], autograph=False
    )


def to_tflite(serve: tf.types.experimental.PolymorphicFunction) -> bytes:
    """A model's serving function (see serving_function) as a float TFLite flatbuffer, its
    weights frozen in."""
    # Without the model as the trackable object, the converter folds the weights into
    # constants; with it, they stay resource variables that the interpreter leaves unread.
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()]
    ).convert()


def _output_position(name: str) -> int:
    """The position of an output from its name: a converted function's outputs are named
    Identity, Identity_1, ..., a SavedModel's StatefulPartitionedCall:0, :1, ..."""
    base, _, index = name.partition(":")
    if index.isdigit():
        return int(index)
    suffix = base.rsplit("_", 1)
    return int(suffix[1]) if len(suffix) == 2 and suffix[1].isdigit() else 0


class LiteRTModel:
    """A TFLite model in the LiteRT interpreter, called on batches of any size.

    Calls take float32 inputs and return every output as float32, in the model's output
    order; a quantized model's inputs are quantized and its outputs dequantized here.
    """

    def __init__(
        self, content: bytes, batch_size: int = LITERT_BATCH, threads: int | None = None
    ) -> None:
        """`threads`: how many the interpreter may use; by default, every core available."""
        self.interpreter = Interpreter(
            model_content=content, num_threads=threads or available_cores()
        )
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = sorted(
            self.interpreter.get_output_details(), key=lambda o: _output_position(o["name"])
        )
        self.batch_size = batch_size
        self.shape: tuple[int, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input, without the batch."""
        return tuple(int(side) for side in self.input["shape"][1:])

    def __call__(self, inputs: Any) -> list[np.ndarray]:
        inputs = np.asarray(inputs, np.float32)
        starts = range(0, len(inputs), self.batch_size)
        parts = [self._invoke(inputs[start : start + self.batch_size]) for start in starts]
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    def _invoke(self, batch: np.ndarray) -> list[np.ndarray]:
        if batch.shape != self.shape:  # allocating again only when the batch's shape changes
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self.shape = batch.shape
        if self.input["dtype"] != np.float32:
            scale, zero_point = self.input["quantization"]
            if scale:  # a quantized input; a plain integer one (scale 0) takes the values
                batch = np.round(batch / scale + zero_point)
            info = np.iinfo(self.input["dtype"])
            batch = np.clip(batch, info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], batch.astype(self.input["dtype"]))
        self.interpreter.invoke()
        results = []
        for output in self.outputs:
            values = self.interpreter.get_tensor(output["index"]).astype(np.float32)
            if output["dtype"] != np.float32:
                scale, zero_point = output["quantization"]
                values = (values - zero_point) * scale
            results.append(values)
        return results


def available_cores() -> int:
    """The cores this process may run on (a container's limit, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def engine_for(engine: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """The engine that runs a frozen forward pass: `engine`, but keras under a strategy with
    several replicas, whatever the engine (LiteRT runs in one process, on CPUs)."""
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    return "keras" if replicas > 1 else engine


def frozen_forward(
    model: keras.Model, engine: str, strategy: tf.distribute.Strategy | None = None
) -> Callable[[Any], Any]:
    """The model's inference call on engine_for(engine, strategy): keras (a traced call, each
    batch split across the strategy's replicas) or litert (converted once, here, then run by
    LiteRT)."""
    if engine_for(engine, strategy) == "keras":
        replicas = 1 if strategy is None else strategy.num_replicas_in_sync
        log.info("%s runs on Keras, %d replica(s)", model.name, replicas)
        return inference_call(model, strategy)
    start = time.perf_counter()
    with phase("convert"):
        converted = LiteRTModel(to_tflite(serving_function(model)))
    log.info(
        "converted %s to TFLite for LiteRT in %.1f s", model.name, time.perf_counter() - start
    )
    return converted
