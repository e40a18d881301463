"""Fine-tuning on cached activations: run the frozen layers below the cut once per image.

Without augmentation the frozen layers give the same output every epoch, so their outputs are
computed once and only the layers above the cut (and the head) run during training.
"""

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.cli import PipelineError
from stages.models import PREPROCESS_LAYER


def _own_node(model: keras.Model, layer: keras.Layer):
    # Keras keeps no public map from a layer to its call inside one functional model;
    # `_nodes` holds the keys of the calls that belong to `model`.
    nodes = [
        node
        for index, node in enumerate(layer._inbound_nodes)
        if f"{id(layer)}_ib-{index}" in model._nodes
    ]
    if len(nodes) != 1:
        raise PipelineError(
            f"layer {layer.name} is used {len(nodes)} times in {model.name}; "
            "this cut cannot be split, choose another unfreeze"
        )
    return nodes[0]


def split_at_cut(backbone: keras.Model, count: int) -> tuple[keras.Model, keras.Model]:
    """Split a functional backbone before its top `count` layers.

    Returns `lower` (backbone input -> every tensor that crosses the cut, e.g. a residual
    branch) and `upper` (those tensors -> backbone output). `upper` reuses the backbone's own
    layer objects, so training it trains the backbone.
    """
    top = backbone.layers[len(backbone.layers) - count :]
    top_ids = {id(layer) for layer in top}
    nodes = [_own_node(backbone, layer) for layer in top]
    crossing: dict[int, keras.KerasTensor] = {}
    for node in nodes:
        for tensor in node.arguments.keras_tensors:
            if id(tensor._keras_history.operation) not in top_ids:
                crossing.setdefault(id(tensor), tensor)
    lower = keras.Model(backbone.inputs, list(crossing.values()), name="lower")
    inputs = [keras.Input(t.shape[1:], name=f"cut_{i}") for i, t in enumerate(crossing.values())]
    replaced = dict(zip(crossing, inputs, strict=True))

    def swap(value):
        return replaced[id(value)] if isinstance(value, keras.KerasTensor) else value

    for layer, node in zip(top, nodes, strict=True):
        args = keras.tree.map_structure(swap, node.arguments.args)
        kwargs = keras.tree.map_structure(swap, node.arguments.kwargs)
        outputs = layer(*args, **kwargs)
        new_outputs = keras.tree.flatten(outputs)
        for old, new in zip(keras.tree.flatten(node.outputs), new_outputs, strict=True):
            replaced[id(old)] = new
    upper = keras.Model(inputs, replaced[id(backbone.outputs[0])], name="upper")
    return lower, upper


class ActivationBatches(keras.utils.PyDataset):
    """Batches of cached activations (arrays or memory maps) with one-hot labels."""

    def __init__(self, arrays, labels, batch_size: int, shuffle_seed: int | None = None):
        super().__init__()
        self.arrays, self.labels, self.batch_size = arrays, labels, batch_size
        self.random = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self.order = np.arange(len(labels))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int):
        # Sorted indices read a memory map front to back.
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return tuple(array[rows] for array in self.arrays), self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.random is not None:
            self.random.shuffle(self.order)


def activation_bytes(lower: keras.Model, count: int) -> int:
    """Bytes the cached activations of `count` images take as float32."""
    per_image = sum(math.prod(tensor.shape[1:]) for tensor in lower.outputs)
    return per_image * count * 4


def cache_activations(
    forward,
    dataset: tf.data.Dataset,
    lower: keras.Model,
    count: int,
    n_classes: int,
    directory: Path | None,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Run `forward` (pixels -> crossing tensors) over the dataset once.

    The activations go into memory, or into memory-mapped files in `directory` when given.
    """

    def allocate(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if directory is None:
            return np.empty(shape, np.float32)
        return np.lib.format.open_memmap(directory / f"{name}.npy", "w+", np.float32, shape)

    arrays = tuple(
        allocate(f"cut_{i}", (count, *t.shape[1:])) for i, t in enumerate(lower.outputs)
    )
    labels = allocate("labels", (count, n_classes))
    progress = keras.utils.Progbar(count, unit_name="image")
    done = 0
    for images, one_hot in dataset:
        outputs = keras.tree.flatten(forward(images))
        size = len(one_hot)
        for array, output in zip(arrays, outputs, strict=True):
            array[done : done + size] = output.numpy()
        labels[done : done + size] = one_hot.numpy()
        done += size
        progress.update(done)
    return arrays, labels


def lower_forward(extractor: keras.Model, lower: keras.Model):
    """A traced call: raw pixels -> the extractor's preprocessing -> the layers below the cut."""
    preprocess = extractor.get_layer(PREPROCESS_LAYER)
    return tf.function(
        lambda images: lower(preprocess(images), training=False), reduce_retracing=True
    )


def build_top_model(lower: keras.Model, upper: keras.Model, head: keras.Model) -> keras.Model:
    """Crossing tensors -> upper backbone layers (inference-mode BatchNorm) -> head."""
    inputs = [keras.Input(tensor.shape[1:]) for tensor in lower.outputs]
    return keras.Model(inputs, head(upper(inputs, training=False)), name="finetune_top")
