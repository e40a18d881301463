"""Stage `finetune`: unfreeze the top `unfreeze` backbone layers and train them with the head.

With `unfreeze: 0` there is nothing to train (transfer/models/head_only.py): this stage only passes
the head's test probabilities on, without loading TensorFlow.
"""

import logging

from transfer.atomic import atomic_output, write_npy
from transfer.cluster import output_root
from transfer.errors import run_main
from transfer.models.head_only import pass_on_the_head, trains_backbone
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    EXTRACTOR_FILE,
    FINETUNE_LIVE_DIR,
    FINETUNED_DIR,
    FINETUNED_MODEL,
    HEAD_FILE,
    MIRRORED_PROBABILITIES,
    TEST_PROBABILITIES,
)
from transfer.timing import phase
from transfer.training.live import open_live

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    # On a cluster every worker trains; only the chief keeps its files.
    with (
        output_root(params.distribute) as root,
        atomic_output(root / FINETUNE_LIVE_DIR) as live_dir,
        atomic_output(root / FINETUNED_DIR) as out_dir,
    ):
        out_dir.mkdir()
        live = open_live(live_dir)
        if not trains_backbone(params.unfreeze):
            log.info("unfreeze=0: the classifier is the frozen backbone and the trained head")
            live.end()
            pass_on_the_head(out_dir)
            return
        # Imported only here: a head-only run never loads TensorFlow (seconds of start-up).
        from transfer.models.files import save_model
        from transfer.training.backbone import finetune_classifier

        classifier, probabilities, mirrored = finetune_classifier(
            params, CACHE_DIR, EXTRACTOR_FILE, HEAD_FILE, live
        )
        with phase("save models"):
            save_model(classifier, out_dir / FINETUNED_MODEL)
            write_npy(out_dir / TEST_PROBABILITIES, probabilities)
            write_npy(out_dir / MIRRORED_PROBABILITIES, mirrored)


if __name__ == "__main__":
    run_main(main)
