"""The decisions made while reviewing, kept the moment they are made: relabels and drops in
corrections.csv (what the pipeline applies), and "keep" in reviewed.csv beside it, with the
photo's SHA-256, so that an item once kept is not asked again unless its photo changes."""

import csv
import threading
from dataclasses import dataclass, field
from pathlib import Path

from transfer.atomic import write_csv
from transfer.hashing import sha256_of
from transfer.manifests.corrections import read_corrections, update_corrections

REVIEWED_COLUMNS = ["item", "sha256"]
KEEP = "keep"
UNDO = "undo"


@dataclass
class Decisions:
    """The decisions of a project: `corrections` (corrections.csv), `reviewed` (the file of
    kept items beside it) and `photos`, the folder the items' photos are in (data/raw).
    Thread-safe: the server decides on several requests at once."""

    corrections: Path
    reviewed: Path
    photos: Path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def labels(self) -> dict[str, str]:
        """{photo: label or drop} of corrections.csv's rows."""
        return {path: label for path, (_, label) in read_corrections(self.corrections).items()}

    def kept(self) -> dict[str, str]:
        """{item: the SHA-256 its photos had} of the items kept."""
        if not self.reviewed.exists():
            return {}
        with self.reviewed.open(newline="") as file:
            return {row["item"]: row["sha256"] for row in csv.DictReader(file)}

    def digests(self, photos: list[str]) -> list[str]:
        """The SHA-256 of each photo (two equal ones: a pair of byte-identical copies), "" for
        one that is gone."""
        files = [self.photos / photo for photo in photos]
        return [sha256_of(file) if file.is_file() else "" for file in files]

    def fingerprint(self, photos: list[str]) -> str:
        """The SHA-256s of an item's photos, as one string: a kept item whose photos change
        is asked again."""
        return "+".join(self.digests(photos))

    def decide(self, item: str, photos: list[str], target: str, decision: str) -> None:
        """Record a decision on `item` (its `photos`, of which `target` is the one decided
        on): a class (relabel), drop, keep (the item is fine: no correction for its photos)
        or undo (as if never decided)."""
        with self.lock:
            kept = self.kept()
            if decision in (KEEP, UNDO):
                update_corrections(self.corrections, dict.fromkeys(photos))
                kept.pop(item, None)
                if decision == KEEP:
                    kept[item] = self.fingerprint(photos)
            else:
                update_corrections(self.corrections, {target: decision})
                kept.pop(item, None)
            write_csv(self.reviewed, REVIEWED_COLUMNS, sorted(kept.items()))
