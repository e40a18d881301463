"""The LiteRT engine for frozen forward passes: the same results as Keras, reproducibly."""

from pathlib import Path

import keras
import numpy as np
import pytest

from tests.helpers import N_CLASSES, NO_VIEWS, SIZE, forward_rows, tiny_classifier
from transfer.litert import LiteRTModel, frozen_forward, serving_function, to_tflite
from transfer.models.cut import below_cut, unfreeze_top
from transfer.models.factories import BACKBONE_LAYER, build_feature_extractor
from transfer.params import FinetuneParams
from transfer.training.backbone import fit_on_activations
from transfer.training.callbacks import training_callbacks
from transfer.views import Views

pytestmark = pytest.mark.model


@pytest.mark.parametrize("name", ["MobileNetV2", "VGG16"])
def test_litert_features_agree_with_keras_and_repeat_to_the_byte(
    name: str,
    shards: list[Path],
    tmp_path: Path,
) -> None:
    keras.utils.set_random_seed(1)
    extractor = build_feature_extractor(name, SIZE, None)
    width = extractor.output_shape[-1]
    runs = [
        forward_rows(frozen_forward(extractor, engine), shards, width)  # converted anew
        for engine in ("keras", "litert", "litert")
    ]
    reference, litert = runs[0], runs[1]
    assert np.abs(reference).max() > 0
    np.testing.assert_allclose(litert, reference, atol=1e-4, rtol=0)
    assert runs[1].tobytes() == runs[2].tobytes()


def test_litert_runs_every_output_of_a_cut_in_order() -> None:
    """A cut through a residual block has two outputs of the same shape: order matters."""
    extractor, _, _ = tiny_classifier()
    backbone = extractor.get_layer(BACKBONE_LAYER)
    add = max(i for i, layer in enumerate(backbone.layers) if layer.name.endswith("_add"))
    lower, _ = unfreeze_top(backbone, len(backbone.layers) - add).split()
    model = below_cut(extractor, lower)
    images = np.random.default_rng(0).uniform(0, 255, (5, SIZE, SIZE, 3)).astype("float32")
    outputs = LiteRTModel(to_tflite(serving_function(model)), batch_size=2)(
        images
    )  # batches of 2, 2 and 1
    expected = model(images)
    assert len(outputs) == len(expected) == 2
    for output, reference in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(output, np.asarray(reference), atol=1e-4, rtol=1e-4)


def test_fine_tuning_on_litert_activations_gives_the_keras_weights(
    shards: list[Path],
) -> None:
    params = FinetuneParams(epochs=2, batch_size=8, learning_rate=0.05, activation_dtype="float32")
    trained = {}
    for engine in ("keras", "litert"):
        extractor, head, _ = tiny_classifier()  # the same seed: the same starting weights
        backbone = extractor.get_layer(BACKBONE_LAYER)
        top = unfreeze_top(backbone, 30)
        callbacks = training_callbacks(params.patience, None, True, reduce_on_plateau=False)
        splits = {"train": (shards, 24), "val": (shards, 24)}
        keras.utils.set_random_seed(0)
        fit_on_activations(
            extractor,
            head,
            splits,
            N_CLASSES,
            top=top,
            params=params,
            views=Views(NO_VIEWS, 0),
            callbacks=callbacks,
            engine=engine,
        )
        trained[engine] = [np.array(w) for w in backbone.weights + head.weights]
    moved = [
        not np.array_equal(a, b) for a, b in zip(trained["keras"], tiny_weights(), strict=True)
    ]
    assert any(moved)
    for keras_weight, litert_weight in zip(trained["keras"], trained["litert"], strict=True):
        np.testing.assert_allclose(litert_weight, keras_weight, atol=1e-4, rtol=1e-3)


def tiny_weights() -> list[np.ndarray]:
    extractor, head, _ = tiny_classifier()
    return [np.array(w) for w in extractor.get_layer(BACKBONE_LAYER).weights + head.weights]
