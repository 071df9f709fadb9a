"""Answer checkers for the notebooks' exercises: right or not, and if not, what is off.

Every check takes the exercise's inputs and the student's ``answer``, prints one friendly line
and returns ``True`` (right) or ``False`` (not yet). A right answer prints a line starting with
``✔ correct``; anything else starts with ``✘ not yet`` and says what looks off, recognising the
usual slips (a fraction instead of a percent, a missing ``1 -``, a per-layer instead of a
global threshold, ...). An ``answer`` still set to ``None`` gets a reminder, not an error.

The reference answers come from the package's own functions, so a check never disagrees with
what the rest of the course computes.

=========================  ====================================================  ============
check                      what the student computes                             notebook
=========================  ====================================================  ============
``check_sparsity``         share of zero weights in some layers (section 7)      00
``check_conv_average``     a conv layer's activation: maps averaged over space   01
``check_per_class``        a class-balanced sample of rows, no repeats (2)       01
``check_cross_edges``      the Friedman-Rafsky count R of a tree (4a, 4c)        02, 03
``check_hp``               the Henze-Penrose divergence from R, m and n (4a)     02
``check_gaussian_mi``      Shannon MI of a bivariate Gaussian                    03
``check_groups``           contiguous unit groups (section 3)                    04
``check_threshold``        the global threshold delta for a fraction q (5)       04
``check_dead_units``       parent units with no connection left (5)              05
``check_ece``              the expected calibration error (section 8)            06
``check_block_pvalues``    block p-values against the permuted-child null (4e)   07
=========================  ====================================================  ============
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "CORRECT",
    "NOT_YET",
    "check_block_pvalues",
    "check_conv_average",
    "check_cross_edges",
    "check_dead_units",
    "check_ece",
    "check_gaussian_mi",
    "check_groups",
    "check_hp",
    "check_per_class",
    "check_sparsity",
    "check_threshold",
]

CORRECT = "✔ correct"
NOT_YET = "✘ not yet"


# ----------------------------------------------------------------------------- helpers

def _say(ok: bool, message: str) -> bool:
    """Print the verdict and the message on one line; return ``ok``."""
    print(f"{CORRECT if ok else NOT_YET}: {message}")
    return ok


def _missing(answer: Any) -> bool:
    """True (after printing a reminder) when the student has not answered yet."""
    if answer is None:
        _say(False, "`answer` is still None. Replace None with your code and run the cell again.")
        return True
    return False


class _Unreadable(Exception):
    """The answer has the wrong kind (not a number, not an array, ...); message for the student."""


# The readers below read a student's answer and explain a wrong one in a verdict; arguments to
# the toolkit's functions are checked by mint_teach._validation instead, which raises.
def _number(answer: Any, what: str = "a number") -> float:
    """Read a Python / numpy / one-element torch number as a float."""
    if isinstance(answer, bool):
        raise _Unreadable(f"expected {what}, got the bool {answer!r}.")
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            raise _Unreadable(f"expected {what}, got a tensor of shape {tuple(answer.shape)}.")
        return float(answer.item())
    if isinstance(answer, np.ndarray):
        if answer.size != 1:
            raise _Unreadable(f"expected {what}, got an array of shape {answer.shape}.")
        return float(answer.reshape(-1)[0])
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise _Unreadable(f"expected {what}, got {type(answer).__name__} {answer!r:.60}.") from None


def _array(answer: Any, what: str = "an array") -> torch.Tensor:
    """Read a numpy array, tensor or nested list as a float64 CPU tensor."""
    if isinstance(answer, torch.Tensor):
        return answer.detach().cpu().double()
    try:
        array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Unreadable(f"expected {what}, got {type(answer).__name__}.") from None
    return torch.from_numpy(array)


def _close(a: float, b: float, atol: float = 1e-6, rtol: float = 1e-4) -> bool:
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


def _first_match(value: float, slips: Sequence[tuple[float, str]], **tol) -> str | None:
    """The hints of every known slip whose value equals ``value`` (joined), or None.

    Two slips can give the same number for some inputs (with m = n, dropping the factor 2 and
    dropping the ``1 -`` can coincide); then the student hears both.
    """
    hints = []
    for wrong, hint in slips:
        if _close(value, wrong, **tol) and hint not in hints:
            hints.append(hint)
    if len(hints) > 1:
        return ("with these numbers several slips give this value: "
                + " Or: ".join(hints))
    return hints[0] if hints else None


def _rounded(value: float, ref: float, unit: str = "") -> str | None:
    """A hint when ``value`` is ``ref`` rounded to 1-3 decimals (``0.67`` for 0.6667)."""
    if not math.isfinite(value):
        return None
    for digits in (1, 2, 3):
        if abs(value - ref) <= 0.5 * 10 ** -digits + 1e-9 and round(value, digits) == value:
            return (f"{value:g}{unit} is the right value rounded to {digits} decimal"
                    f"{'' if digits == 1 else 's'}; give more digits (keep the full float, "
                    "do not round).")
    return None


def _count(answer: Any, what: str = "a count (an int)") -> int:
    """Read a whole number: an int, an integral float or a one-element tensor/array."""
    value = _number(answer, what)
    if not math.isfinite(value) or value != int(value):
        raise _Unreadable(f"expected {what}, a whole number; got {value!r}.")
    return int(value)


# ----------------------------------------------------------------------------- notebook 00

def check_sparsity(model: torch.nn.Module, layers: str | Sequence[str], answer: Any) -> bool:
    """Check the percentage of zero weights in ``layers`` of ``model`` (docs/method.md 7).

    Only the layers' *weights* count (not biases), pooled over the listed layers, in percent
    (0-100), as ``pruning.sparsity_report(model, layers)["total"]["pruned_pct"]``.
    """
    from . import pruning

    if _missing(answer):
        return False
    layers = [layers] if isinstance(layers, str) else list(layers)
    report = pruning.sparsity_report(model, layers=layers)
    ref = report["total"]["pruned_pct"]
    try:
        value = _number(answer, "a percentage")
    except _Unreadable as err:
        return _say(False, str(err))
    if _close(value, ref, atol=0.01, rtol=0):
        return _say(True, f"{value:.2f} % of the weights of {', '.join(layers)} are zero.")
    modules = dict(model.named_modules())
    biases = sum(modules[n].bias.numel() for n in layers if modules[n].bias is not None)
    with_bias = None
    if biases:
        zero_b = sum(int((modules[n].bias.detach() == 0).sum()) for n in layers
                     if modules[n].bias is not None)
        total = report["total"]
        with_bias = 100 * (total["zeros"] + zero_b) / (total["params"] + biases)
    every = pruning.sparsity_report(model)["total"]["pruned_pct"]
    slips = [(ref / 100, "that looks like a fraction; give the share in percent (0-100)."),
             (100 - ref, ("that is the share of weights *kept*; the question asks for the "
                          "share set to zero."))]
    if with_bias is not None:
        slips.append((with_bias, ("count only the weight tensors; biases are not pruned and "
                                  "the paper leaves them out.")))
    if len(layers) < len(report["layers"]) or every != ref:
        slips.append((every, (f"that is the share over all prunable layers; count only "
                              f"{', '.join(layers)}.")))
    originals = [modules[n].weight_orig.detach() for n in layers
                 if hasattr(modules[n], "weight_orig")]
    if originals:
        zero_orig = sum(int((w == 0).sum()) for w in originals)
        share_orig = 100 * zero_orig / sum(w.numel() for w in originals)
        slips.append((share_orig, ("that counts zeros in weight_orig. After apply_masks PyTorch "
                                   "keeps the untouched weights in weight_orig and the 0/1 mask "
                                   "in weight_mask; the weight the network uses is "
                                   "weight = weight_orig * weight_mask. Count zeros in .weight.")))
    hint = _first_match(value, [s for s in slips if not _close(s[0], ref, atol=0.01, rtol=0)],
                        atol=0.01, rtol=0) or _rounded(value, ref, " %")
    return _say(False, hint or f"you gave {value:.2f} %, but {ref:.2f} % is expected: count "
                               f"weight == 0 over all weights of {', '.join(layers)}, times 100.")


# ----------------------------------------------------------------------------- notebook 01

def check_conv_average(feature_maps: Any, answer: Any) -> bool:
    """Check a conv layer's activation matrix: every map averaged over space (section 2).

    ``feature_maps`` is ``(images, channels, height, width)``; the answer must be
    ``(images, channels)``, ``feature_maps.mean(dim=(2, 3))``.
    """
    if _missing(answer):
        return False
    maps = _array(feature_maps)
    if maps.ndim != 4:
        raise ValueError(f"feature_maps must be (images, channels, height, width); "
                         f"got shape {tuple(maps.shape)}")
    try:
        value = _array(answer, "a tensor (images, channels)")
    except _Unreadable as err:
        return _say(False, str(err))
    n, c, h, w = maps.shape
    ref = maps.mean(dim=(2, 3))
    shape = tuple(value.shape)
    if shape != (n, c):
        hints = {(n, c, h, w): "it still has the spatial axes; average over height and width "
                               "(dims 2 and 3).",
                 (n, h, w): "you averaged over the channels (dim 1); average over height and "
                            "width (dims 2 and 3) instead, one number per filter.",
                 (c, h, w): "you averaged over the images; keep one row per image.",
                 (n,): "you averaged over everything but the images; keep one column per "
                       "filter (average over dims 2 and 3 only).",
                 (c,): "you averaged over the images too; keep one row per image.",
                 (n, c * h * w): "that is the flattened map; average it instead, one number "
                                 "per filter.",
                 (n, c, h): "you averaged over the width only; average over height too."}
        return _say(False, hints.get(shape, f"expected shape {(n, c)} (images, channels); "
                                            f"got {shape}."))
    if torch.allclose(value, ref, atol=1e-5, rtol=1e-4):
        return _say(True, f"one number per image and filter, shape {(n, c)}.")
    slips = [(maps.sum(dim=(2, 3)), f"you summed the maps; divide by the {h * w} positions."),
             (maps.amax(dim=(2, 3)), "that is max pooling; MINT averages every map over space.")]
    for wrong, hint in slips:
        if torch.allclose(value, wrong, atol=1e-5, rtol=1e-4):
            return _say(False, hint)
    gap = float((value - ref).abs().max())
    return _say(False, f"the shape is right but values differ by up to {gap:.3g}; each entry "
                       f"should be the mean of one {h}x{w} map.")


def check_per_class(labels: Any, per_class: int, answer: Any) -> bool:
    """Check a class-balanced sample: row indices into ``labels``, ``per_class`` of every class,
    no row twice (section 2: sub-sample without replacement).

    Examples
    --------
    >>> check_per_class([0, 0, 1, 1, 1], 1, [0, 2])
    ✔ correct: 2 distinct rows, 1 of each of 2 classes.
    True
    """
    if _missing(answer):
        return False
    labels = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if isinstance(answer, torch.Tensor) and answer.is_floating_point():
        return _say(False, "row indices must be integers; got a float tensor.")
    try:
        rows = torch.as_tensor(np.asarray(answer)).reshape(-1)
    except (TypeError, ValueError):
        return _say(False, f"expected a list or tensor of row indices; got "
                           f"{type(answer).__name__}.")
    if rows.is_floating_point() or rows.is_complex() or rows.dtype == torch.bool:
        return _say(False, f"expected integer row indices; got dtype {rows.dtype}. (A boolean "
                           "mask? Turn it into indices with torch.nonzero(mask).flatten().)")
    rows = rows.long()
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(labels)):
        return _say(False, f"row indices must lie in 0..{len(labels) - 1}; got "
                           f"{int(rows.min())}..{int(rows.max())}.")
    unique, counts = torch.unique(rows, return_counts=True)
    if (counts > 1).any():
        twice = int(unique[counts > 1][0])
        return _say(False, f"row {twice} appears {int(counts[counts > 1][0])} times; draw "
                           "without replacement (torch.randperm, not torch.randint), so "
                           "no image is counted twice.")
    classes = torch.unique(labels).tolist()
    got = {c: int((labels[rows] == c).sum()) for c in classes}
    wrong = {c: k for c, k in got.items() if k != per_class}
    if wrong:
        shown = ", ".join(f"class {c}: {k}" for c, k in list(wrong.items())[:4])
        return _say(False, f"every class needs exactly {per_class} rows; got {shown}"
                           f"{' ...' if len(wrong) > 4 else ''}.")
    return _say(True, f"{len(rows)} distinct rows, {per_class} of each of {len(classes)} "
                      "classes.")


# ----------------------------------------------------------------------------- notebooks 02, 03

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
    from . import graphs

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
    from . import mi

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


# ----------------------------------------------------------------------------- notebook 04

def _as_bounds(answer: Any) -> list[tuple[int, int]] | str:
    """Groups as (start, stop) pairs; accepts ranges, (start, stop) pairs or index lists.

    Returns a message string when the answer cannot be read as contiguous groups.
    """
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (Sequence, np.ndarray)):
        return (f"expected a list of groups (ranges, (start, stop) pairs or lists of unit "
                f"indices); got {type(answer).__name__}.")
    bounds = []
    for k, group in enumerate(answer):
        if isinstance(group, range):
            if group.step != 1:
                return f"group {k} is {group}; groups are contiguous runs with step 1."
            bounds.append((group.start, group.stop))
            continue
        items = _indices(group)
        if isinstance(items, str):
            return f"group {k} is {group!r:.40}: {items}"
        if isinstance(group, tuple):  # (start, stop), as groups.split_groups gives them
            if len(items) != 2 or items[1] <= items[0]:
                return (f"group {k} is {group!r}; a tuple is read as (start, stop) with "
                        "start < stop (use a list for unit indices).")
            bounds.append((items[0], items[1]))
            continue
        if not items:
            return f"group {k} is empty; every group needs at least one unit."
        if items != list(range(items[0], items[0] + len(items))):
            return (f"group {k} is not a contiguous run of unit indices ({items[:6]}"
                    f"{' ...' if len(items) > 6 else ''}); section 3 cuts each layer into "
                    "contiguous runs.")
        bounds.append((items[0], items[-1] + 1))
    return bounds


def _indices(group: Any) -> list[int] | str:
    """A group's unit indices as ints, or a message: no strings, None or fractional numbers."""
    if isinstance(group, (str, bytes)) or group is None:
        return "expected a range, a (start, stop) tuple or a list of unit indices."
    try:
        flat = np.asarray(group, dtype=object).reshape(-1)
    except (TypeError, ValueError):
        return "expected a range, a (start, stop) tuple or a list of unit indices."
    items = []
    for v in flat:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                 np.floating)):
            return f"unit indices are whole numbers; got {type(v).__name__} {v!r:.20}."
        if not math.isfinite(float(v)) or float(v) != int(v):
            return f"unit indices are whole numbers; got {v!r}."
        items.append(int(v))
    return items


