"""The set-up files agree: pyproject.toml is the one source of versions, environment.yml follows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAME = {"torch": "pytorch-cpu"}  # PyPI name -> conda-forge name where they differ
PIP_ONLY = {"playwright",  # the browser test's driver; not needed on Binder
            "sphinx", "myst-nb", "sphinx-book-theme"}  # the website builder (site extra)


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    out = dict(_split(s) for s in specs)
    return {CONDA_NAME.get(k, k): v for k, v in out.items() if k not in PIP_ONLY}


def _environment() -> dict[str, str]:
    deps = {}
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    for line in text.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)(.*)$", line)
        if m and m.group(1) not in ("python", "pip"):
            deps[m.group(1).lower()] = m.group(2).strip().replace(" ", "")
    return deps


def test_environment_matches_pyproject():
    assert _environment() == _pyproject()


def test_environment_installs_the_package_itself():
    assert '-e ".[dev]"' in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make demo" in (ROOT / "README.md").read_text()
