"""Augmented views: deterministic, distinct, per image; training on them, cached and on disk."""

import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import N_CLASSES, SIZE, assert_reloads_alike, forward_rows, tiny_classifier
from transfer.errors import PipelineError
from transfer.inference import traced_call
from transfer.models.cut import unfreeze_top
from transfer.models.factories import BACKBONE_LAYER
from transfer.params import AugmentParams, FinetuneParams, HeadParams
from transfer.records.schema import serialize_example, write_shards
from transfer.row_order import TrainingVariants
from transfer.tfdata import make_dataset
from transfer.training.backbone import fit_on_activations
from transfer.training.batches import ViewBatches
from transfer.training.callbacks import training_callbacks
from transfer.training.head import feature_batches, train_head
from transfer.training.live import open_live
from transfer.views import Views, fixed_view, view_transform

pytestmark = pytest.mark.model
AUGMENT = AugmentParams(2, "horizontal", 0.1, 0.1, 0.1, 0.2, 0.1)


def write_images(directory: Path, count: int, folder: str = "c") -> list[Path]:
    """`count` noisy images (the first `count` of one fixed sequence) as TFRecords, filed
    under `<folder><label>/`; each photo's key is its JPEG's SHA-256."""
    random = np.random.default_rng(0)
    records = []
    for index in range(count):
        pixels = np.clip(random.normal(120, 50, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        encoded = tf.io.encode_jpeg(pixels).numpy()
        path, key = f"{folder}{index % 3}/{index}.jpg", hashlib.sha256(encoded).hexdigest()
        records.append(serialize_example(encoded, index % N_CLASSES, path, key))
    directory.mkdir()
    return [directory / name for name in write_shards(iter(records), directory, "train", count, 5)]


def views_by_path(files: list[Path], view: int) -> dict[str, np.ndarray]:
    transform = fixed_view(view_transform(AUGMENT, 7), view)
    batches = make_dataset(files, 4, transform=transform, with_filenames=True)
    return {
        name.decode(): pixels
        for images, _, names in batches
        for pixels, name in zip(images.numpy(), names.numpy(), strict=True)
    }


def test_two_extractions_give_byte_identical_views(shards: list[Path]) -> None:
    extractor, _, _ = tiny_classifier()
    transform = view_transform(AUGMENT, 7)
    runs = [
        np.concatenate(
            [
                forward_rows(traced_call(extractor), shards, 1280, fixed_view(transform, view))
                for view in TrainingVariants(24, AUGMENT.views).view_blocks
            ]
        )
        for _ in range(2)
    ]
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].shape == (48, 1280)


def test_views_differ_from_the_clean_image_and_from_each_other(shards: list[Path]) -> None:
    clean = {
        name.decode(): pixels
        for images, _, names in make_dataset(shards, 4, with_filenames=True)
        for pixels, name in zip(images.numpy(), names.numpy(), strict=True)
    }
    first, second = views_by_path(shards, 0), views_by_path(shards, 1)
    assert first.keys() == second.keys() == clean.keys()
    for path, pixels in clean.items():
        assert first[path].shape == pixels.shape and first[path].dtype == np.float32
        assert first[path].min() >= 0 and first[path].max() <= 255
        for one, other in (
            (first[path], pixels),
            (second[path], pixels),
            (first[path], second[path]),
        ):
            assert np.abs(one - other).mean() > 1, path


def test_a_photos_views_follow_its_content_not_its_path(tmp_path: Path) -> None:
    """A photo moved to another folder (relabelled) keeps its views."""
    before = views_by_path(write_images(tmp_path / "before", 6), 1)
    moved = views_by_path(write_images(tmp_path / "moved", 6, folder="other"), 1)
    for path, pixels in before.items():
        np.testing.assert_array_equal(moved[path.replace("c", "other", 1)], pixels)


def test_adding_an_image_leaves_every_other_images_views_unchanged(tmp_path: Path) -> None:
    """The shards' order changes (records are interleaved from other files); no view does."""
    before = views_by_path(write_images(tmp_path / "before", 12), 1)
    after = views_by_path(write_images(tmp_path / "after", 13), 1)
    assert set(after) - set(before) == {"c0/12.jpg"}
    for path, pixels in before.items():
        np.testing.assert_array_equal(after[path], pixels, err_msg=path)


def test_each_fine_tuning_epoch_trains_every_image_once_as_one_of_its_variants() -> None:
    """Rows hold the image's index plus 100 times its variant: the batches show the choice."""
    count, variants = 40, 3
    rows = np.array([[v * 100 + i] for v in range(variants) for i in range(count)], np.float32)
    labels = np.arange(count) % N_CLASSES
    layout = TrainingVariants(count, variants - 1)
    batches = ViewBatches((rows,), labels, layout, N_CLASSES, 8, shuffle_seed=3)
    epochs = []
    for _ in range(2):
        values = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))]).astype(int)
        one_hot = np.concatenate([batches[i][1] for i in range(len(batches))])
        assert sorted(values % 100) == list(range(count))
        np.testing.assert_array_equal(one_hot.argmax(axis=1), labels[values % 100])
        epochs.append(values)
        batches.on_epoch_end()
    assert set(np.concatenate(epochs) // 100) == set(range(variants))
    assert not np.array_equal(epochs[0], epochs[1])
    clean = ViewBatches((rows,), labels, layout, N_CLASSES, 8)  # validation: clean, in order
    values = np.concatenate([clean[i][0][:, 0] for i in range(len(clean))]).astype(int)
    np.testing.assert_array_equal(values, np.arange(count))


def test_a_head_trains_on_views_and_its_summary_is_the_kept_epoch(tmp_path: Path) -> None:
    """Validation labels are noise: val_loss rises after the first epochs, so early stopping
    restores an earlier epoch than the last, and metrics.json must show that one."""
    random = np.random.default_rng(0)
    centres = random.normal(0, 1, (N_CLASSES, 16))
    labels = random.integers(0, N_CLASSES, 200)
    views = np.concatenate([centres[labels] + random.normal(0, 0.8, (200, 16)) for _ in range(3)])
    labels = np.tile(labels, 3)
    val = (centres[labels[:60]] + random.normal(0, 0.8, (60, 16))).astype(np.float32)
    val_labels = random.integers(0, N_CLASSES, 60)
    params = HeadParams(hidden=(32,), epochs=30, patience=3, learning_rate=0.05)
    live = open_live(tmp_path / "live")
    callbacks = training_callbacks(params.patience, live, True, reduce_on_plateau=True)
    keras.utils.set_random_seed(0)
    head = train_head(
        feature_batches(views.astype(np.float32), labels, N_CLASSES, 32, 0),
        feature_batches(val, val_labels, N_CLASSES, 32),
        labels,
        width=16,
        n_classes=N_CLASSES,
        params=params,
        seed=0,
        callbacks=callbacks,
    )
    epochs_run = len(head.history.history["loss"])
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["step"] < epochs_run - 1  # an earlier epoch was kept
    head.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = head.evaluate(
        val, keras.utils.to_categorical(val_labels, N_CLASSES), verbose=0
    )
    assert summary["eval"]["loss"] == pytest.approx(loss, rel=1e-5)
    assert summary["eval"]["accuracy"] == pytest.approx(accuracy)
    history = head.history.history
    assert summary["eval"]["loss"] == pytest.approx(history["val_loss"][summary["step"]])


def fine_tune_on_views(shards: list[Path], memory_mb: int, directory: Path) -> keras.Model:
    extractor, head, classifier = tiny_classifier()
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), 30)
    params = FinetuneParams(
        epochs=2, batch_size=8, learning_rate=0.05, activation_memory_mb=memory_mb
    )
    callbacks = training_callbacks(
        params.patience, open_live(directory), True, reduce_on_plateau=False
    )
    splits = {"train": (shards, 24), "val": (shards, 24)}
    keras.utils.set_random_seed(0)
    fit_on_activations(
        extractor,
        head,
        splits,
        N_CLASSES,
        top=top,
        params=params,
        views=Views(AUGMENT, 0),
        callbacks=callbacks,
    )
    return classifier


