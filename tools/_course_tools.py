"""What the course tools (tools/figures.py, nbgrader_meta.py, notebooks.py) share.

The tools run as scripts (``python tools/figures.py``) and are loaded by the tests from their
file path; each puts this folder on ``sys.path`` before ``from _course_tools import ...``.
Nothing here imports ``mint_teach`` (and so torch): the tools stay quick to start.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATTERN = "[0-9][0-9]_*.ipynb"


class UsageError(Exception):
    """A user error: the command prints its one-line message and exits with status 2."""


def course_notebooks(names=(), folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks of ``folder``, or those whose file name starts with one of
    ``names``; :class:`UsageError` when none is left."""
    paths = sorted(Path(folder).glob(PATTERN))
    chosen = [p for p in paths if not names or any(p.name.startswith(n) for n in names)]
    if not chosen:
        raise UsageError(f"no notebook matches {list(names)}; have {[p.name[:2] for p in paths]}")
    return chosen


def _umask() -> int:
    """The process's umask (from /proc on Linux, else by setting it and putting it back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, ValueError, IndexError, StopIteration):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def write_file(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole: no reader ever sees half a file.

    The bytes go to a unique temporary file in ``path``'s folder (made if missing), are flushed
    to disk and renamed over ``path`` in one step; the file gets the mode a plain ``open`` would
    give, 0o666 less the user's umask (``mkstemp`` alone makes it 0o600). On any error the
    temporary file is removed and ``path`` keeps its old content. The logic of
    ``mint_teach.config.write_atomic``, without importing the package.
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # by name: os.fchmod is not on every system
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
