"""What every checker shares: the verdict line and the readers of a student's answer.

A check prints one line, ``✔ correct: ...`` or ``✘ not yet: ...``, and returns ``True`` or
``False`` (``_say``). The readers (``_number``, ``_array``, ``_count``, ``_indices``) turn an
answer into a number, a tensor or a list of indices, or raise ``_Unreadable`` with a message
for the student; ``_first_match`` and ``_rounded`` name the usual slip behind a wrong value.

Examples
--------
>>> _say(True, "R = 3 of the 7 tree edges join the two samples.")
✔ correct: R = 3 of the 7 tree edges join the two samples.
True
>>> _first_match(0.75, [(0.75, "the leading '1 -' is missing."), (0.5, "a factor 2.")])
"the leading '1 -' is missing."
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

CORRECT = "✔ correct"
NOT_YET = "✘ not yet"


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
