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


def _top_level_imports(path: Path) -> set[str]:
    """Package modules imported at module level (imports inside functions are lazy)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def test_every_module_is_listed_once():
    order = _listed_order()
    modules = {p.stem for p in (ROOT / "mint_teach").glob("*.py")} - {"__init__"}
    assert len(order) == len(set(order))
    assert set(order) == modules


def test_module_level_imports_point_up_the_list():
    order = _listed_order()
    rank = {name: k for k, name in enumerate(order)}
    upward = []
    for name in order:
        for dep in _top_level_imports(ROOT / "mint_teach" / f"{name}.py") & set(rank):
            if rank[dep] >= rank[name]:
                upward.append(f"{name} imports {dep}")
    assert not upward, upward