def check_groups(n_units: int, n_groups: int, answer: Any) -> bool:
    """Check a split of ``n_units`` units into ``n_groups`` contiguous groups (section 3).

    Sizes differ by at most one, the larger groups first, as ``groups.split_groups`` and
    ``pruning.unit_groups`` cut them. Groups may be given as ranges, ``(start, stop)`` tuples
    or lists of unit indices.
    """
    from .groups import split_groups

    if _missing(answer):
        return False
    try:
        n_units, n_groups = _count(n_units, "n_units"), _count(n_groups, "n_groups")
    except _Unreadable as err:
        return _say(False, f"check_groups(n_units, n_groups, answer): {err}")
    if not 1 <= n_groups <= n_units:
        return _say(False, f"check_groups needs 1 <= n_groups <= n_units; got n_units = "
                           f"{n_units}, n_groups = {n_groups}.")
    ref = split_groups(n_units, n_groups)
    bounds = _as_bounds(answer)
    if isinstance(bounds, str):
        return _say(False, bounds)
    if bounds == ref:
        sizes = sorted({b - a for a, b in ref}, reverse=True)
        return _say(True, f"{n_groups} contiguous groups of {' or '.join(map(str, sizes))} "
                          f"units covering 0..{n_units - 1}.")
    if len(bounds) != n_groups:
        return _say(False, f"expected {n_groups} groups; got {len(bounds)}.")
    covered = [u for a, b in bounds for u in range(a, b)]
    if covered != list(range(n_units)):
        if len(covered) != len(set(covered)):
            return _say(False, "some units belong to two groups; every unit belongs to "
                               "exactly one.")
        return _say(False, f"the groups must cover the units 0..{n_units - 1} in order, each "
                           f"once; they cover {len(set(covered))} units"
                           f"{' out of order' if len(set(covered)) == n_units else ''}.")
    sizes = [b - a for a, b in bounds]
    if max(sizes) - min(sizes) > 1:
        return _say(False, f"group sizes range from {min(sizes)} to {max(sizes)}; they may "
                           "differ by at most one (divmod(n_units, n_groups) tells how many "
                           "get one extra unit).")
    return _say(False, "a valid split, but the toolkit puts the larger groups first (like "
                       "numpy.array_split), so masks line up with mt.mi.split_groups.")


