"""The same experiment against its baseline over several splits: each split's paired
difference, their mean with a t interval, and a pooled McNemar test over all photos."""

import re

import numpy as np

from transfer.comparison.paired import ALPHA, Comparison
from transfer.evaluation.stats import mcnemar_p, mean_interval, photos_needed


def run_names(seed: int, overrides: list[str]) -> tuple[str, str]:
    """The DVC experiment names of a split's baseline and experiment, e.g. split42-baseline
    and split42-unfreeze-50."""
    slug = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", item).strip("-") for item in overrides)
    return f"split{seed}-baseline", f"split{seed}-{slug}"


def summary(comparisons: dict[int, Comparison]) -> dict:
    """Each split's comparison, the mean difference, its t interval over the splits, and
    McNemar's exact test on every split's discordant photos together."""
    differences = np.array([c.difference for c in comparisons.values()])
    low, high = mean_interval(differences)
    only_a = sum(c.only_a_right for c in comparisons.values())
    only_b = sum(c.only_b_right for c in comparisons.values())
    photos = sum(c.test_images for c in comparisons.values())
    p_value = mcnemar_p(only_a, only_b)
    mean = float(differences.mean())
    if low > 0 or high < 0:
        verdict = f"the experiment is {'better' if mean > 0 else 'worse'} across splits"
    elif p_value < ALPHA:
        verdict = (
            f"the experiment is {'better' if mean > 0 else 'worse'} on the pooled photos, but "
            "the spread between splits leaves the mean's interval across 0: run more splits "
            "before acting on it"
        )
    else:
        per_split = photos_needed((only_a + only_b) / photos)
        verdict = (
            f"no detectable difference over {len(comparisons)} splits: {per_split:,} test "
            "photos would be needed to see 1 point"
        )
    return {
        "splits": {str(seed): c.as_dict() for seed, c in comparisons.items()},
        "mean_difference": mean,
        "mean_difference_low": low,
        "mean_difference_high": high,
        "only_baseline_right": only_a,
        "only_experiment_right": only_b,
        "pooled_mcnemar_p": p_value,
        "verdict": verdict,
    }


def splits_text(result: dict) -> str:
    """The splits' comparisons as a person reads them."""
    lines = []
    for seed, c in result["splits"].items():
        lines.append(
            f"split {seed}: baseline {c['a_accuracy']:.4f}, experiment {c['b_accuracy']:.4f}, "
            f"{100 * c['difference']:+.2f} points (95% {100 * c['difference_low']:+.2f} to "
            f"{100 * c['difference_high']:+.2f}), only baseline right {c['only_a_right']}, "
            f"only experiment right {c['only_b_right']}, p = {c['mcnemar_p']:.3g}"
        )
    lines += [
        f"mean difference: {100 * result['mean_difference']:+.2f} points (95% t interval over "
        f"the splits {100 * result['mean_difference_low']:+.2f} to "
        f"{100 * result['mean_difference_high']:+.2f})",
        f"pooled: only baseline right {result['only_baseline_right']}, only experiment right "
        f"{result['only_experiment_right']}; McNemar's exact p = {result['pooled_mcnemar_p']:.3g}",
        f"verdict: {result['verdict']}",
    ]
    return "\n".join(lines)
