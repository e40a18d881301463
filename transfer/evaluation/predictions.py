"""The classifier's test probabilities as `evaluate` scores them, from what `finetune` wrote."""

from pathlib import Path

import numpy as np

from transfer.errors import PipelineError
from transfer.paths import MIRRORED_PROBABILITIES, TEST_PROBABILITIES


def test_probabilities(finetuned_dir: Path, tta: bool, images: int, classes: int) -> np.ndarray:
    """The test images' class probabilities; with `tta` (test-time augmentation), the mean of
    each image's and its mirror image's. Each file must hold `images` x `classes` values."""
    names = [TEST_PROBABILITIES, MIRRORED_PROBABILITIES] if tta else [TEST_PROBABILITIES]
    predictions = []
    for name in names:
        file = finetuned_dir / name
        predictions.append(np.load(file))
        if predictions[-1].shape != (images, classes):
            raise PipelineError(
                f"{file}: shape {predictions[-1].shape} does not fit {images} test images "
                f"and {classes} classes; run `dvc repro`"
            )
    return np.mean(predictions, axis=0)