def check_threshold(dependencies: Mapping, q: float, answer: Any) -> bool:
    """Check the global threshold delta: the q-quantile of *all* dependences of all layer pairs,
    with linear interpolation (section 5; ``pruning.global_threshold``)."""
    from . import pruning

    if _missing(answer):
        return False
    q = float(q)
    if not 0 <= q <= 1:
        raise ValueError(f"q must lie in [0, 1]; got {q!r}")
    values = pruning.pooled_dependences(dependencies)  # ValueError for a bad dict
    ref = pruning.global_threshold(dependencies, q)
    try:
        value = _number(answer, "a number (the threshold delta)")
    except _Unreadable as err:
        return _say(False, str(err))
    spread = float(values.max() - values.min()) or 1.0
    tol = {"atol": 1e-9 * spread + 1e-12, "rtol": 1e-6}
    if _close(value, ref, **tol):
        return _say(True, _threshold_verdict(dependencies, q, values, ref))
    hint = _first_match(value, _threshold_slips(dependencies, q, values), **tol)
    if hint:
        return _say(False, hint)
    values = values.numpy()
    rough = [float(np.quantile(values, q, method=m)) for m in ("lower", "higher", "nearest")]
    if _rounded(value, ref):
        return _say(False, _rounded(value, ref))
    if any(_close(value, r, **tol) for r in rough) or min(rough) <= value <= max(rough):
        return _say(False, "almost: the right values, but use linear interpolation between "
                           "neighbours (numpy.quantile's default, or torch.quantile).")
    return _say(False, f"you gave {value:.5f}, but the {q:g}-quantile of all {values.size} "
                       f"dependences is {ref:.5f}. Concatenate every D, then take the quantile.")


