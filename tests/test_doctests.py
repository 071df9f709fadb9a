"""Every module's docstring examples run (doctest): each is short, offline and fast."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mint_teach

MODULES = ["mint_teach"] + sorted(
    info.name for info in pkgutil.walk_packages(mint_teach.__path__, "mint_teach.")
)

# Modules whose public functions show their use in an Examples section: losing every example
# of one of these is a regression, not a pass.
WITH_EXAMPLES = {
    "mint_teach._validation", "mint_teach.activations", "mint_teach.analysis",
    "mint_teach.checks", "mint_teach.config", "mint_teach.data", "mint_teach.graphs",
    "mint_teach.mi", "mint_teach.models", "mint_teach.plots", "mint_teach.pruning",
    "mint_teach.train", "mint_teach.widgets",
}


def test_every_module_is_listed():
    assert WITH_EXAMPLES <= set(MODULES)
    assert {"mint_teach.pipeline", "mint_teach.widgets", "mint_teach.checks"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"
