"""Backbones, feature extraction, head training and fine-tuning on tiny random models."""

import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from bench.sandbox import run_command
from tests.helpers import (
    N_CLASSES,
    NO_VIEWS,
    SIZE,
    assert_reloads_alike,
    forward_rows,
    predict_with_plain_keras,
    tiny_classifier,
)
from transfer.errors import PipelineError
from transfer.inference import traced_call
from transfer.litert import LiteRTModel, serving_function, to_tflite
from transfer.models.backbones import BACKBONES
from transfer.models.cut import unfreeze_top
from transfer.models.factories import (
    BACKBONE_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
    build_preprocessing,
)
from transfer.models.files import load_model, save_model
from transfer.params import AugmentParams, FinetuneParams, HeadParams
from transfer.tfdata import read_record_index
from transfer.training.backbone import fit_on_activations, fit_on_images
from transfer.training.callbacks import training_callbacks
from transfer.training.head import feature_batches, train_head
from transfer.training.live import open_live
from transfer.views import Views

pytestmark = pytest.mark.model


# One backbone of each architecture: a family's larger variants are its blocks, wider and
# deeper, and converting them to TFLite takes up to 22 s each (EfficientNetB7).
CONVERTED = (
    "MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "ResNet50",
    "ResNet50V2", "InceptionV3", "Xception", "VGG16", "DenseNet121", "ConvNeXtTiny",
)  # fmt: skip


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_builds_and_runs_on_both_engines(name: str) -> None:
    """LiteRT is the default engine: every backbone of the registry builds with the feature
    width the registry says, and one of each family converts and agrees."""
    size = max(SIZE, BACKBONES[name].min_size)
    extractor = build_feature_extractor(name, size, None)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    features = np.asarray(extractor(images))
    assert features.shape == (2, BACKBONES[name].features)
    assert set(CONVERTED) <= set(BACKBONES)
    if name in CONVERTED:
        converted = LiteRTModel(to_tflite(serving_function(extractor)))(images)[0]
        np.testing.assert_allclose(converted, features, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("mode", "reference"),
    [
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("torch", keras.applications.densenet.preprocess_input),
        ("caffe", keras.applications.vgg16.preprocess_input),
        ("none", lambda images: images),
    ],
)
def test_preprocessing_layers_match_keras_applications(mode: str, reference) -> None:
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    layers = build_preprocessing(mode, SIZE)
    expected = reference(images.copy())
    np.testing.assert_allclose(layers(images), expected, rtol=1e-5, atol=1e-4)
    assert not layers.trainable_weights


@pytest.mark.parametrize("name", ["MobileNetV2", "VGG16", "DenseNet121"])  # tf, caffe, torch
def test_a_saved_extractor_opens_with_plain_keras(name: str, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    extractor = build_feature_extractor(name, SIZE, None)
    save_model(extractor, tmp_path / "extractor.keras")
    images = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    features = predict_with_plain_keras(tmp_path / "extractor.keras", images, tmp_path / "run")
    np.testing.assert_allclose(features, extractor.predict(images, verbose=0), rtol=1e-5)


def test_too_small_image_size_is_a_one_line_error() -> None:
    with pytest.raises(PipelineError, match="image.size=32 is below InceptionV3's minimum of 75"):
        build_feature_extractor("InceptionV3", 32, None)


def test_missing_weights_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"backbone.weights=.*missing.weights.h5: cannot load"):
        build_feature_extractor("MobileNetV2", SIZE, str(tmp_path / "missing.weights.h5"))


def test_features_are_identical_across_runs(shards: list[Path]) -> None:
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(1)
        extractor = build_feature_extractor("MobileNetV2", SIZE, None)
        outputs.append(forward_rows(traced_call(extractor), shards, 1280).tobytes())
    assert outputs[0] == outputs[1]
    assert sorted(np.bincount(read_record_index(shards).labels)) == [8, 8, 8]


