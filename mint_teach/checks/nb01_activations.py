"""Notebook 01 (activations): the exercises' checkers.

``check_conv_average``: a conv layer's activation, every map averaged over space (section 2);
``check_per_class``: a class-balanced sample of rows, no row twice (section 2).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .common import _say, _missing, _Unreadable, _array

__all__ = ["check_conv_average", "check_per_class"]


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
