"""The cut for fine-tuning on cached activations: the frozen layers below, the trained above.

Without augmentation the frozen layers give the same output every epoch, so their outputs can
be computed once and only the layers above the cut (and the head) run during training.
"""

import keras

from transfer.models.factories import PREPROCESS_LAYER


def split_at_cut(backbone: keras.Model, count: int) -> tuple[keras.Model, keras.Model]:
    """Split a functional backbone before its top `count` layers (1 or more).

    Returns `lower` (backbone input -> every tensor that crosses the cut: those entering a top
    layer that no top layer produces, e.g. both branches of a residual block) and `upper`
    (those tensors -> backbone output). `upper` is a functional model on the backbone's own
    intermediate tensors, so it shares the backbone's layer objects: training it trains the
    backbone. `layer.input` and `layer.output` are the layer's first call, which for a
    keras.applications backbone is its only call inside the backbone's own graph.
    """
    top = backbone.layers[len(backbone.layers) - count :]
    produced = {id(tensor) for layer in top for tensor in keras.tree.flatten(layer.output)}
    crossing: dict[int, keras.KerasTensor] = {}
    for layer in top:
        for tensor in keras.tree.flatten(layer.input):
            if id(tensor) not in produced:
                crossing.setdefault(id(tensor), tensor)
    tensors = list(crossing.values())
    lower = keras.Model(backbone.inputs, tensors, name="lower")
    upper = keras.Model(tensors, backbone.outputs[0], name="upper")
    return lower, upper


def below_cut(extractor: keras.Model, lower: keras.Model) -> keras.Model:
    """Raw pixels -> the extractor's preprocessing -> the layers below the cut."""
    images = keras.Input(extractor.input_shape[1:], name="image")
    pixels = extractor.get_layer(PREPROCESS_LAYER)(images)
    return keras.Model(images, lower(pixels, training=False), name="below_cut")


def build_top_model(lower: keras.Model, upper: keras.Model, head: keras.Model) -> keras.Model:
    """Crossing tensors -> upper backbone layers (inference-mode BatchNorm) -> head."""
    inputs = [keras.Input(tensor.shape[1:]) for tensor in lower.outputs]
    return keras.Model(inputs, head(upper(inputs, training=False)), name="finetune_top")
