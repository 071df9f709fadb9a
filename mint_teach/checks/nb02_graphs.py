"""Notebook 02 (graphs): the exercises' checkers.

``check_cross_edges``: the Friedman-Rafsky count R of a spanning tree (sections 4a, 4c; notebook
03 uses it too, for the published counting defect); ``check_hp``: the Henze-Penrose
divergence from R, m and n (section 4a).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import _say, _missing, _Unreadable, _number, _close, _first_match, _rounded, _count

__all__ = ["check_cross_edges", "check_hp"]


def _published_count(edges: Any, membership: Any) -> int | None:
    """The defective count of section 4c for edges listed in CSR order, or None if unreadable:
    the position ``k`` of an edge is taken as its first end."""
    try:
        ends = np.asarray(edges).reshape(-1, 2)[:, 1].astype(int)
        labels = np.asarray(membership).reshape(-1)
    except (TypeError, ValueError):
        return None
    if len(ends) > len(labels) or (len(ends) and ends.max() >= len(labels)):
        return None
    return int(sum(labels[k] != labels[e] for k, e in enumerate(ends)))


def check_cross_edges(edges: Any, membership: Any, answer: Any) -> bool:
    """Check a Friedman-Rafsky count: tree edges joining two different samples (4a, 4c)."""
    from .. import graphs

    if _missing(answer):
        return False
    ref = graphs.cross_edges(edges, membership)
    n_edges = int(np.asarray(edges).shape[-2])
    try:
        value = _count(answer, "a count (an int)")
    except _Unreadable as err:
        return _say(False, str(err))
    if value == ref:
        return _say(True, f"R = {ref} of the {n_edges} tree edges join the two samples.")
    slips = []
    published = _published_count(edges, membership)
    if published is not None:
        slips.append((published, ("that is the published code's count (section 4c): it compares "
                                  "the label of position k in the edge list with the label of "
                                  "edges[k][1], as if entry k belonged to row k. Read *both* "
                                  "ends of every edge: membership[u] != membership[v].")))
    slips += [(n_edges - ref, ("you counted the edges *within* a sample; R counts the edges "
                              "whose two ends come from different samples.")),
             (n_edges, (f"that is every edge of the tree ({n_edges}); count only those whose "
                        "two ends carry different labels.")),
             (2 * ref, "each crossing edge seems counted twice (once from each end).")]
    slips = [s for s in slips if s[0] != ref]
    if slips and slips[0][0] == published == value:  # the defect just shown comes first
        return _say(False, slips[0][1])
    hint = _first_match(value, slips, atol=0, rtol=0)
    return _say(False, hint or f"you gave {value:g}, but R = {ref}. Look up *both* ends of "
                               "every edge: membership[u] != membership[v] (section 4c).")


def check_hp(r: int, m: int, n: int, answer: Any) -> bool:
    """Check the Henze-Penrose divergence ``1 - R (m + n) / (2 m n)`` (section 4a).

    Examples
    --------
    >>> check_hp(3, 4, 4, 0.25)
    ✔ correct: D_HP = 1 - 3 * (4 + 4) / (2 * 4 * 4) = 0.2500.
    True
    >>> check_hp(3, 4, 4, 0.75)
    ✘ not yet: you have R (m + n) / (2 m n) without the leading '1 -'.
    False
    """
    from .. import mi

    if _missing(answer):
        return False
    try:
        r, m, n = (_count(v, f"{name}, a whole number") for v, name in
                   ((r, "the count R"), (m, "the size m"), (n, "the size n")))
    except _Unreadable as err:
        return _say(False, f"check_hp(r, m, n, answer): {err}")
    if m < 1 or n < 1 or not 0 <= r <= m + n - 1:
        return _say(False, f"check_hp(r, m, n, answer) needs sample sizes m, n >= 1 and a count "
                           f"0 <= R <= m + n - 1 (a tree on m + n points has m + n - 1 edges); "
                           f"got R = {r}, m = {m}, n = {n}.")
    ref = float(mi.hp_from_count(r, m, n))
    try:
        value = _number(answer)
    except _Unreadable as err:
        return _say(False, str(err))
    if _close(value, ref):
        return _say(True, f"D_HP = 1 - {r} * ({m} + {n}) / (2 * {m} * {n}) = {ref:.4f}.")
    slips = [(1 - ref, "you have R (m + n) / (2 m n) without the leading '1 -'."),
             (1 - r * (m + n) / (m * n), "the denominator is 2 m n: a factor 2 is missing."),
             (1 - 2 * r * (m + n) / (m * n), "the 2 belongs in the denominator, 2 m n."),
             (1 - r / (m + n), "the formula is 1 - R (m + n) / (2 m n), not 1 - R / (m + n)."),
             (1 - r * (m + n) / (2 * m * m), "use both sample sizes: 2 m n in the denominator."),
             (1 - r * (m + n) / (2 * n * n), "use both sample sizes: 2 m n in the denominator.")]
    if ref < 0:
        slips.append((0.0, ("keep the raw value, even below 0: clip only for display "
                            "(section 4a).")))
    hint = _first_match(value, [s for s in slips if not _close(s[0], ref)]) or _rounded(value, ref)
    return _say(False, hint or f"you gave {value:.4f}, but D_HP = {ref:.4f}. Formula: "
                               "1 - R (m + n) / (2 m n).")
