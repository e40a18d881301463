"""Stage `extract`: run the frozen backbone once over every split and save the features."""

import logging
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.atomic import atomic_output
from stages.cli import run
from stages.features import features_file, labels_file
from stages.meta import read_meta, split_files
from stages.model_files import save_model
from stages.models import build_feature_extractor, compiled_forward
from stages.params import load_params
from stages.paths import CACHE_DIR, EXTRACTOR_FILE, FEATURES_DIR, SPLITS
from stages.tfdata import make_dataset

log = logging.getLogger("extract")


def extract_features(
    forward: Callable[[tf.Tensor], tf.Tensor],
    width: int,
    dataset: tf.data.Dataset,
    count: int,
    out_dir: Path,
    split: str,
) -> None:
    """Write `<split>.npy` (count x width, float32) and `<split>_labels.npy` batch by batch.

    `forward` is the extractor's traced call (compiled_forward), traced once for all splits.
    The arrays are memory-mapped files, so memory does not grow with the dataset.
    """
    features = np.lib.format.open_memmap(
        features_file(out_dir, split), "w+", np.float32, (count, width)
    )
    labels = np.lib.format.open_memmap(labels_file(out_dir, split), "w+", np.int64, (count,))
    progress = keras.utils.Progbar(count, unit_name="image")
    done = 0
    for images, one_hot in dataset:
        batch = forward(images).numpy()
        features[done : done + len(batch)] = batch
        labels[done : done + len(batch)] = np.argmax(one_hot, axis=-1)
        done += len(batch)
        progress.update(done)
    if done != count:
        raise RuntimeError(f"{split}: expected {count} cached images, read {done}")
    features.flush()
    labels.flush()
    del features, labels  # close the memory maps before the directory is renamed


def main() -> None:
    params = load_params()
    keras.utils.set_random_seed(params.seed)  # the initial weights when backbone.weights is null
    meta = read_meta(CACHE_DIR)
    extractor = build_feature_extractor(
        params.backbone.name, meta["image_size"], params.backbone.weights
    )
    forward = compiled_forward(extractor)
    width = extractor.output_shape[-1]
    n_classes = len(meta["classes"])
    with atomic_output(FEATURES_DIR) as features_dir:
        features_dir.mkdir()
        for split in SPLITS:
            count = meta["counts"][split]
            log.info("extracting %s features of %d images", split, count)
            files = split_files(CACHE_DIR, meta, split)
            dataset = make_dataset(files, n_classes, params.backbone.batch_size)
            extract_features(forward, width, dataset, count, features_dir, split)
    save_model(extractor, EXTRACTOR_FILE)


if __name__ == "__main__":
    run(main)
