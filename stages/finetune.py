"""Stage `finetune`: unfreeze the top `unfreeze` backbone layers and train them with the head."""

import logging

import keras

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.models.factories import BACKBONE_LAYER, build_classifier, unfreeze_top
from transfer.models.files import load_model, save_model
from transfer.params import load_params
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FINETUNE_LIVE_DIR, HEAD_FILE, MODEL_FILE
from transfer.records.cache_meta import read_cache_meta
from transfer.training.callbacks import open_live, training_callbacks
from transfer.training.finetune import fit_on_activations, fit_on_images, training_splits

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    keras.utils.set_random_seed(params.seed)
    meta = read_cache_meta(CACHE_DIR)
    extractor = load_model(EXTRACTOR_FILE)
    head = load_model(HEAD_FILE)
    classifier = build_classifier(extractor, head)
    finetune = params.finetune
    with atomic_output(FINETUNE_LIVE_DIR) as live_dir:
        live = open_live(live_dir)
        if params.unfreeze == 0:
            log.info("unfreeze=0: the classifier is the frozen backbone and the trained head")
            live.end()
        else:
            unfreeze_top(extractor.get_layer(BACKBONE_LAYER), params.unfreeze)
            splits = training_splits(CACHE_DIR, meta)
            callbacks = training_callbacks(finetune.patience, live, "val" in splits)
            if finetune.augment.enabled or not finetune.cache_activations:
                val_files = splits["val"][0] if "val" in splits else []
                fit_on_images(
                    classifier,
                    splits["train"][0],
                    val_files,
                    meta.n_classes,
                    finetune,
                    params.seed,
                    callbacks,
                )
            else:
                fit_on_activations(
                    extractor,
                    head,
                    splits,
                    meta.n_classes,
                    params.unfreeze,
                    finetune,
                    params.seed,
                    callbacks,
                    params.backbone.engine,
                )
    save_model(classifier, MODEL_FILE)


if __name__ == "__main__":
    run_main(main)
