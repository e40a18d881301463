"""Bars relative to a set's own spread: a photo is far out when it lies `fence` times as far
from the set's median as the 5% most extreme photos begin (the 95th or 5th percentile).

Tukey's fences (quartiles and IQR) failed on a set whose middle half is tight and whose tail
is long: on signdigits' sharpness they put 7.7% of the photos below the lower fence, and on
its neighbour distances 0.6% above the upper one, against 0.0% and 0.3% here
(docs/benchmarks.md, "What the audit found").
"""

import numpy as np

TAIL = 5  # percent of the set at each end that sets the spread


def upper_bar(values: np.ndarray, fence: float) -> float:
    """median + fence x (95th percentile - median)."""
    median, high = np.percentile(values, [50, 100 - TAIL])
    return float(median + fence * (high - median))


def lower_bar(values: np.ndarray, fence: float) -> float:
    """median - fence x (median - 5th percentile)."""
    low, median = np.percentile(values, [TAIL, 50])
    return float(median - fence * (median - low))
