"""Helpers the course notebooks share: the dataset a notebook runs on, said out loud, and the
fingerprint of the toolkit's sources that a notebook's saved outputs were computed with.

``load_course_data("mnist")`` asks for the real dataset, downloads allowed (so Binder and a
fresh laptop fetch it); only when that fails does it fall back to scikit-learn's 8x8 digits, and
then it displays a banner that says which dataset is in use and why, so no student compares
numbers computed on digits with the ones printed for MNIST or CIFAR-10.
"""
from __future__ import annotations

import hashlib
import html
from pathlib import Path

from . import data

__all__ = ["load_course_data", "source_hash", "banner"]

FALLBACK = "digits"


def source_hash() -> str:
    """SHA-256 (first 16 hex digits) of the package: every ``*.py`` source under
    ``mint_teach/`` (subpackages included) and the shipped baseline weights, in path order.

    ``make notebooks`` records it in each executed notebook's metadata; the freshness test
    compares it with the sources of the checkout.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = [*package.rglob("*.py"), *package.glob("baselines/*")]
    for path in sorted(files, key=lambda p: p.relative_to(package).as_posix()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        data = path.read_bytes()
        digest.update(data.replace(b"\r\n", b"\n") if path.suffix == ".py" else data)
    return digest.hexdigest()[:16]


def banner(text: str, *, warning: bool = True) -> None:
    """Display a coloured box in a notebook (plain text elsewhere); ``text`` is a string."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string (the banner's message); got {text!r} of type "
                        f"{type(text).__name__}")
    try:
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        print(text)
        return
    colour = "#fff3cd; border-left: 6px solid #e0a800" if warning else \
        "#e7f3fe; border-left: 6px solid #2196f3"
    box = (f'<div style="background: {colour}; padding: 0.6em 1em; margin: 0.4em 0; '
           f'color: #222;">{html.escape(text)}</div>')
    display(HTML(box), metadata={"mint_teach": "banner"})
    print(text)


def load_course_data(name: str, *, root=None) -> tuple[data.ImageDataset, data.ImageDataset]:
    """The training and test split of ``name`` ("mnist" or "cifar10"), downloads allowed.

    When the dataset can be neither found nor downloaded, falls back to scikit-learn's 8x8
    ``digits`` (shipped with scikit-learn) and shows a banner naming the dataset in use and
    the reason. Always prints one line saying which dataset the notebook runs on.

    Returns
    -------
    (train_set, test_set)
    """
    try:
        train_set = data.load_dataset(name, root=root, train=True, download=True)
        test_set = data.load_dataset(name, root=root, train=False, download=True)
    except (FileNotFoundError, OSError, RuntimeError) as err:
        reason = str(err).splitlines()[0]
        banner(f"This notebook runs on the 8x8 '{FALLBACK}' images, not {name.upper()}: "
               f"{reason} The code is the same, but every number below differs from the "
               f"saved outputs, which were computed on {name.upper()}. To use {name.upper()}, "
               "allow downloads or set MINT_TEACH_DATA to a folder holding it, then restart "
               "the kernel.")
        return data.load_dataset(FALLBACK), data.load_dataset(FALLBACK, train=False)
    print(f"dataset: {name} ({len(train_set):,} training and {len(test_set):,} test images)")
    return train_set, test_set
