"""Shared fixtures: staged data from MINT_TEACH_DATA (../shared/data in CI), quiet matplotlib."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

_here = Path(__file__).resolve().parents[1]
if "MINT_TEACH_DATA" not in os.environ and (_here.parent / "shared" / "data").is_dir():
    os.environ["MINT_TEACH_DATA"] = str(_here.parent / "shared" / "data")


def _staged(*parts: str) -> bool:
    root = os.environ.get("MINT_TEACH_DATA")
    return bool(root) and Path(root, *parts).exists()


HAS_MNIST = _staged("MNIST", "raw", "train-images-idx3-ubyte")
HAS_CIFAR = _staged("cifar10-jpg.tar.gz") or _staged("cifar10-jpg") or _staged("cifar-10-batches-py")
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason="MNIST not staged in MINT_TEACH_DATA")
needs_cifar = pytest.mark.skipif(not HAS_CIFAR, reason="CIFAR-10 not staged in MINT_TEACH_DATA")
