"""Notebook 03 (mutual information): the exercises' checkers.

``check_gaussian_mi``: the Shannon MI of a bivariate Gaussian, in nats. Notebook 03's second
exercise (the counting defect) uses ``check_cross_edges`` of :mod:`.nb02_graphs`.
"""
from __future__ import annotations

import math
from typing import Any

from .common import _say, _missing, _Unreadable, _number, _close, _first_match, _rounded
from .nb02_graphs import check_cross_edges  # the counting-defect exercise

__all__ = ["check_cross_edges", "check_gaussian_mi"]


def check_gaussian_mi(rho: float, answer: Any) -> bool:
    """Check the Shannon MI of a bivariate Gaussian with correlation ``rho``, in nats:
    ``-0.5 * ln(1 - rho ** 2)``."""
    if _missing(answer):
        return False
    rho = float(rho)
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie strictly between -1 and 1; got {rho!r}")
    ref = -0.5 * math.log(1 - rho ** 2)
    try:
        value = _number(answer)
    except _Unreadable as err:
        return _say(False, str(err))
    if _close(value, ref, atol=1e-6, rtol=1e-4):
        return _say(True, f"I(X; Y) = -0.5 ln(1 - {rho:g}^2) = {ref:.4f} nats.")
    slips = [(ref / math.log(2), "that is in bits (log base 2); use the natural log for nats."),
             (-ref, "mutual information is never negative: mind the minus sign in front."),
             (2 * ref, "the factor 0.5 in front is missing."),
             (-0.5 * math.log(1 - abs(rho)), "square the correlation: 1 - rho**2."),
             (-0.5 * math.log10(1 - rho ** 2), "that is log base 10; use the natural log."),
             (0.5 * math.log(1 + rho ** 2), "the argument of the log is 1 - rho**2."),
             (rho, "that is the correlation itself; MI is -0.5 ln(1 - rho**2)."),
             (rho ** 2, "that is rho**2; MI is -0.5 ln(1 - rho**2).")]
    hint = _first_match(value, [s for s in slips if not _close(s[0], ref)], atol=1e-6,
                        rtol=1e-4) or _rounded(value, ref)
    return _say(False, hint or f"you gave {value:.4f}, but -0.5 ln(1 - rho^2) = {ref:.4f} "
                               f"for rho = {rho:g}.")
