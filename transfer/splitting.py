"""The photos with their labels, assigned to train, val or test by a hash of their content and
the split's seed (the lists themselves: manifests/split_lists.py)."""

import hashlib
from collections import Counter

from transfer.errors import PipelineError
from transfer.manifests.split_lists import Photo
from transfer.paths import SPLITS


def hash_position(text: str, seed: int) -> float:
    """A number in [0, 1), uniform over texts, that depends only on the text and the seed."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(sha256: str, seed: int, val: float, test: float) -> str:
    """The split of a photo, by its content; it depends on nothing else, so adding photos
    moves no other, and two copies of one photo always share a split."""
    position = hash_position(sha256, seed)
    if position < test:
        return "test"
    return "val" if position < test + val else "train"


def drawn_shares(given: dict[str, str | None], val: float, test: float) -> tuple[float, float]:
    """The val and test shares drawn from the photos given no split or given for training:
    split.val and split.test, but none for a split that some photo is given for (those
    photos are that split, as a set's own test/ folder is its test set)."""
    named = set(given.values())
    return (0.0 if "val" in named else val), (0.0 if "test" in named else test)


def split_images(
    photos: list[Photo],
    seed: int,
    val: float,
    test: float,
    given: dict[str, str | None] | None = None,
) -> dict[str, list[Photo]]:
    """Split the photos by the same expected ratios in every class, each photo by its content
    unless `given` ({path: train, val, test or None}) says its split; each class must train."""
    given = given or {}
    shares = drawn_shares(given, val, test)
    splits: dict[str, list[Photo]] = {name: [] for name in SPLITS}
    for photo in photos:
        split = given.get(photo.path)
        if split not in ("val", "test"):
            split = assign_split(photo.sha256, seed, *shares)
        splits[split].append(photo)
    train_classes = Counter(photo.label for photo in splits["train"])
    for name in sorted({photo.label for photo in photos}):
        if not train_classes[name]:
            raise PipelineError(
                f"class {name} has no training image with split.val={val} and split.test={test}; "
                "add images to it or lower the ratios"
            )
    for name, ratio in (("val", val), ("test", test)):
        if ratio > 0 and not splits[name]:
            raise PipelineError(
                f"split.{name}={ratio} leaves the {name} split empty with {len(photos)} images; "
                f"add images or raise split.{name}"
            )
    return splits


def seeded_order(photos: list[Photo], seed: int) -> list[Photo]:
    """The photos in a seeded order that mixes the classes, so that any run of records (a
    shuffle buffer, the int8 calibration images) holds every class. By content, as the
    split: the same photos in another layout (class folders, split folders, a labels file)
    give the same records in the same order."""
    return sorted(photos, key=lambda photo: hash_position(f"order:{photo.sha256}", seed))
