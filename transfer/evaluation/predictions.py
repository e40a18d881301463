"""A classifier's predictions on a cached split, with a shortcut for head-only models."""

import logging
from pathlib import Path

import keras
import numpy as np

from transfer.features import load_features
from transfer.inference import predict_array, traced_call
from transfer.models.factories import EXTRACTOR_LAYER, HEAD_LAYER
from transfer.models.files import load_model
from transfer.tfdata import make_dataset

log = logging.getLogger(__name__)


def read_images(files: list[Path], batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 images, integer labels, paths) of a split, in the cached (unshuffled) order."""
    images, labels, paths = [], [], []
    for pixels, batch_labels, names in make_dataset(files, batch_size, with_filenames=True):
        images.append(pixels.numpy().astype(np.uint8))
        labels.append(batch_labels.numpy())
        paths += [name.decode() for name in names.numpy()]
    return np.concatenate(images), np.concatenate(labels), paths


def predict_probabilities(model: keras.Model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for every row of `inputs` (images or features), a batch at a time."""
    return predict_array(traced_call(model), inputs, model.output_shape[-1], batch_size)


def backbone_unchanged(model: keras.Model, extractor: keras.Model) -> bool:
    """Whether the classifier's feature extractor still has the frozen extractor's weights."""
    trained = model.get_layer(EXTRACTOR_LAYER).get_weights()
    frozen = extractor.get_weights()
    return len(trained) == len(frozen) and all(map(np.array_equal, trained, frozen))


def classify_split(
    model: keras.Model,
    extractor_file: Path,
    features_dir: Path,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """The classifier's class probabilities for a split's images (in the cached order).

    After head-only training (unfreeze=0) the backbone is the frozen extractor, whose outputs
    for these images are the cached features: only the head needs to run, which gives the
    same values (to float rounding) in a fraction of a second instead of a forward pass of
    every image through the backbone. The features must come from the same records in the
    same order, which DVC ensures: `extract` reruns whenever `data/cache` changes.
    """
    features, feature_labels = load_features(features_dir, split)
    if np.array_equal(feature_labels, labels) and backbone_unchanged(
        model, load_model(extractor_file)
    ):
        log.info("backbone unchanged since extract: classifying the cached %s features", split)
        return predict_probabilities(model.get_layer(HEAD_LAYER), features, batch_size)
    log.info("backbone fine-tuned: classifying the %d %s images", len(images), split)
    return predict_probabilities(model, images, batch_size)
