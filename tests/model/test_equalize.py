"""Cross-layer equalization on a tiny random MobileNetV2 classifier whose BatchNormalization
scales are drawn at random, so that its activations' channels span orders of magnitude."""

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from bench.equalize import channel_maxima, equalize, find_pairs
from transfer.models.factories import (
    BACKBONE_LAYER,
    EXTRACTOR_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
    build_preprocessing,
)
from transfer.params import HeadParams

pytestmark = pytest.mark.model
SIZE = 48


def images(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    """As build_classifier builds it, on a MobileNetV2 of alpha 0.35 with random weights; its
    BatchNormalization scales span exp(-3)..exp(3) times 0.5 across channels, and their
    statistics are those of images(0), as after training."""
    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False, pooling="avg", weights=None
    )
    backbone.name = BACKBONE_LAYER
    random = np.random.default_rng(0)
    for norm in [
        layer for layer in backbone.layers if isinstance(layer, layers.BatchNormalization)
    ]:
        n = norm.gamma.shape[0]
        norm.gamma.assign(0.5 * np.exp(np.clip(random.normal(0, 1.5, n), -3, 3)))
        norm.beta.assign(random.normal(0, 0.1, n))
        norm.momentum = 0.0  # one call in training mode sets the statistics to the batch's
    preprocessing = build_preprocessing("tf", SIZE)
    backbone(preprocessing(images(0)), training=True)
    pixels = keras.Input((SIZE, SIZE, 3))
    extractor = keras.Model(pixels, backbone(preprocessing(pixels)), name=EXTRACTOR_LAYER)
    return build_classifier(extractor, build_head(extractor.output_shape[-1], 3, HeadParams()))


def block_outputs(classifier: keras.Model, pixels: np.ndarray) -> list[np.ndarray]:
    """What each block with a shortcut gives, and the pooled features. With random weights,
    MobileNetV2's class probabilities barely depend on the image; these do."""
    extractor = classifier.get_layer(EXTRACTOR_LAYER)
    backbone = extractor.get_layer(BACKBONE_LAYER)
    kinds = (layers.Add, layers.GlobalAveragePooling2D)
    probe = keras.Model(
        backbone.input, [x.output for x in backbone.layers if isinstance(x, kinds)]
    )
    return probe.predict(pixels / 127.5 - 1, verbose=0)


def test_mobilenet_v2_pairs_are_each_blocks_expansion_and_depthwise(
    classifier: keras.Model,
) -> None:
    backbone = classifier.get_layer(EXTRACTOR_LAYER).get_layer(BACKBONE_LAYER)
    pairs = [(pair.first.name, pair.second.name) for pair in find_pairs(backbone)]
    assert len(pairs) == 17  # the first block expands with Conv1
    assert pairs[:3] == [
        ("Conv1", "expanded_conv_depthwise"),
        ("block_1_expand", "block_1_depthwise"),
        ("block_2_expand", "block_2_depthwise"),
    ]
    # VGG16 has no BatchNormalization: nothing to equalize.
    vgg = build_feature_extractor("VGG16", 32, None).get_layer(BACKBONE_LAYER)
    assert find_pairs(vgg) == []


def test_the_equalized_classifier_computes_what_the_original_computes(
    classifier: keras.Model, tmp_path: Path
) -> None:
    """On the calibration images, up to float rounding; it opens with plain Keras, and the
    original is left as it was."""
    calibration = images(0)
    before = classifier.get_weights()
    equalize(classifier, calibration).save(tmp_path / "equalized.keras")
    equalized = keras.saving.load_model(tmp_path / "equalized.keras")
    for expected, actual in zip(
        block_outputs(classifier, calibration), block_outputs(equalized, calibration), strict=True
    ):
        assert expected.std(axis=0).mean() > 1e-3 * np.abs(expected).mean()  # image-dependent
        np.testing.assert_allclose(actual, expected, atol=1e-3 * np.abs(expected).max())
    np.testing.assert_allclose(
        equalized.predict(calibration, verbose=0),
        classifier.predict(calibration, verbose=0),
        atol=1e-4,
    )
    for weights, kept in zip(classifier.get_weights(), before, strict=True):
        np.testing.assert_array_equal(weights, kept)


def test_equalization_evens_out_the_channels_each_depthwise_layer_reads(
    classifier: keras.Model,
) -> None:
    """Before, the live channels' maxima span orders of magnitude; after, each reaches the
    ReLU6 cap, and the depthwise weights shrink to match."""
    calibration = images(0)
    equalized = equalize(classifier, calibration)
    pairs, new_pairs = (
        find_pairs(model.get_layer(EXTRACTOR_LAYER).get_layer(BACKBONE_LAYER))
        for model in (classifier, equalized)
    )
    before = channel_maxima(classifier, pairs, calibration)
    after = channel_maxima(equalized, new_pairs, calibration)
    for pair, old, new in zip(pairs, before, after, strict=True):
        live = old > 1e-2
        assert old[live].max() / old[live].min() > 10, pair.second.name
        np.testing.assert_allclose(new[live], 6.0, rtol=1e-3)
    # kernel[h, w, channel, 1]
    ratio = new_pairs[0].second.get_weights()[0] / pairs[0].second.get_weights()[0]
    scaled = before[0] > 6e-3  # the channels scaled up: all but the dead
    np.testing.assert_allclose(ratio[1, 1, :, 0], np.where(scaled, before[0] / 6, 1), rtol=1e-5)