def test_saving_the_same_model_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    for name in ("first.keras", "second.keras"):  # rebuilt: new objects, new memory addresses
        keras.backend.clear_session()  # the same layer names, as in a new process
        keras.utils.set_random_seed(1)
        extractor = build_feature_extractor("MobileNetV2", SIZE, None)
        model = build_classifier(extractor, build_head(1280, N_CLASSES, HeadParams()))
        save_model(model, tmp_path / name)
        time.sleep(1.1)  # Keras stamps the save time, to the second
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.keras", "second.keras"]
    np.testing.assert_array_equal(
        load_model(tmp_path / "first.keras").predict(images, verbose=0),
        model.predict(images, verbose=0),
    )


def test_a_file_that_is_not_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(PipelineError, match=r"model.keras: not a model this pipeline can load"):
        load_model(tmp_path / "model.keras")


def test_head_learns_separable_features_and_logs_with_dvclive(tmp_path: Path) -> None:
    random = np.random.default_rng(0)
    centres = random.normal(0, 1, (N_CLASSES, 64))
    labels = random.integers(0, N_CLASSES, 300)
    features = (centres[labels] + random.normal(0, 0.3, (300, 64))).astype(np.float32)
    params = HeadParams(hidden=(16,), epochs=20, learning_rate=0.01, class_weights=True)
    live = open_live(tmp_path / "live")
    callbacks = training_callbacks(params.patience, live, True, reduce_on_plateau=True)
    keras.utils.set_random_seed(0)
    head = train_head(
        feature_batches(features[:200], labels[:200], N_CLASSES, params.batch_size, 0),
        feature_batches(features[200:], labels[200:], N_CLASSES, params.batch_size),
        labels[:200],
        width=64,
        n_classes=N_CLASSES,
        params=params,
        seed=0,
        callbacks=callbacks,
    )
    predicted = head.predict(features[200:], verbose=0).argmax(axis=1)
    assert np.mean(predicted == labels[200:]) > 0.95
    assert (tmp_path / "live" / "metrics.json").exists()
    assert (tmp_path / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").exists()


def test_a_whole_epoch_per_graph_call_trains_the_same_head(monkeypatch) -> None:
    random = np.random.default_rng(1)
    features = random.normal(0, 1, (250, 16)).astype(np.float32)
    labels = random.integers(0, N_CLASSES, 250)
    # patience 1: the learning-rate reduction and early stopping act on the epochs' logs
    params = HeadParams(hidden=(8,), dropout=0.3, epochs=6, batch_size=32, patience=1)

    def train() -> keras.Model:
        keras.utils.set_random_seed(0)
        training = feature_batches(features[:200], labels[:200], N_CLASSES, params.batch_size, 0)
        validation = feature_batches(features[200:], labels[200:], N_CLASSES, params.batch_size)
        callbacks = training_callbacks(params.patience, None, True, reduce_on_plateau=True)
        return train_head(
            training,
            validation,
            labels[:200],
            width=16,
            n_classes=N_CLASSES,
            params=params,
            seed=0,
            callbacks=callbacks,
        )

    per_epoch = train()  # 7 steps (the last one partial) per call
    monkeypatch.setattr("transfer.training.head.steps_per_epoch", lambda count, batch_size: 1)
    per_step = train()
    assert all(map(np.array_equal, per_epoch.get_weights(), per_step.get_weights()))
    assert per_epoch.history.history == per_step.history.history


def weights_by_layer(backbone: keras.Model) -> list[list[np.ndarray]]:
    return [[np.array(w) for w in layer.get_weights()] for layer in backbone.layers]


def test_dvclive_logs_in_a_new_repo_with_no_commit_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run_command(command, tmp_path).check_returncode()
    monkeypatch.chdir(tmp_path)
    live = open_live(tmp_path / "live")
    live.log_metric("accuracy", 0.5)
    live.next_step()
    live.end()
    assert (tmp_path / "live" / "plots" / "metrics" / "accuracy.tsv").exists()


def test_cut_through_a_residual_block_caches_both_branches() -> None:
    extractor, _, _ = tiny_classifier()
    backbone = extractor.get_layer(BACKBONE_LAYER)
    add = max(i for i, layer in enumerate(backbone.layers) if layer.name.endswith("_add"))
    lower, upper = unfreeze_top(backbone, len(backbone.layers) - add).split()  # before an Add
    assert len(lower.outputs) == 2
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    pixels = extractor.get_layer("preprocess")(images)
    np.testing.assert_allclose(upper(lower(pixels)), backbone(pixels), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unfreeze", [-1, 155, 1000])
def test_unfreeze_out_of_range_names_the_valid_range(unfreeze: int) -> None:
    extractor, _, _ = tiny_classifier()
    backbone = extractor.get_layer(BACKBONE_LAYER)
    with pytest.raises(PipelineError, match=rf"unfreeze={unfreeze} is out of range: .* 0 to 154$"):
        unfreeze_top(backbone, unfreeze)


def test_cached_activation_finetuning_changes_only_the_unfrozen_layers(
    shards: list[Path], tmp_path: Path
) -> None:
    extractor, head, classifier = tiny_classifier()
    backbone = extractor.get_layer(BACKBONE_LAYER)
    before = weights_by_layer(backbone)
    unfreeze = 30
    top = unfreeze_top(backbone, unfreeze)
    params = FinetuneParams(epochs=2, batch_size=8, learning_rate=0.05)
    live = open_live(tmp_path / "live")
    callbacks = training_callbacks(params.patience, live, True, reduce_on_plateau=False)
    splits = {"train": (shards, 24), "val": (shards, 24)}
    fit_on_activations(
        extractor,
        head,
        splits,
        N_CLASSES,
        top=top,
        params=params,
        views=Views(NO_VIEWS, 0),
        callbacks=callbacks,
    )
    after = weights_by_layer(backbone)
    cut = len(backbone.layers) - unfreeze
    changed_above = False
    for index, layer in enumerate(backbone.layers):
        same = all(np.array_equal(a, b) for a, b in zip(before[index], after[index], strict=True))
        if index < cut or isinstance(layer, keras.layers.BatchNormalization):
            assert same, f"{layer.name} changed"  # BN statistics included
        elif before[index]:
            changed_above |= not same
    assert changed_above

    assert_reloads_alike(classifier, tmp_path)


def test_finetuning_without_a_validation_split_trains_on_loss(
    shards: list[Path], tmp_path: Path
) -> None:
    extractor, head, classifier = tiny_classifier()
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), 10)
    params = FinetuneParams(epochs=1, warmup_epochs=0, batch_size=8)
    live = open_live(tmp_path / "live")
    callbacks = training_callbacks(params.patience, live, False, reduce_on_plateau=False)
    train_only = {"train": (shards, 24)}
    fit_on_activations(
        extractor,
        head,
        train_only,
        N_CLASSES,
        top=top,
        params=params,
        views=Views(NO_VIEWS, 0),
        callbacks=callbacks,
    )
    fit_on_images(
        classifier,
        train_only,
        N_CLASSES,
        params=params,
        views=Views(NO_VIEWS, 0),
        callbacks=callbacks,
    )
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").exists()


