"""Input checks shared by the public functions: one place for every argument check.

Every public function checks its arguments once, at the boundary, and raises ``ValueError``
with a message that names the argument, the value it got and what would be accepted. Nothing
below this boundary re-checks, so a bad argument never surfaces as a shape error deep inside
torch. A value of the wrong type (a string or a boolean where a number belongs) raises
:class:`ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError``: the string
``"0.5"`` is never converted and ``True`` is never read as 1. The scalar checks follow the
spirit of scikit-learn's ``check_scalar``: ``check_number``, ``check_fraction``,
``check_count`` (``check_optional_count`` where None means "all") and ``check_choice``;
``check_device`` is the one check of a device. Arrays: ``check_matrix`` reads samples
``(rows, features)``, ``check_blocks`` a ``(G_c, G_p)`` block matrix (dependences or a block
mask) and ``check_tensor`` a real tensor of any shape.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from .config import resolve_device

__all__ = [
    "ArgumentTypeError",
    "check_choice",
    "check_count",
    "check_fraction",
    "check_number",
    "check_device",
    "check_blocks",
    "check_matrix",
    "check_optional_count",
    "check_same_rows",
    "check_seed",
    "check_tensor",
    "derive_seed",
    "SEED_MAX",
]

SEED_MAX = 2**64 - 1  # the largest seed torch.Generator.manual_seed accepts


def _read_real(name: str, value: Any, what: str) -> torch.Tensor:
    """Read an array-like as a real tensor of its own shape; a tensor keeps dtype and device."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:  # ragged nested lists and the like
            raise ValueError(f"{name} must be {what}; could not read it: {err}") from None
        if array.dtype.kind not in "biuf":  # strings, objects: a type error, never converted
            raise ArgumentTypeError(f"{name} must be {what}; got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex():
        raise ValueError(f"{name} must be real-valued; got dtype {tensor.dtype}")
    return tensor


def check_tensor(name: str, value: Any) -> torch.Tensor:
    """Read an array-like as a real floating tensor of any shape (integers become float64).

    A floating tensor keeps its dtype and device; values are not checked.

    Examples
    --------
    >>> check_tensor("a", [[1, 2]]).dtype
    torch.float64
    """
    tensor = _read_real(name, value, "a numeric array")
    return tensor if tensor.is_floating_point() else tensor.to(torch.float64)


def check_blocks(name: str, value: Any) -> torch.Tensor:
    """Check a block matrix ``(G_c, G_p)``: 2-D, not empty, finite; dtype and device are kept.

    Dependences ``D`` and block masks ``keep`` (docs/method.md section 5) take this form. A
    1-D array is refused: one row or one column of blocks is ambiguous.

    Examples
    --------
    >>> check_blocks("keep", [[True, False]]).shape
    torch.Size([1, 2])
    """
    tensor = _read_real(name, value, "a (G_c, G_p) block matrix")
    if tensor.dim() != 2 or tensor.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-D matrix (G_c, G_p); "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); a (G_c, G_p) block "
                         "matrix needs finite numbers")
    return tensor


