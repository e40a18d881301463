"""Which photos are unusable, from their measures (transfer.audit.quality): byte-identical
copies, near-black or near-white, almost no information, an extreme shape, heavily blurred.

The first four bars are cleanvision's defaults, absolute as their definitions are. Blur is
judged against the set itself (transfer.audit.fences): how sharp a photo can be depends on its
resolution and its subject (flowers128's median sharpness is a quarter of signdigits'), so
no one number fits every set. Each photo gets its first issue in ISSUES' order, with a score
from 0 to 1, higher worse.
"""

from pathlib import PurePosixPath

import numpy as np

from transfer.audit.fences import lower_bar
from transfer.audit.quality import Measures

ISSUES = ("exact_duplicate", "dark", "light", "low_information", "odd_aspect_ratio", "blurry")
DARK_BELOW = 0.32  # brightness of the brightest 1% of the pixels
LIGHT_ABOVE = 0.95  # brightness of the darkest 5% (cleanvision: 1 - 0.05)
LOW_ENTROPY_BELOW = 3.0  # bits of the grey levels (cleanvision: 0.3 of 10 bits)
ODD_ASPECT_BELOW = 0.35  # the short side over the long one
ENTROPY_BITS = 8.0  # of 256 grey levels: the most there can be
SHARPNESS_FLOOR = 1e-3  # under the log: a flat photo's sharpness is 0


def original_first(path: str) -> tuple[int, str]:
    """Sort key of photos with the same bytes, the original first: the shortest name
    ("rose/1.jpg" before "rose/1 (copy).jpg"), then the path. quality.csv and the review
    page's default for a byte-identical pair both go by it."""
    return len(PurePosixPath(path).stem), path


def _copies(paths: list[str], sha256s: list[str]) -> set[int]:
    """The photos whose bytes a photo before them (original_first) already has."""
    seen, copies = set(), set()
    for index in sorted(range(len(paths)), key=lambda i: original_first(paths[i])):
        if sha256s[index] in seen:
            copies.add(index)
        seen.add(sha256s[index])
    return copies


def _issue(measures: Measures, blur_bar: float, median_sharpness: float) -> tuple[str, float]:
    """The photo's first issue and its score, or ("", 0)."""
    sharpness = np.log(max(measures.sharpness, SHARPNESS_FLOOR))
    checks = (
        ("dark", measures.brightest < DARK_BELOW, 1 - measures.brightest),
        ("light", measures.darkest > LIGHT_ABOVE, measures.darkest),
        (
            "low_information",
            measures.entropy < LOW_ENTROPY_BELOW,
            1 - measures.entropy / ENTROPY_BITS,
        ),
        ("odd_aspect_ratio", measures.aspect_ratio < ODD_ASPECT_BELOW, 1 - measures.aspect_ratio),
        ("blurry", sharpness < blur_bar, 1 - min(1.0, np.exp(sharpness - median_sharpness))),
    )
    return next(((name, float(score)) for name, bad, score in checks if bad), ("", 0.0))


def unusable(
    measures: list[Measures], paths: list[str], sha256s: list[str], *, blur_fence: float
) -> list[tuple[int, str, float]]:
    """(index, issue, score) of the unusable photos, by issue in ISSUES' order, then worst
    first. Blurry: a log sharpness `blur_fence` times as far under the set's median as its
    5th percentile is (lower_bar); its score, 1 - its sharpness over the median's."""
    sharpness = np.log(np.maximum([m.sharpness for m in measures], SHARPNESS_FLOOR))
    blur_bar = lower_bar(sharpness, blur_fence) if len(measures) else 0.0
    median = float(np.median(sharpness)) if len(measures) else 0.0
    copies = _copies(paths, sha256s)
    found = []
    for index, photo in enumerate(measures):
        issue, score = ("exact_duplicate", 1.0) if index in copies else ("", 0.0)
        if not issue:
            issue, score = _issue(photo, blur_bar, median)
        if issue:
            found.append((index, issue, round(score, 6)))
    return sorted(found, key=lambda row: (ISSUES.index(row[1]), -row[2], paths[row[0]]))
