"""Every path the stages read or write, named once; dvc.yaml lists the same paths."""

from pathlib import Path

STAGES_DIR = Path("stages")  # one module a stage: what dvc.yaml runs
# <stage>.sha256: the modules each stage runs and their hashes (transfer/stage_code.py)
CODE_VERSIONS_DIR = Path("data/code_versions")
DOWNLOADS_DIR = Path("data/downloads")  # downloaded archives, kept so a rerun does not download
RAW_DIR = Path("data/raw")  # <class>/<image> as found in the source, and nothing else
RAW_INDEX = Path("data/raw.csv")  # each image of RAW_DIR and its SHA-256 (manifests/raw_index.py)
SKIPPED_REPORT = Path("reports/download/skipped.csv")  # outside RAW_DIR: no class collides
SPLITS = ("train", "val", "test")
SPLIT_DIR = Path("data/split")  # <split>.csv for each of SPLITS
CACHE_DIR = Path("data/cache")  # <split>-NNNNN-of-NNNNN.tfrecord shards and META_FILE
META_FILE = "meta.json"
FEATURES_DIR = Path("data/features")  # <split>.npy and <split>_labels.npy
EXTRACTOR_FILE = Path("models/feature_extractor.keras")
HEAD_FILE = Path("models/head.keras")
# The head's class probabilities for the cached test features, in their order (train_head).
HEAD_TEST_PROBABILITIES = Path("models/head_test_probabilities.npy")
HEAD_MIRRORED_PROBABILITIES = Path("models/head_test_mirrored_probabilities.npy")  # for TTA
# finetune's output: the classifier's test probabilities (TEST_PROBABILITIES) and those of the
# mirrored test images (MIRRORED_PROBABILITIES, for test-time augmentation), and the
# fine-tuned classifier (FINETUNED_MODEL) when there is one: see transfer/models/head_only.py.
FINETUNED_DIR = Path("models/finetuned")
TEST_PROBABILITIES = "test_probabilities.npy"
MIRRORED_PROBABILITIES = "test_mirrored_probabilities.npy"
FINETUNED_MODEL = "model.keras"
MODEL_FILE = Path("models/model.keras")  # the whole classifier, assembled by export
EXPORT_DIR = Path("models/export")
HEAD_LIVE_DIR = Path("reports/train_head")
FINETUNE_LIVE_DIR = Path("reports/finetune")
METRICS_FILE = Path("reports/metrics.json")
EXPORT_METRICS_FILE = Path("reports/export/metrics.json")  # TFLite accuracy and agreement
CONFUSION_FILE = Path("reports/confusion.csv")
PREDICTIONS_FILE = Path("reports/predictions.csv")
GRID_FILE = Path("reports/predictions.png")
AUDIT_DIR = Path("reports/audit")  # the CSVs below, metrics.json, *.png
DUPLICATES_FILE = AUDIT_DIR / "duplicates.csv"
SUSPECTS_FILE = AUDIT_DIR / "suspects.csv"
OUTLIERS_FILE = AUDIT_DIR / "outliers.csv"  # photos that don't belong to the set
QUALITY_FILE = AUDIT_DIR / "quality.csv"  # unusable photos
CORRECTIONS_FILE = Path("corrections.csv")  # the user's label corrections, kept in git
REVIEWED_FILE = Path("reviewed.csv")  # the items `review` was told to keep as they are
