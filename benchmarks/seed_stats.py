"""Mean, spread and Welch's t-test over seeds, shared by the reproduction scripts.

A difference between two pruning methods is a claim about seeds: each method is run with
several seeds (activation rows, random blocks, fine-tuning order), and the difference of the
means is compared with the spread of the runs by Welch's t-test (unequal variances, two-sided).
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


def verdict(mint: list[float], random: list[float]) -> str:
    """One line: the difference of the means and whether it exceeds seed noise (p < 0.05)."""
    if len(mint) < 2 or len(random) < 2:
        return "too few seeds to test"
    diff = statistics.mean(mint) - statistics.mean(random)
    if statistics.pvariance(mint) + statistics.pvariance(random) == 0:
        return f"difference {diff:+.2f} pp with no seed spread"
    with warnings.catch_warnings():  # nearly equal runs: scipy warns, the test still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        t, p = stats.ttest_ind(mint, random, equal_var=False)
    side = "exceeds" if p < 0.05 else "within"
    return f"difference {diff:+.2f} pp, Welch t {t:.2f}, p {p:.2f}: {side} seed noise"
