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
