"""Load a script of tools/ as a module, for the tests of `make figures`, `make nbgrader` and
`make notebooks` (the tools are scripts, not a package)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str):
    """A fresh module made from ``tools/<name>.py`` (each call executes the file anew, so a
    test's monkeypatching does not leak into the next)."""
    spec = importlib.util.spec_from_file_location(f"course_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