def _threshold_verdict(dependencies: Mapping, q: float, values: torch.Tensor, ref: float) -> str:
    """What the masks do with delta: how many blocks they cut, and why that may differ from
    the number of values at or below delta."""
    from . import pruning

    masks = pruning.masks_from_dependencies(dependencies, prune_fraction=q, max_pair_fraction=1.0)
    cut = sum(int((~keep).sum()) for keep in masks.values())
    at_most, ranked = int((values <= ref).sum()), values.sort().values
    tied = 0 < cut < values.numel() and bool(ranked[cut - 1] == ranked[cut])
    if at_most == cut:
        ties = ""
    elif at_most > cut and tied:
        ties = (f" {at_most} blocks have D <= delta because values tie at delta; the toolkit "
                f"breaks the tie (pair order, then position) so that exactly {cut} are cut.")
    else:
        ties = (f" {at_most} blocks have D <= delta; the toolkit ranks every value (ties by "
                f"pair order, then position) and cuts exactly the lowest {cut}.")
    return f"delta = {ref:.5f}; MINT cuts round(q x {values.numel()}) = {cut} blocks.{ties}"


def _threshold_slips(dependencies: Mapping, q: float,
                     values: torch.Tensor) -> list[tuple[float, str]]:
    """The usual wrong thresholds, each with what it is."""
    from . import pruning

    slips = []
    if len(dependencies) > 1:
        for key, d in dependencies.items():
            slips.append((pruning.global_threshold({key: d}, q),
                          (f"that is the quantile of pair {key} alone; MINT takes one global "
                           "threshold over the values of every layer pair.")))
    if q != 0.5:
        slips.append((pruning.global_threshold(dependencies, 1 - q),
                      ("that is the (1 - q)-quantile; blocks with D <= delta are pruned, so "
                       "delta is the q-quantile.")))
    slips.append((float(values.mean()), "that is the mean; delta is the q-quantile."))
    return slips


