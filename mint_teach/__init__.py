"""mint_teach: learn and run MINT (Mutual Information-based Neuron Trimming).

``import mint_teach as mt`` gives every step as a module: ``mt.data``, ``mt.models``,
``mt.train``, ``mt.activations``, ``mt.groups``, ``mt.graphs``, ``mt.mi``, ``mt.pruning``,
``mt.pipeline``, ``mt.plots``, ``mt.analysis``; ``mt.widgets`` and ``mt.checks`` are imported
on first use.
"""
from __future__ import annotations

import importlib

from . import activations, config, data, groups, models, pruning, train
from .config import is_quick, limit_threads

limit_threads()

__version__ = "0.1.0"

_LAZY = {"graphs", "mi", "pipeline", "plots", "analysis", "widgets", "checks"}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in ("MintConfig", "run_mint"):
        return getattr(importlib.import_module(".pipeline", __name__), name)
    raise AttributeError(f"module 'mint_teach' has no attribute {name!r}")


__all__ = sorted({"activations", "config", "data", "groups", "models", "pruning", "train",
                  "is_quick", "MintConfig", "run_mint", *_LAZY})