def test_the_on_disk_activation_cache_trains_the_weights_the_in_memory_one_does_and_saves(
    shards: list[Path], tmp_path: Path
) -> None:
    in_memory = fine_tune_on_views(shards, 4096, tmp_path / "memory")
    on_disk = fine_tune_on_views(shards, 0, tmp_path / "disk")  # 0 MB: everything on disk
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(in_memory.get_weights(), tiny_classifier()[2].get_weights(), strict=True)
    ]
    assert any(moved)
    for memory_weight, disk_weight in zip(
        in_memory.get_weights(), on_disk.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(disk_weight, memory_weight)
    assert_reloads_alike(in_memory, tmp_path)  # saved, it predicts as it did


def test_float16_storage_that_loses_the_activations_is_a_one_line_error(
    shards: list[Path], tmp_path: Path
) -> None:
    """The tiny random backbone's activations are about 1e-10: zero in float16."""
    extractor, head, _ = tiny_classifier()
    top = unfreeze_top(extractor.get_layer(BACKBONE_LAYER), 30)
    params = FinetuneParams(epochs=2, batch_size=8, activation_dtype="float16")
    with pytest.raises(PipelineError, match=r"^finetune.activation_dtype=float16 cannot hold"):
        fit_on_activations(
            extractor,
            head,
            {"train": (shards, 24)},
            N_CLASSES,
            top=top,
            params=params,
            views=Views(AUGMENT, 0),
            callbacks=[],
        )