@pytest.mark.parametrize(
    "augment", [NO_VIEWS, AugmentParams(1, "horizontal", 0.1, 0.1, 0.1, 0.2, 0.1)]
)
def test_finetuning_on_images_runs_with_and_without_augmentation(
    shards: list[Path], augment: AugmentParams, tmp_path: Path
) -> None:
    extractor, _, classifier = tiny_classifier()
    backbone = extractor.get_layer(BACKBONE_LAYER)
    before = weights_by_layer(backbone)
    unfreeze_top(backbone, 10)
    params = FinetuneParams(epochs=2, batch_size=8, learning_rate=0.05)
    live = open_live(tmp_path / "live")
    callbacks = training_callbacks(params.patience, live, True, reduce_on_plateau=False)
    splits = {"train": (shards, 24), "val": (shards, 24)}
    fit_on_images(
        classifier, splits, N_CLASSES, params=params, views=Views(augment, 0), callbacks=callbacks
    )
    after = weights_by_layer(backbone)
    cut = len(backbone.layers) - 10
    assert all(
        np.array_equal(a, b) for i in range(cut) for a, b in zip(before[i], after[i], strict=True)
    )
    assert any(
        not np.array_equal(a, b)
        for i in range(cut, len(after))
        for a, b in zip(before[i], after[i], strict=True)
    )