# ----------------------------------------------------------------------------- notebook 05

def _is_scalar(answer: Any) -> bool:
    """A single number (Python, numpy, a 0-d tensor) rather than a collection of indices."""
    if isinstance(answer, (torch.Tensor, np.ndarray)):
        return answer.ndim == 0
    return isinstance(answer, (str, bytes)) or not isinstance(
        answer, (Sequence, set, frozenset, range))


def check_dead_units(model: torch.nn.Module, parent: str, child: str, answer: Any) -> bool:
    """Check the dead parent units of a layer pair: units whose every outgoing weight in the
    child layer is zero (section 5; ``pruning.dead_units``, what ``compact`` removes).
    ``answer`` is their number, or their indices."""
    from . import pruning

    if _missing(answer):
        return False
    from .groups import layer_units

    modules = dict(model.named_modules())
    for name in (parent, child):
        if name not in modules:
            raise KeyError(f"no layer {name!r} in the model")
    n_parent = layer_units(model, parent)
    weight = modules[child].weight.detach().cpu()
    dead = torch.nonzero(pruning.dead_units(weight, n_parent)).flatten().tolist()
    if _is_scalar(answer):
        try:
            value = _count(answer, "a count of dead units (or a list of their indices)")
        except _Unreadable as err:
            return _say(False, str(err))
        return _dead_count_verdict(modules, parent, child, n_parent, len(dead), value)
    given = _indices(answer)
    if isinstance(given, str):
        return _say(False, f"expected a count or a list of unit indices: {given}")
    given = sorted(set(given))
    if given == dead:
        return _say(True, f"units {given[:8]}{' ...' if len(given) > 8 else ''} of {parent} "
                          f"are dead ({len(given)} in all).")
    extra, missing = sorted(set(given) - set(dead)), sorted(set(dead) - set(given))
    return _say(False, f"{len(missing)} dead units missing (e.g. {missing[:3]}) and {len(extra)} "
                       f"live ones included (e.g. {extra[:3]}).")


