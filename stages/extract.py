"""Stage `extract`: run the frozen backbone once over every split and save the features, with
those of the training images' augmented views and of the mirrored test images; each image's
from the memo when an earlier run computed it."""

import logging

from transfer.atomic import atomic_output
from transfer.cluster import output_root
from transfer.distribution import stage_context
from transfer.errors import run_main
from transfer.extraction import FrozenForward, extract_features
from transfer.frozen.rows import built_on_first_call
from transfer.frozen.version import forward_version
from transfer.litert import engine_for, frozen_forward
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.factories import build_feature_extractor
from transfer.models.files import save_model
from transfer.params import load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FEATURES_DIR
from transfer.timing import phase
from transfer.views import Views

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    context = stage_context(params)  # the seed: the initial weights when backbone.weights is null
    strategy = context.strategy
    meta = read_cache_meta(CACHE_DIR)
    backbone = params.backbone
    with phase("load models"), strategy.scope():
        extractor = build_feature_extractor(backbone.name, meta.image_size, backbone.weights)
        version = forward_version(
            extractor, engine_for(backbone.engine, strategy), backbone.name, meta.image_size
        )
    # Converted to TFLite only if some image is not in the memo.
    call = built_on_first_call(lambda: frozen_forward(extractor, backbone.engine, strategy))
    forward = FrozenForward(call, extractor.output_shape[-1], version, backbone.batch_size)
    # On a cluster every worker extracts its share of each batch; only the chief keeps files.
    with output_root(params.distribute) as root:
        with atomic_output(root / FEATURES_DIR) as features_dir:
            features_dir.mkdir()
            count = extract_features(
                forward,
                meta,
                CACHE_DIR,
                features_dir=features_dir,
                views=Views(params.augment, params.seed),
                memo=context.memo,
            )
        save_model(extractor, root / EXTRACTOR_FILE)
    log.info("%d feature rows computed, %d from the memo", count.computed, count.reused)


if __name__ == "__main__":
    run_main(main)
