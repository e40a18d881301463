"""Stage `extract`: run the frozen backbone once over every split and save the features."""

import logging

import keras

from transfer.atomic import atomic_output, write_json
from transfer.cluster import output_root
from transfer.distribution import strategy_for
from transfer.errors import run_main
from transfer.features import paths_file
from transfer.inference import extract_features
from transfer.litert import frozen_forward
from transfer.models.factories import build_feature_extractor
from transfer.models.files import save_model
from transfer.params import load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FEATURES_DIR, SPLITS
from transfer.records.cache_meta import read_cache_meta
from transfer.tfdata import make_dataset, record_paths

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
    # On a cluster every worker extracts its share of each batch; only the chief keeps files.
    with output_root(params.distribute) as root:
        with atomic_output(root / FEATURES_DIR) as features_dir:
            features_dir.mkdir()
            for split in SPLITS:
                count = meta.counts[split]
                log.info("extracting %s features of %d images", split, count)
                files = meta.split_files(CACHE_DIR, split)
                dataset = make_dataset(files, params.backbone.batch_size)
                extract_features(forward, width, dataset, count, features_dir, split)
                write_json(paths_file(features_dir, split), record_paths(files))
        save_model(extractor, root / EXTRACTOR_FILE)


if __name__ == "__main__":
    run_main(main)