def _dead_count_verdict(modules: Mapping, parent: str, child: str, n_parent: int, n_dead: int,
                        value: int) -> bool:
    """The verdict on a count of dead units, naming the usual slip when the count is off."""
    from . import pruning

    if value == n_dead:
        if value == 0:
            return _say(True, f"none of the {n_parent} units of {parent} is dead: each keeps "
                              f"at least one connection into {child}.")
        return _say(True, f"{value} of the {n_parent} units of {parent} have no connection "
                          f"left into {child}; compact() can remove them.")
    weight = modules[child].weight.detach().cpu()
    dead_rows = int((~(weight.reshape(weight.shape[0], -1) != 0).any(dim=1)).sum())
    slips = [(n_parent - n_dead, ("you counted the units that are still alive; count "
                                  "those with *no* non-zero outgoing weight.")),
             (dead_rows, (f"you counted {child}'s rows (child units with no input left); a "
                          f"dead *parent* unit is a column block of {child}.weight that is "
                          "zero in every row."))]
    orig = getattr(modules[child], "weight_orig", None)
    if orig is not None:
        slips.append((int(pruning.dead_units(orig.detach().cpu(), n_parent).sum()), (
            f"that reads {child}.weight_orig. After apply_masks PyTorch keeps the untouched "
            f"weights in weight_orig and the 0/1 mask in weight_mask; the network uses "
            f"weight = weight_orig * weight_mask, so look at {child}.weight.")))
    hint = _first_match(value, [s for s in slips if s[0] != n_dead], atol=0, rtol=0)
    return _say(False, hint or f"you gave {value}, but {n_dead} units of {parent} are "
                               f"dead: look for columns of {child}.weight that are zero in "
                               "every row.")


# ----------------------------------------------------------------------------- notebook 06

