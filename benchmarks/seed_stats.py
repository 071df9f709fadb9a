"""Mean, spread, paired and Welch's t-tests over seeds, shared by the reproduction scripts.

A difference between two pruning methods is a claim about seeds: each method is run with
several seeds (activation rows, random blocks, fine-tuning order), and the difference of the
means is compared with the spread of the runs. Runs with the same seed share the rows, the
fine-tuning data and order, so they are paired: the paired t-test (on the per-seed
differences) comes first, Welch's t-test (unequal variances, two-sided, unpaired) beside it,
and the count of seeds whose difference has the sign of the mean difference. With a handful
of seeds "not significant" says little: the verdict names n.
"""
from __future__ import annotations

import math
import statistics
import warnings

from scipy import stats


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for one value)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def spread(values: list[float], *, sep: str = " +- ", unit: str = "%", width: int = 0,
           digits: int = 2) -> str:
    """``mean +- sd`` of the runs, or, with one run, its value and "n = 1, no spread".

    A standard deviation of one value does not exist; it is never printed as "nan".

    >>> spread([98.0, 98.2]), spread([97.5])
    ('98.10 +- 0.14%', '97.50% (n = 1, no spread)')
    """
    mean, sd = mean_sd(values)
    if len(values) < 2:
        return f"{mean:>{width}.{digits}f}{unit} (n = 1, no spread)"
    return f"{mean:>{width}.{digits}f}{sep}{sd:.{digits}f}{unit}"


def verdict(mint: list[float], random: list[float], *, paired: bool = True) -> str:
    """One line: the difference of the means, the paired and Welch's tests, the signs.

    ``mint[k]`` and ``random[k]`` are runs of seed k when ``paired`` (the default): then the
    paired t-test decides "significant (n = N)" at p < 0.05 and the line counts the seeds
    whose difference has the mean's sign. Unpaired runs get Welch's test alone.
    """
    if len(mint) < 2 or len(random) < 2:
        return "too few seeds to test"
    n = len(mint)
    diff = statistics.mean(mint) - statistics.mean(random)
    if statistics.pvariance(mint) + statistics.pvariance(random) == 0:
        return f"difference {diff:+.2f} pp with no seed spread (n = {n})"
    with warnings.catch_warnings():  # nearly equal runs: scipy warns, the test still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        t_w, p_w = stats.ttest_ind(mint, random, equal_var=False)
        diffs = [a - b for a, b in zip(mint, random)]
        if paired and len(mint) == len(random) and statistics.pvariance(diffs) > 0:
            t, p = stats.ttest_rel(mint, random)
            same = sum(1 for d in diffs if d * diff > 0)
            decided = p if math.isfinite(p) else p_w
            word = "significant" if decided < 0.05 else "not significant"
            return (f"difference {diff:+.2f} pp, paired t {t:.2f}, p {p:.2f}; Welch t "
                    f"{t_w:.2f}, p {p_w:.2f}: {word} (n = {n}); same sign in {same} of {n} "
                    f"seeds")
    word = "significant" if p_w < 0.05 else "not significant"
    return f"difference {diff:+.2f} pp, Welch t {t_w:.2f}, p {p_w:.2f}: {word} (n = {n})"


def sign_count(pairs: list[tuple[list[float], list[float]]]) -> str:
    """Over several paired comparisons (each a pair of per-seed lists), how many seed-level
    differences are negative and how many positive: "a of n below, b above"."""
    diffs = [a - b for x, y in pairs for a, b in zip(x, y)]
    below = sum(1 for d in diffs if d < 0)
    above = sum(1 for d in diffs if d > 0)
    return f"{below} of {len(diffs)} below, {above} above"
