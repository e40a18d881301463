"""Photos that don't belong to the set: far, in feature space, from their nearest neighbours.

A photo's score is its mean cosine distance to its k nearest other photos: the ranking of
cleanlab's `OutOfDistribution` on features (it rescales the same mean, monotonically), here
without its scikit-learn neighbour search. k must exceed any group of similar foreign photos:
at k = 10, ten photos of hands dropped into flowers128 were each other's neighbours and ranked
0 to 211th; at k = 20 or more, the first ten. The clear outliers are those above the set's own
upper bar (transfer.audit.fences), so the bar moves with how spread out the set is.
"""

import numpy as np

from transfer.audit.duplicates import BLOCK_ROWS, unit_rows
from transfer.audit.fences import upper_bar


def neighbour_distances(features: np.ndarray, neighbours: int) -> np.ndarray:
    """Each row's mean cosine distance to its `neighbours` nearest other rows (all of them
    when there are fewer). Compared a block of rows at a time, as near_duplicate_pairs does."""
    unit = unit_rows(features)
    k = max(1, min(neighbours, len(unit) - 1))
    scores = np.zeros(len(unit))
    for start in range(0, len(unit), BLOCK_ROWS):
        similarity = unit[start : start + BLOCK_ROWS] @ unit.T
        rows = np.arange(len(similarity))
        similarity[rows, start + rows] = -np.inf  # not its own neighbour
        nearest = -np.partition(-similarity, k - 1, axis=1)[:, :k]
        scores[start : start + len(similarity)] = 1.0 - nearest.mean(axis=1, dtype=np.float64)
    return scores


def outliers(scores: np.ndarray, fence: float) -> list[tuple[int, float]]:
    """(index, score) of the rows above the set's upper bar, most unusual first."""
    bar = upper_bar(scores, fence)
    flagged = [(int(i), float(scores[i])) for i in np.flatnonzero(scores > bar)]
    return sorted(flagged, key=lambda row: (-row[1], row[0]))
