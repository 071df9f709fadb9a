"""docs/architecture.md stays true: every module is listed, and imports point up the list."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_order() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    order = []
    for line in text.splitlines():
        if line.startswith("| `"):
            order += re.findall(r"`(\w+)`", line.split("|")[1])
    return order


def _modules() -> set[str]:
    """The package's modules: its ``*.py`` files and its sub-packages (folders with __init__)."""
    package = ROOT / "mint_teach"
    return ({p.stem for p in package.glob("*.py")} - {"__init__"}) | {
        p.parent.name for p in package.glob("*/__init__.py")}


def _files(name: str) -> list[tuple[Path, int]]:
    """The source files of a module or sub-package, each with the relative-import level that
    reaches mint_teach's own modules from it (1 for a module, 2 inside a sub-package)."""
    package = ROOT / "mint_teach"
    if (package / name).is_dir():
        return [(p, 2) for p in sorted((package / name).glob("*.py"))]
    return [(package / f"{name}.py", 1)]


def _top_level_imports(name: str) -> set[str]:
    """Package modules imported at module level (imports inside functions are lazy)."""
    found = set()
    for path, level in _files(name):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == level:
                found |= ({node.module.split(".")[0]} if node.module
                          else {a.name for a in node.names})
    return found


def test_every_module_is_listed_once():
    order = _listed_order()
    assert len(order) == len(set(order))
    assert set(order) == _modules()
    assert "checks" in _modules()  # sub-packages are found


def test_module_level_imports_point_up_the_list():
    order = _listed_order()
    rank = {name: k for k, name in enumerate(order)}
    upward = []
    for name in order:
        for dep in _top_level_imports(name) & set(rank):
            if rank[dep] >= rank[name]:
                upward.append(f"{name} imports {dep}")
    assert not upward, upward
