"""Stage `export`: the whole classifier as a Keras file, a SavedModel, float, float16,
dynamic-range and int8 TFLite models, optionally ONNX, and labels, each checked on the test
images against the Keras one."""

import logging

from transfer.atomic import write_json
from transfer.errors import run_main
from transfer.export.exporter import export_classifier
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.head_only import classifier_files
from transfer.params import load_params
from transfer.paths import (
    CACHE_DIR,
    EXPORT_DIR,
    EXPORT_METRICS_FILE,
    EXTRACTOR_FILE,
    FINETUNED_DIR,
    HEAD_FILE,
    MODEL_FILE,
)

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    metrics = export_classifier(
        classifier_files(FINETUNED_DIR, EXTRACTOR_FILE, HEAD_FILE),
        read_cache_meta(CACHE_DIR),
        CACHE_DIR,
        params=params.export,
        reference_batch_size=params.backbone.batch_size,
        export_dir=EXPORT_DIR,
        model_file=MODEL_FILE,
    )
    write_json(EXPORT_METRICS_FILE, metrics)
    for name, figures in metrics.items():
        one_thread = figures["latency_ms_1_thread"]
        log.info(
            "%s (%s): test accuracy %.4f, agrees with Keras on %.4f of %d test images (largest "
            "probability difference %.4f); %.1f MB, %s ms an image on 1 thread, %.1f on %d",
            name,
            figures["file"],
            figures["accuracy"],
            figures["agreement"],
            figures["images"],
            figures["max_probability_difference"],
            figures["bytes"] / 1e6,
            "-" if one_thread is None else f"{one_thread:.1f}",
            figures["latency_ms_all_threads"],
            figures["threads"],
        )


if __name__ == "__main__":
    run_main(main)
