"""The command-line rule, shared by ``python -m mint_teach`` and the scripts in benchmarks/.

A user error (a bad flag, an output folder that cannot be written, data that is not there) is
found before any work and reported as ONE line with exit status 2, never as a traceback.
``OneLineParser`` is argparse with one-line errors; ``check_flag`` runs a check of
:mod:`mint_teach._validation` on a flag's value; ``check_out_folder`` refuses an output path
that is a file or a folder this user cannot write; ``exit_on_user_error`` turns the
ValueError / FileNotFoundError of a loader (missing data says where it looked and how to
stage it) into that one line.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["OneLineParser", "check_flag", "check_out_folder", "exit_on_user_error", "one_line"]


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a KeyError's message without its quotes)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(str(text).split())


class OneLineParser(argparse.ArgumentParser):
    """argparse, with each usage error on one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def check_flag(parser: argparse.ArgumentParser, flag: str, check: Callable, value: Any,
               **bounds) -> Any:
    """``check(flag, value, **bounds)`` (a ``_validation`` check); a bad value ends the run.

    Returns what the check returns. A list (``nargs="+"``) is checked item by item.

    Examples
    --------
    >>> from mint_teach._validation import check_count
    >>> check_flag(OneLineParser(), "--seeds", check_count, 3)
    3
    """
    try:
        if isinstance(value, list):
            return [check(flag, item, **bounds) for item in value]
        return check(flag, value, **bounds)
    except ValueError as exc:
        message = one_line(exc)
        parser.error(message if message.startswith(flag) else f"argument {flag}: {message}")


def check_out_folder(parser: argparse.ArgumentParser, flag: str,
                     path: str | os.PathLike) -> Path:
    """Make ``path`` (a folder for the run's files) and check that a file can be written in it.

    Refused with a one-line error: an existing file (or anything that is not a folder), and a
    folder that cannot be made or written in (permissions, a read-only file system). The
    check writes and removes one temporary file of its own.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        parser.error(f"{flag} {str(path)!r} is a file, not a folder; give a folder for the "
                     "results")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        parser.error(f"{flag} {str(path)!r} cannot be written: "
                     f"{exc.strerror or one_line(exc)}")
    return path


@contextmanager
def exit_on_user_error(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Report a ValueError or FileNotFoundError raised inside as one line, exit status 2.

    For loading data and checking settings before the work starts; the loaders' missing-data
    message already names where they looked and how to stage the data.
    """
    try:
        yield
    except (ValueError, FileNotFoundError) as exc:
        parser.error(one_line(exc))
