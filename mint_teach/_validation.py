"""Input checks shared by the public functions (ARCHITECTURE.md, "Conventions").

Every public function checks its arguments once, at the boundary, and raises ``ValueError``
with a message that names the argument, the value it got and what would be accepted. Nothing
below this boundary re-checks, so a bad argument never surfaces as a shape error deep inside
torch.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from .config import resolve_device

__all__ = [
    "check_count",
    "check_device",
    "check_matrix",
    "check_same_rows",
    "check_seed",
]


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
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:  # ragged nested lists and the like
            raise ValueError(
                f"{name} must be a numeric array (rows, features); could not read it: {err}"
            ) from None
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must be a numeric array (rows, features); got dtype {array.dtype}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex():
        raise ValueError(f"{name} must be real-valued; got dtype {tensor.dtype}")
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


def check_count(name: str, value: Any, *, low: int = 1, high: int | None = None,
                high_means: str = "") -> int:
    """Check that ``value`` is an integer in ``[low, high]`` and return it as an int.

    ``high_means`` explains the upper bound in the message, e.g. "the number of parent units".
    Booleans are rejected even though Python counts them as integers.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(  # noqa: TRY004 - the toolkit reports every bad argument as ValueError
            f"{name} must be an integer; got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and at most {high}"
        why = f" ({high_means})" if high_means and high is not None else ""
        raise ValueError(f"{name} must be at least {low}{upper}{why}; got {value}")
    return value


def check_seed(seed: Any) -> int | None:
    """Check that a seed is None or a non-negative integer."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed must be None or a non-negative integer; got {seed!r}")
    return int(seed)


def check_device(device: Any = None) -> torch.device:
    """Resolve ``device`` as ``config.resolve_device`` does, and make sure it is usable here.

    None or "auto" mean CUDA when available, else the CPU. Asking for CUDA on a machine
    without it raises ValueError now, rather than a RuntimeError deep inside torch later.
    """
    resolved = resolve_device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available here; "
                         "use None, 'auto' or 'cpu'")
    return resolved
