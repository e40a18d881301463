"""One paired comparison of two experiments on the same test photos, and its verdict."""

from dataclasses import asdict, dataclass

import numpy as np

from transfer.comparison.predictions import Paired
from transfer.evaluation.stats import (
    mcnemar_p,
    paired_difference_interval,
    photos_needed,
    wilson_interval,
)

ALPHA = 0.05  # a difference is detected when McNemar's p-value is below this


@dataclass(frozen=True)
class Comparison:
    """B against A on the same photos; the difference is B's accuracy minus A's."""

    a: str
    b: str
    test_images: int
    a_accuracy: float
    b_accuracy: float
    difference: float
    difference_low: float
    difference_high: float
    only_a_right: int  # photos A got right and B wrong
    only_b_right: int
    mcnemar_p: float
    photos_needed_for_1_point: int  # at this share of discordant photos
    verdict: str

    def as_dict(self) -> dict:
        return asdict(self)


def verdict_text(names: tuple[str, str], difference: float, p_value: float, needed: int) -> str:
    """`B is better`, `A is better`, or how many photos would show a 1-point difference."""
    if p_value < ALPHA:
        return f"{names[1] if difference > 0 else names[0]} is better"
    return (
        f"no detectable difference at this test size: {needed:,} photos would be needed to "
        "see 1 point"
    )


def compare(paired: Paired, *, names: tuple[str, str]) -> Comparison:
    """The accuracies, their difference with its interval, the discordant photos, McNemar's
    exact p-value and the verdict."""
    n = len(paired.paths)
    only_a = int(np.sum(paired.a_right & ~paired.b_right))
    only_b = int(np.sum(~paired.a_right & paired.b_right))
    difference = (only_b - only_a) / n
    low, high = paired_difference_interval(paired.a_right, paired.b_right)
    p_value = mcnemar_p(only_a, only_b)
    needed = photos_needed((only_a + only_b) / n)
    return Comparison(
        a=names[0],
        b=names[1],
        test_images=n,
        a_accuracy=float(paired.a_right.mean()),
        b_accuracy=float(paired.b_right.mean()),
        difference=difference,
        difference_low=low,
        difference_high=high,
        only_a_right=only_a,
        only_b_right=only_b,
        mcnemar_p=p_value,
        photos_needed_for_1_point=needed,
        verdict=verdict_text(names, difference, p_value, needed),
    )


def accuracy_line(name: str, right: int, total: int) -> str:
    low, high = wilson_interval(right, total)
    return f"{name}: accuracy {right / total:.4f} (95% {low:.4f}-{high:.4f}), {right} of {total}"


def comparison_text(comparison: Comparison) -> str:
    """The comparison as a person reads it."""
    c = comparison
    n = c.test_images
    return "\n".join(
        [
            f"A {accuracy_line(c.a, round(c.a_accuracy * n), n)}",
            f"B {accuracy_line(c.b, round(c.b_accuracy * n), n)}",
            f"B - A: {100 * c.difference:+.2f} points "
            f"(95% {100 * c.difference_low:+.2f} to {100 * c.difference_high:+.2f})",
            f"only A right: {c.only_a_right} photos, only B right: {c.only_b_right}; "
            f"McNemar's exact p = {c.mcnemar_p:.3g}",
            f"verdict: {c.verdict}",
        ]
    )
