"""What there is to review: the audit's suspects, then its near-duplicate pairs (leaks, across
splits, first), each with the decisions already made on it."""

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from transfer.review.decisions import Decisions

SUSPECT, LEAK, DUPLICATE = "suspect", "leak", "duplicate"


@dataclass(frozen=True)
class Item:
    """One thing to decide on: a suspect (one photo, with the class the audit suggests and
    the probability it gives the filed class) or a pair (two photos and their similarity)."""

    id: str
    kind: str
    photos: list[str]
    labels: list[str]
    splits: list[str]
    suggested: str | None = None
    confidence: float | None = None
    similarity: float | None = None


def read_items(audit_dir: Path) -> list[Item]:
    """The audit's suspects, most suspicious first, then its pairs, leaks first."""
    items = []
    with (audit_dir / "suspects.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            items.append(
                Item(
                    row["image"],
                    SUSPECT,
                    [row["image"]],
                    [row["label"]],
                    [row["split"]],
                    suggested=row["suggested"],
                    confidence=round(1 - float(row["score"]), 4),
                )
            )
    pairs = []
    with (audit_dir / "duplicates.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            photos = [row["image_a"], row["image_b"]]
            splits = [row["split_a"], row["split_b"]]
            pairs.append(
                Item(
                    " + ".join(photos),
                    LEAK if splits[0] != splits[1] else DUPLICATE,
                    photos,
                    [photo.split("/")[0] for photo in photos],
                    splits,
                    similarity=float(row["similarity"]),
                )
            )
    return items + sorted(pairs, key=lambda pair: pair.kind != LEAK)


def item_states(items: list[Item], decisions: Decisions) -> list[dict]:
    """Each item as the page shows it, with the corrections of its photos (`decided`) and
    whether it was kept as it is (`kept`: only while its photos have not changed)."""
    labels, kept = decisions.labels(), decisions.kept()
    states = []
    for item in items:
        decided = {photo: labels[photo] for photo in item.photos if photo in labels}
        is_kept = item.id in kept and kept[item.id] == decisions.fingerprint(item.photos)
        states.append({**asdict(item), "decided": decided, "kept": is_kept})
    return states
