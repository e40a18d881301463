"""What `unfreeze` means: the top layers of the backbone that fine-tuning trains, and the cut
below them for fine-tuning on cached activations.

Without augmentation the frozen layers give the same output every epoch, so their outputs can
be computed once and only the layers above the cut (and the head) run during training.
"""

from dataclasses import dataclass

import keras
from keras import layers

from transfer.errors import PipelineError
from transfer.models.factories import PREPROCESS_LAYER


@dataclass(frozen=True)
class TrainableTop:
    """The top `count` layers of a functional backbone (backbone.layers[-count:], count >= 1),
    made trainable by unfreeze_top."""

    backbone: keras.Model
    count: int

    def split(self) -> tuple[keras.Model, keras.Model]:
        """The backbone split at the cut, before the top layers.

        Returns `lower` (backbone input -> every tensor that crosses the cut: those entering a
        top layer that no top layer produces, e.g. both branches of a residual block) and
        `upper` (those tensors -> backbone output). `upper` is a functional model on the
        backbone's own intermediate tensors, so it shares the backbone's layer objects:
        training it trains the backbone. `layer.input` and `layer.output` are the layer's
        first call, which for a keras.applications backbone is its only call inside the
        backbone's own graph.
        """
        backbone = self.backbone
        top = backbone.layers[len(backbone.layers) - self.count :]
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


def unfreeze_top(backbone: keras.Model, count: int) -> TrainableTop:
    """Make the top `count` layers (backbone.layers[-count:]) trainable, BatchNorm excluded,
    and return them. Recompile the model afterwards.

    BatchNormalization stays frozen: its statistics were learned on ImageNet and a small dataset
    would wreck them.
    """
    total = len(backbone.layers)
    limit = total - 1  # layers[0] is the input: nothing to train, and nothing left below a cut
    if not 0 <= count <= limit:
        raise PipelineError(f"unfreeze={count} is out of range: this backbone allows 0 to {limit}")
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        is_top = index >= total - count
        layer.trainable = is_top and not isinstance(layer, layers.BatchNormalization)
    return TrainableTop(backbone, count)


def below_cut(extractor: keras.Model, lower: keras.Model) -> keras.Model:
    """Raw pixels -> the extractor's preprocessing -> the layers below the cut."""
    images = keras.Input(extractor.input_shape[1:], name="image")
    pixels = extractor.get_layer(PREPROCESS_LAYER)(images)
    return keras.Model(images, lower(pixels, training=False), name="below_cut")


def build_top_model(lower: keras.Model, upper: keras.Model, head: keras.Model) -> keras.Model:
    """Crossing tensors -> upper backbone layers (inference-mode BatchNorm) -> head."""
    inputs = [keras.Input(tensor.shape[1:]) for tensor in lower.outputs]
    return keras.Model(inputs, head(upper(inputs, training=False)), name="finetune_top")
