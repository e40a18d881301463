"""Stage `train_head`: train the classification head on the cached features only (each
training image's clean features and each of its augmented views' are samples), and write its
class probabilities for the test features, clean and mirrored (the head-only classifier's,
for evaluate)."""

import numpy as np

from transfer.atomic import atomic_output, write_npy
from transfer.cluster import output_root
from transfer.distribution import stage_context
from transfer.errors import run_main
from transfer.features import load_features, mirrored_file
from transfer.inference import predict_probabilities
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.files import save_model
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    FEATURES_DIR,
    HEAD_FILE,
    HEAD_LIVE_DIR,
    HEAD_MIRRORED_PROBABILITIES,
    HEAD_TEST_PROBABILITIES,
)
from transfer.row_order import load_training_variants
from transfer.timing import phase
from transfer.training.callbacks import training_callbacks
from transfer.training.head import feature_batches, train_head
from transfer.training.live import open_live


def main() -> None:
    params = load_params()
    context = stage_context(params)
    n_classes = read_cache_meta(CACHE_DIR).n_classes
    with phase("load features"):
        val, (test_features, _) = (load_features(FEATURES_DIR, s) for s in ("val", "test"))
        train_features, train_labels = load_training_variants(FEATURES_DIR, params.augment.views)
        mirrored_features = np.load(mirrored_file(FEATURES_DIR))
    batch_size = params.head.batch_size  # the global batch, split across the replicas
    train = feature_batches(train_features, train_labels, n_classes, batch_size, params.seed)
    has_val = len(val[1]) > 0
    # On a cluster every worker trains; only the chief keeps its files.
    with output_root(params.distribute) as root:
        with (
            atomic_output(root / HEAD_LIVE_DIR) as live_dir,
            phase("train"),
            context.strategy.scope(),
        ):
            callbacks = training_callbacks(
                params.head.patience, open_live(live_dir), has_val, reduce_on_plateau=True
            )
            head = train_head(
                train,
                feature_batches(*val, n_classes, batch_size) if has_val else None,
                train_labels,
                width=train_features.shape[1],
                n_classes=n_classes,
                params=params.head,
                seed=params.seed,
                callbacks=callbacks,
                precision=context.precision,
            )
        with phase("predict"):
            probabilities = predict_probabilities(head, test_features, batch_size)
            mirrored = predict_probabilities(head, mirrored_features, batch_size)
        with phase("save models"):
            save_model(head, root / HEAD_FILE)
            write_npy(root / HEAD_TEST_PROBABILITIES, probabilities)
            write_npy(root / HEAD_MIRRORED_PROBABILITIES, mirrored)


if __name__ == "__main__":
    run_main(main)
