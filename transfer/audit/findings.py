"""The audit of every image of a split dataset: which ones are near-duplicates of each other,
which ones look filed in the wrong class, which don't belong to the set, which are unusable,
and the files that say so."""

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from transfer.atomic import write_csv, write_json
from transfer.audit.drawings import draw_duplicates, draw_suspects
from transfer.audit.duplicates import near_duplicate_pairs
from transfer.audit.label_errors import fold_of, label_issues, out_of_fold_probabilities
from transfer.audit.leaks import DUPLICATE_COLUMNS, DuplicateRow
from transfer.audit.outliers import neighbour_distances, outliers
from transfer.audit.quality import Measures
from transfer.audit.unusable import unusable
from transfer.errors import PipelineError
from transfer.features import load_features, load_paths
from transfer.params import AuditParams
from transfer.paths import DUPLICATES_FILE, OUTLIERS_FILE, QUALITY_FILE, SUSPECTS_FILE
from transfer.splitting import hash_position

SUSPECT_COLUMNS = ["image", "split", "label", "suggested", "score", "suggested_probability"]
SuspectRow = tuple[str, str, str, str, float, float]  # in SUSPECT_COLUMNS' order
# What transfer/review/items.py reads of the photos that don't belong and the unusable ones.
OUTLIER_COLUMNS = ["image", "label", "split", "score"]
OutlierRow = tuple[str, str, str, float]
QUALITY_COLUMNS = ["image", "label", "split", "issue", "score"]
QualityRow = tuple[str, str, str, str, float]
T = TypeVar("T")


@dataclass(frozen=True)
class AuditedImages:
    """Every image of every split, in one order: features, integer labels, paths, splits."""

    features: np.ndarray
    labels: np.ndarray
    paths: list[str]
    splits: list[str]


def load_audited_images(features_dir: Path, splits: tuple[str, ...]) -> AuditedImages:
    """The features, labels and paths of every image of the splits, one split after another."""
    features, labels, paths, names = [], [], [], []
    for split in splits:
        split_features, split_labels = load_features(features_dir, split)
        split_paths = load_paths(features_dir, split)
        if len(split_paths) != len(split_labels):
            raise PipelineError(f"{features_dir}: the {split} files disagree; run `dvc repro`")
        features.append(split_features)
        labels.append(split_labels)
        paths += split_paths
        names += [split] * len(split_paths)
    return AuditedImages(np.concatenate(features), np.concatenate(labels), paths, names)


def find_duplicates(images: AuditedImages, threshold: float) -> list[DuplicateRow]:
    """Near-duplicate pairs, most similar first; each tells the splits of its two images."""
    return [
        (
            images.paths[i],
            images.paths[j],
            round(similarity, 6),
            images.splits[i],
            images.splits[j],
        )
        for i, j, similarity in near_duplicate_pairs(images.features, threshold)
    ]


@dataclass(frozen=True)
class LabelCheck:
    """The label check's result: the suspects listed, most suspicious first; how many the
    rule flagged (more than listed when audit.max_suspects cuts the list); and the
    out-of-fold accuracy, which says how far to trust the suggestions."""

    suspects: list[SuspectRow]
    flagged: int
    out_of_fold_accuracy: float


def audit_probabilities(
    images: AuditedImages, n_classes: int, params: AuditParams, *, seed: int
) -> np.ndarray:
    """Each image's class probabilities from a model that never saw it. The folds come from a
    hash of each path, so adding images moves no other image's fold."""
    positions = np.array([hash_position(f"audit:{path}", seed) for path in images.paths])
    folds = fold_of(positions, params.folds)
    return out_of_fold_probabilities(images.features, images.labels, folds, n_classes, params.l2)


def listed(flagged: list[T], max_suspects: float, photos: int) -> list[T]:
    """The head of the flagged list, most suspicious first: at most `max_suspects` of the
    `photos`. A weak out-of-fold model flags many of its own mistakes too; misfiled photos
    rank near the top, so the head is what is worth a person's time (docs/benchmarks.md,
    "What the audit found")."""
    return flagged[: int(max_suspects * photos)]


def find_suspects(
    images: AuditedImages, classes: tuple[str, ...], params: AuditParams, *, seed: int
) -> LabelCheck:
    """Likely label errors by the rule audit.label_issues says, with the class the model
    suggests, the most suspicious audit.max_suspects share of the photos at most."""
    probabilities = audit_probabilities(images, len(classes), params, seed=seed)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == images.labels))
    flagged = label_issues(probabilities, images.labels, params.label_issues)
    rows = [
        (
            images.paths[index],
            images.splits[index],
            classes[images.labels[index]],
            classes[suggested],
            round(score, 6),
            round(float(probabilities[index, suggested]), 6),
        )
        for index, suggested, score in listed(flagged, params.max_suspects, len(images.labels))
    ]
    return LabelCheck(rows, len(flagged), accuracy)


def find_outliers(
    images: AuditedImages, classes: tuple[str, ...], *, neighbours: int, fence: float
) -> list[OutlierRow]:
    """The photos far from their nearest neighbours in feature space, most unusual first."""
    scores = neighbour_distances(images.features, neighbours)
    return [
        (images.paths[i], classes[images.labels[i]], images.splits[i], round(score, 6))
        for i, score in outliers(scores, fence)
    ]


def find_unusable(
    images: AuditedImages,
    classes: tuple[str, ...],
    *,
    measures: list[Measures],
    sha256s: list[str],
    blur_fence: float,
) -> list[QualityRow]:
    """The unusable photos, by issue, worst first; `measures` and `sha256s` in images' order."""
    return [
        (images.paths[i], classes[images.labels[i]], images.splits[i], issue, score)
        for i, issue, score in unusable(measures, images.paths, sha256s, blur_fence=blur_fence)
    ]


@dataclass(frozen=True)
class Findings:
    """What the audit found, each list most worrying first."""

    duplicates: list[DuplicateRow]
    label_check: LabelCheck
    outliers: list[OutlierRow]
    unusable: list[QualityRow]


def write_findings(
    out_dir: Path, raw_dir: Path, findings: Findings, *, picture_items: int
) -> dict[str, int | float]:
    """duplicates.csv, suspects.csv, outliers.csv, quality.csv, metrics.json and the two
    pictures; returns the counts."""
    duplicates, suspects = findings.duplicates, findings.label_check.suspects
    write_csv(out_dir / DUPLICATES_FILE.name, DUPLICATE_COLUMNS, duplicates)
    write_csv(out_dir / SUSPECTS_FILE.name, SUSPECT_COLUMNS, suspects)
    write_csv(out_dir / OUTLIERS_FILE.name, OUTLIER_COLUMNS, findings.outliers)
    write_csv(out_dir / QUALITY_FILE.name, QUALITY_COLUMNS, findings.unusable)
    counts = {
        "duplicate_pairs": len(duplicates),
        "cross_split_duplicate_pairs": sum(a != b for _, _, _, a, b in duplicates),
        "suspected_label_errors": len(suspects),
        "label_issues_flagged": findings.label_check.flagged,
        "outliers": len(findings.outliers),
        "unusable_photos": len(findings.unusable),
        "out_of_fold_accuracy": round(findings.label_check.out_of_fold_accuracy, 6),
    }
    write_json(out_dir / "metrics.json", counts)
    shown = [(path, label, suggested, score) for path, _, label, suggested, score, _ in suspects]
    draw_suspects(raw_dir, shown[:picture_items]).save(out_dir / "suspects.png", format="PNG")
    pictured = duplicates[:picture_items]
    draw_duplicates(raw_dir, pictured).save(out_dir / "duplicates.png", format="PNG")
    return counts
