"""What there is to review: the audit's suspects, its outliers and unusable photos (when the
audit wrote them), then its near-duplicate pairs (leaks, across splits, first), each with the
decisions already made on it."""

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from transfer.audit.unusable import original_first
from transfer.review.decisions import Decisions

SUSPECT, OUTLIER, UNUSABLE, LEAK, DUPLICATE = "suspect", "outlier", "unusable", "leak", "duplicate"
TRAIN = "train"


@dataclass(frozen=True)
class Item:
    """One thing to decide on: a suspect (one photo, with the class the audit suggests, the
    probability it gives the filed class and the suggested one), an outlier or unusable photo
    (its score and issue) or a pair (two photos and their similarity)."""

    id: str
    kind: str
    photos: list[str]
    labels: list[str]
    splits: list[str]
    suggested: str | None = None
    confidence: float | None = None
    suggested_confidence: float | None = None
    similarity: float | None = None
    issue: str | None = None
    score: float | None = None


def _rows(file: Path) -> list[dict[str, str]]:
    if not file.is_file():
        return []
    with file.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str | None) -> float | None:
    return None if text in (None, "") else round(float(text), 4)


def _suspect(row: dict[str, str]) -> Item:
    return Item(
        row["image"],
        SUSPECT,
        [row["image"]],
        [row["label"]],
        [row["split"]],
        suggested=row["suggested"],
        confidence=round(1 - float(row["score"]), 4),
        suggested_confidence=_number(row.get("suggested_probability")),
    )


def _photo_finding(row: dict[str, str], kind: str) -> Item:
    """An outlier or an unusable photo: a row of outliers.csv or quality.csv."""
    image = row["image"]
    label = row.get("label") or image.split("/")[0]
    return Item(
        f"{kind}:{image}",
        kind,
        [image],
        [label],
        [row.get("split", "")],
        issue=row.get("issue") or None,
        score=_number(row.get("score")),
    )


def _pair(row: dict[str, str]) -> Item:
    photos = [row["image_a"], row["image_b"]]
    splits = [row["split_a"], row["split_b"]]
    return Item(
        " + ".join(photos),
        LEAK if splits[0] != splits[1] else DUPLICATE,
        photos,
        [photo.split("/")[0] for photo in photos],
        splits,
        similarity=float(row["similarity"]),
    )


def read_items(audit_dir: Path) -> list[Item]:
    """The audit's suspects, most suspicious first, its outliers and unusable photos, then its
    pairs, leaks first."""
    items = [_suspect(row) for row in _rows(audit_dir / "suspects.csv")]
    items += [_photo_finding(row, OUTLIER) for row in _rows(audit_dir / "outliers.csv")]
    items += [_photo_finding(row, UNUSABLE) for row in _rows(audit_dir / "quality.csv")]
    pairs = [_pair(row) for row in _rows(audit_dir / "duplicates.csv")]
    return items + sorted(pairs, key=lambda pair: pair.kind != LEAK)


def label_check_figures(audit_dir: Path) -> dict[str, float | int | None]:
    """From the audit's metrics.json: `accuracy`, its model's out-of-fold accuracy (how far to
    trust its suggestions), and `flagged`, how many photos its label rule flagged (more than
    suspects.csv lists when audit.max_suspects cut the list); None before an audit wrote them."""
    file = audit_dir / "metrics.json"
    metrics = json.loads(file.read_text()) if file.is_file() else {}
    return {
        "accuracy": metrics.get("out_of_fold_accuracy"),
        "flagged": metrics.get("label_issues_flagged"),
    }


def copy_in_pair(photos: list[str], splits: list[str], folder: Path, *, identical: bool) -> str:
    """The photo of a pair to drop by default, the copy rather than the original. Of two
    with the same bytes, the one quality.csv calls the copy (original_first). Otherwise the
    one not in train, else the one whose name holds the other's ("rose/1 (copy).jpg"), else
    the newer file, else the second."""
    if identical:
        return max(photos, key=original_first)
    if splits.count(TRAIN) == 1:
        return photos[splits.index(TRAIN) - 1]
    stems = [Path(photo).stem for photo in photos]
    for index, (stem, other) in enumerate([stems, stems[::-1]]):
        if other in stem and stem != other:
            return photos[index]
    files = [folder / photo for photo in photos]
    if (
        all(file.is_file() for file in files)
        and files[0].stat().st_mtime > files[1].stat().st_mtime
    ):
        return photos[0]
    return photos[1]


def item_states(items: list[Item], decisions: Decisions) -> list[dict]:
    """Each item as the page shows it, with the corrections of its photos (`decided`), whether
    it was kept as it is (`kept`: only while its photos have not changed) and, for a pair,
    the photo to drop by default (`copy`) and whether the two are the same bytes."""
    labels, kept = decisions.labels(), decisions.kept()
    states = []
    for item in items:
        decided = {photo: labels[photo] for photo in item.photos if photo in labels}
        pair = len(item.photos) == 2
        digests = decisions.digests(item.photos) if pair or item.id in kept else []
        is_kept = item.id in kept and kept[item.id] == "+".join(digests)
        state = {**asdict(item), "decided": decided, "kept": is_kept}
        if pair:
            identical = digests[0] == digests[1] != ""
            state["copy"] = copy_in_pair(
                item.photos, item.splits, decisions.photos, identical=identical
            )
            state["identical"] = identical
        states.append(state)
    return states