def check_ece(probs: Any, labels: Any, answer: Any, *, n_bins: int = 15) -> bool:
    """Check the expected calibration error over ``n_bins`` equal-width confidence bins
    (section 8): ``sum_b (n_b / N) |accuracy_b - confidence_b|``."""
    from . import analysis

    if _missing(answer):
        return False
    probs = torch.as_tensor(np.asarray(probs) if not isinstance(probs, torch.Tensor) else probs)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor)
                             else labels)
    ref = analysis.expected_calibration_error(probs, labels, n_bins)
    try:
        value = _number(answer)
    except _Unreadable as err:
        return _say(False, str(err))
    tol = {"atol": 1e-4, "rtol": 1e-3}
    if _close(value, ref, **tol):
        return _say(True, f"ECE = {ref:.4f} over {n_bins} bins.")
    bins = analysis.reliability_bins(probs, labels, n_bins)
    keep = bins["counts"] > 0
    gaps = (bins["accuracy"] - bins["confidence"]).abs()[keep]
    conf, pred = probs.double().max(dim=1)
    accuracy = float((pred == labels).double().mean())
    slips = [(100 * ref, "that looks like a percentage; give the ECE as a fraction in [0, 1]."),
             (abs(float(conf.mean()) - accuracy),
              ("that is the overall gap |mean confidence - accuracy|; split into confidence "
               "bins first and add up the bins' gaps, weighted.")),
             (float(gaps.mean()), ("weight each bin's gap by its share of the items, n_b / N, "
                                   "instead of averaging the bins equally.")),
             (float((bins["counts"][keep].double() * gaps).sum()),
              "divide each bin's count by N: the weights n_b / N add up to 1.")]
    for other in (10, 15, 20):
        if other != n_bins:
            slips.append((analysis.expected_calibration_error(probs, labels, other),
                          f"that is the ECE with {other} bins; use n_bins = {n_bins}."))
    hint = _first_match(value, [s for s in slips if not _close(s[0], ref, **tol)], **tol)
    hint = hint or _rounded(value, ref)
    return _say(False, hint or f"you gave {value:.4f}, but the ECE is {ref:.4f}. Bin by "
                               "confidence (the largest probability), then sum "
                               "(n_b / N) |accuracy_b - confidence_b|.")


# ----------------------------------------------------------------------------- notebook 07

def check_block_pvalues(D: Any, null: Any, answer: Any) -> bool:
    """Check permutation p-values of every block: ``(1 + #{null >= D}) / (1 + permutations)``
    (section 4e), as ``mi.block_pvalues``. ``null`` has shape (permutations, G_c, G_p)."""
    from . import mi

    if _missing(answer):
        return False
    ref = mi.block_pvalues(D, null)
    try:
        value = _array(answer, f"a tensor of shape {tuple(ref.shape)}")
    except _Unreadable as err:
        return _say(False, str(err))
    if tuple(value.shape) != tuple(ref.shape):
        return _say(False, f"expected one p-value per block, shape {tuple(ref.shape)}; got "
                           f"{tuple(value.shape)}.")
    if not torch.isfinite(value).all():
        return _say(False, "some p-values are NaN or infinite; count null values, do not divide "
                           "by zero.")
    if torch.allclose(value, ref, atol=1e-9):
        small = int((ref <= 0.05).sum())
        return _say(True, f"{ref.numel()} p-values from {int(torch.as_tensor(null).shape[0])} "
                          f"permutations; {small} blocks at p <= 0.05.")
    d = torch.as_tensor(D).double()
    nul = torch.as_tensor(null).double()
    k = nul.shape[0]
    exceed = (nul >= d[None]).sum(dim=0).double()
    strict = (nul > d[None]).sum(dim=0).double()
    slips = [(exceed / k, "add one to the count and to the number of permutations: "
                          "(1 + #{null >= D}) / (1 + permutations); D itself counts as one draw "
                          "of the null, so no p-value is 0."),
             ((1 + strict) / (1 + k), "count null values *at or above* D (>=), not strictly "
                                     "above: the estimates are counts, so ties happen."),
             (1 - ref, "that is the share *below* D; the p-value is the share of the null at or "
                       "above the observed D."),
             (1 - exceed / k, "that is the share below D; count null values at or above D, "
                              "then (1 + count) / (1 + permutations).")]
    for wrong, hint in slips:
        if torch.allclose(value, wrong, atol=1e-9):
            return _say(False, hint)
    gap = int((~torch.isclose(value, ref, atol=1e-9)).sum())
    return _say(False, f"{gap} of {ref.numel()} p-values differ; for each block count the "
                       "permutations whose value is >= D, then (1 + count) / (1 + permutations).")
