"""The training images' variants and the one order of their rows (NumPy only).

Each training image has `1 + augment.views` variants: the clean image, then its augmented
views. Every array of them (features, fine-tune activations, labels) holds the clean rows
of all the images first, in the cached order, then view 0 of every image, then view 1, and
so on: variant v of image i is row v x images + i. `extract` writes the clean rows and the
views' rows to two files, `finetune` caches them in one array; both produce the blocks in
`blocks` order, and the readers index them through `TrainingVariants`.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transfer.errors import PipelineError
from transfer.features import load_features, views_file

CLEAN = None  # the block of the clean images, in `blocks`


@dataclass(frozen=True)
class TrainingVariants:
    """The rows of `images` training images' clean and `views` augmented variants."""

    images: int
    views: int

    @property
    def per_image(self) -> int:
        """Variants of each image: the clean one and its views."""
        return 1 + self.views

    @property
    def rows(self) -> int:
        return self.images * self.per_image

    @property
    def view_rows(self) -> int:
        """Rows of the views alone, after the clean ones."""
        return self.images * self.views

    @property
    def view_blocks(self) -> tuple[int, ...]:
        """The views' blocks in row order, by view number."""
        return tuple(range(self.views))

    @property
    def blocks(self) -> tuple[int | None, ...]:
        """Every block in row order: CLEAN, then the views'."""
        return (CLEAN, *self.view_blocks)

    def row(self, variant: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The row of variant `variant` (0 = clean, v + 1 = view v) of image `image`."""
        return variant * self.images + image

    def image(self, row: np.ndarray) -> np.ndarray:
        """The image a row belongs to."""
        return row % self.images

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """The label of every row, from the images' labels."""
        return np.tile(labels, self.per_image)


def load_training_variants(features_dir: Path, views: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, integer labels) of every variant of the training images, `views` augmented
    views each, in the rows' order, from extract's files."""
    clean, labels = load_features(features_dir, "train")
    if not views:
        return clean, labels
    variants = TrainingVariants(len(labels), views)
    features = np.concatenate([clean, np.load(views_file(features_dir))])
    if len(features) != variants.rows:
        raise PipelineError(
            f"{views_file(features_dir)}: {len(features) - len(clean)} rows, not "
            f"{variants.view_rows} ({views} views of {len(labels)} images); run `dvc repro`"
        )
    return features, variants.labels(labels)
