"""Notebook 00 (quickstart): the exercise's checker.

``check_sparsity``: the share of zero weights in some layers, in percent (docs/method.md 7).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .common import _say, _missing, _Unreadable, _number, _close, _first_match, _rounded

__all__ = ["check_sparsity"]


def check_sparsity(model: torch.nn.Module, layers: str | Sequence[str], answer: Any) -> bool:
    """Check the percentage of zero weights in ``layers`` of ``model`` (docs/method.md 7).

    Only the layers' *weights* count (not biases), pooled over the listed layers, in percent
    (0-100), as ``pruning.sparsity_report(model, layers)["total"]["pruned_pct"]``.
    """
    from .. import pruning

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
