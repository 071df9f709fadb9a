"""One place for the toolkit's switches: quick mode, data and cache folders, the device."""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import torch

__all__ = ["is_quick", "data_root", "cache_dir", "resolve_device", "cpu_quota", "limit_threads",
           "with_umask", "write_atomic"]

_TRUE = {"1", "true", "yes", "on"}


def is_quick(quick: bool | None = None) -> bool:
    """Quick mode: the argument when given, else the environment variable MINT_TEACH_QUICK=1."""
    if quick is not None:
        return bool(quick)
    return os.environ.get("MINT_TEACH_QUICK", "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """Per-user cache folder (MINT_TEACH_CACHE, else $XDG_CACHE_HOME/mint_teach, else ~/.cache)."""
    env = os.environ.get("MINT_TEACH_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "mint_teach"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: ``root`` when given, else MINT_TEACH_DATA, else the cache folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MINT_TEACH_DATA")
    if env:
        return Path(env).expanduser()
    return cache_dir() / "data"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when available, else the CPU; checked to be usable here.

    This is the one place where the toolkit reads a ``device`` argument. None or "auto" mean
    CUDA when available, else the CPU. A name torch does not know, a CUDA device on a machine
    without CUDA (or past its last GPU) and an unavailable Apple "mps" device raise ValueError
    now, naming the device, rather than a driver error deep inside torch later.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accepted = "None, 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be {accepted}; got {device!r} of type "
                        f"{type(device).__name__}")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be {accepted}; got {device!r}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available here; "
                             "use None, 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {device!r} does not exist: this machine has {count} CUDA "
                             f"device(s), cuda:0 to cuda:{count - 1}")
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r} was requested but MPS is not available here; "
                             "use None, 'auto' or 'cpu'")
    elif resolved.type not in ("cpu", "meta"):
        raise ValueError(f"device must be {accepted}; got {device!r}")
    return resolved


def cpu_quota() -> int | None:
    """CPUs this process may use under a cgroup quota (Binder, containers), or None."""
    try:
        text = open("/sys/fs/cgroup/cpu.max").read().split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    return max(1, math.ceil(int(text[0]) / int(text[1])))


def limit_threads() -> int:
    """Cap torch's threads at the CPU quota: more threads than CPUs slow small ops 10x or more.

    Leaves an explicit OMP_NUM_THREADS alone. Returns the thread count in force.
    """
    quota = cpu_quota()
    if quota is not None and "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > quota:
        torch.set_num_threads(quota)
    return torch.get_num_threads()


def with_umask(mode: int) -> int:
    """``mode`` less the user's umask: what ``open`` (0o666) or ``mkdir`` (0o777) would give.

    For files made by ``mkstemp`` / ``mkdtemp``, which are private (0o600 / 0o700) whatever
    the umask, before they are renamed into place.
    """
    return mode & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in /proc/self/status; elsewhere it is read by setting and restoring it
    at once (``os.umask`` has no read-only form).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that no reader ever sees it half-written.

    ``write(f)`` fills a temporary file with a unique name in ``path``'s folder (so two
    processes writing the same path never share one, and no planted link is followed), which
    is flushed to disk and then renamed over ``path`` in one step (``os.replace``). The file
    gets the mode an ordinary ``open`` would give it, 0o666 less the user's umask (``mkstemp``
    alone makes it private, 0o600). On any error the temporary file is removed and ``path``
    keeps its old content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_atomic(target, lambda f: f.write(b"done"))
    >>> target.read_text()
    'done'
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), with_umask(0o666))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
