"""Stage `extract`: run the frozen backbone once over every split and save the features, with
those of the training images' augmented views and of the mirrored test images."""

import logging

import keras

from transfer.atomic import atomic_output, write_json
from transfer.cluster import output_root
from transfer.distribution import strategy_for
from transfer.errors import run_main
from transfer.features import mirrored_file, paths_file, views_file
from transfer.inference import extract_features, extract_without_labels
from transfer.litert import frozen_forward
from transfer.models.factories import build_feature_extractor
from transfer.models.files import save_model
from transfer.params import load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FEATURES_DIR, SPLITS
from transfer.records.cache_meta import read_cache_meta
from transfer.tfdata import make_dataset, record_paths
from transfer.timing import phase
from transfer.variants import TrainingVariants
from transfer.views import mirror, variant_batches

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    strategy = strategy_for(params.distribute)  # first: before TensorFlow starts
    keras.utils.set_random_seed(params.seed)  # the initial weights when backbone.weights is null
    meta = read_cache_meta(CACHE_DIR)
    with strategy.scope():
        extractor = build_feature_extractor(
            params.backbone.name, meta.image_size, params.backbone.weights
        )
    forward = frozen_forward(extractor, params.backbone.engine, strategy)
    width = extractor.output_shape[-1]
    batch_size = params.backbone.batch_size
    # On a cluster every worker extracts its share of each batch; only the chief keeps files.
    with output_root(params.distribute) as root:
        with atomic_output(root / FEATURES_DIR) as features_dir:
            features_dir.mkdir()
            for split in SPLITS:
                count = meta.counts[split]
                log.info("extracting %s features of %d images", split, count)
                files = meta.split_files(CACHE_DIR, split)
                with phase(f"extract {split}"):
                    dataset = make_dataset(files, batch_size)
                    extract_features(forward, width, dataset, count, features_dir, split)
                write_json(paths_file(features_dir, split), record_paths(files))
            variants = TrainingVariants(meta.counts["train"], params.augment.views)
            if variants.views:
                log.info(
                    "extracting %d augmented views of %d training images",
                    variants.views,
                    variants.images,
                )
                with phase("extract views"):
                    dataset = variant_batches(
                        meta.split_files(CACHE_DIR, "train"),
                        batch_size,
                        params.augment,
                        params.seed,
                        variants.view_blocks,
                    )
                    file = views_file(features_dir)
                    extract_without_labels(forward, width, dataset, variants.view_rows, file)
            log.info("extracting the mirrored test images' features")
            with phase("extract mirrored"):
                dataset = make_dataset(
                    meta.split_files(CACHE_DIR, "test"), batch_size, transform=mirror
                )
                count = meta.counts["test"]
                extract_without_labels(forward, width, dataset, count, mirrored_file(features_dir))
        save_model(extractor, root / EXTRACTOR_FILE)


if __name__ == "__main__":
    run_main(main)