def check_matrix(
    name: str,
    value: Any,
    *,
    min_rows: int = 1,
    allow_empty_columns: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Turn an array-like into a finite ``(rows, features)`` float tensor, or raise ValueError.

    A numpy array, a torch tensor or a nested list is accepted. A 1-D input of length n is
    read as n rows of one feature. A tensor keeps its device.

    Parameters
    ----------
    name : str
        The argument's name, used in error messages.
    value : array-like
        The data to check.
    min_rows : int
        The fewest rows the caller can work with.
    allow_empty_columns : bool
        Accept a matrix with zero feature columns (for example an empty conditioning set).
    dtype : torch.dtype
        The floating dtype of the returned tensor.

    Returns
    -------
    torch.Tensor
        A 2-D tensor of ``dtype``, shape ``(rows, features)``.
    """
    tensor = _read_real(name, value, "a numeric array (rows, features)")
    if tensor.ndim == 1:
        tensor = tensor[:, None]
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows, features) or a 1-D array (rows,); "
            f"got shape {tuple(tensor.shape)}"
        )
    rows, columns = tensor.shape
    if rows < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows; got {rows}")
    if columns == 0 and not allow_empty_columns:
        raise ValueError(f"{name} must have at least one feature column; got shape {(rows, 0)}")
    tensor = tensor.to(dtype)
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} must contain only finite numbers; got {bad} NaN or infinite "
            f"value{'s' if bad != 1 else ''} in shape {tuple(tensor.shape)}"
        )
    return tensor


def check_same_rows(**matrices: torch.Tensor) -> int:
    """Check that all given matrices have the same number of rows and return that number.

    Examples
    --------
    >>> check_same_rows(x=torch.zeros(5, 2), y=torch.zeros(5, 3))
    5
    """
    rows = {name: int(m.shape[0]) for name, m in matrices.items()}
    if len(set(rows.values())) > 1:
        names = list(rows)
        listed = ", ".join(f"{n} has {r}" for n, r in rows.items())
        raise ValueError(
            f"{', '.join(names[:-1])} and {names[-1]} must have the same number of rows "
            f"(one row per sample); got {listed}"
        )
    return next(iter(rows.values()))


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. A TypeError, and a ValueError for code that catches the
    toolkit's ValueError for every bad argument."""


def _type_error(name: str, value: Any, wanted: str) -> ArgumentTypeError:
    return ArgumentTypeError(f"{name} must be {wanted}; got {value!r} of type "
                             f"{type(value).__name__}")


def check_number(name: str, value: Any, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
    """Check that ``value`` is a real number (not a bool or a string) in the given range.

    ``low_open`` / ``high_open`` exclude the bound itself. NaN is always refused. Returns the
    value as a float.

    Examples
    --------
    >>> check_number("lr", 0.1, low=0, low_open=True)
    0.1
    """
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0 \
            and value.dtype != torch.bool and value.dtype != np.bool_:
        value = value.item()  # a 0-d tensor or array, e.g. from torch.quantile
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _type_error(name, value, "a number")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or below or above:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        where = (f"in {lo}, {hi}" if low is not None and high is not None
                 else f"{'>' if low_open else '>='} {low:g}" if low is not None
                 else f"{'<' if high_open else '<='} {high:g}" if high is not None
                 else "a number")
        raise ValueError(f"{name} must be {where}; got {value!r}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """Check that ``value`` is a number in [0, 1] (not a bool, a string or NaN)."""
    return check_number(name, value, low=0.0, high=1.0)


def check_choice(name: str, value: Any, choices) -> str:
    """Check that ``value`` is one of the names ``choices`` and return it.

    Examples
    --------
    >>> check_choice("schedule", "cosine", ("cosine", "step"))
    'cosine'
    """
    choices = list(choices)
    if not isinstance(value, str):
        raise _type_error(name, value, f"one of {choices}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_count(name: str, value: Any, *, low: int | None = 1, high: int | None = None,
                high_means: str = "") -> int:
    """Check that ``value`` is an integer in ``[low, high]`` and return it as an int.

    ``low=None`` or ``high=None`` leave that side open. ``high_means`` explains the upper
    bound in the message, e.g. "the number of parent units". Booleans are rejected even though
    Python counts them as integers.

    Examples
    --------
    >>> check_count("epochs", 3, low=0)
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _type_error(name, value, "an integer")
    value = int(value)
    if low is None:
        if high is not None and value > high:
            raise ValueError(f"{name} must be at most {high}; got {value}")
        return value
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and at most {high}"
        why = f" ({high_means})" if high_means and high is not None else ""
        raise ValueError(f"{name} must be at least {low}{upper}{why}; got {value}")
    return value


def check_optional_count(name: str, value: Any, *, low: int = 1, none_means: str) -> int | None:
    """Check that ``value`` is None or an integer ``>= low``; ``none_means`` says what None does.

    Examples
    --------
    >>> check_optional_count("batches", None, none_means="all of data") is None
    True
    """
    if value is None:
        return None
    try:
        return check_count(name, value, low=low)
    except ValueError as err:  # ArgumentTypeError too: keep the type, say what None means
        wanted = "a positive int" if low == 1 else f"an int >= {low}"
        raise type(err)(f"{name} must be {wanted} or None ({none_means}); got {value!r}"
                        ) from None


def check_seed(seed: Any) -> int | None:
    """Check that a seed is None or an integer in [0, SEED_MAX] (what torch's generators take).

    Examples
    --------
    >>> check_seed(2**64 - 1) == SEED_MAX
    True
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= int(seed) <= SEED_MAX:
        raise ValueError(f"seed must be None or an integer in [0, 2**64 - 1]; got {seed!r}")
    return int(seed)


def derive_seed(seed: int, offset: int) -> int:
    """A second seed derived from ``seed``: ``seed + offset``, wrapped past ``SEED_MAX``.

    Seeds of ordinary size give ``seed + offset`` exactly (so results do not change), and
    the largest seeds wrap around instead of overflowing torch's generators.

    Examples
    --------
    >>> derive_seed(7, 1), derive_seed(2**64 - 1, 1)
    (8, 0)
    """
    value = seed + offset
    return value if value <= SEED_MAX else value % (SEED_MAX + 1)


def check_device(device: Any = None) -> torch.device:
    """Resolve ``device`` and make sure it is usable here (``config.resolve_device``).

    None or "auto" mean CUDA when available, else the CPU. An unknown name, or CUDA on a
    machine without it, raises ValueError now rather than a RuntimeError deep inside torch.
    """
    return resolve_device(device)
