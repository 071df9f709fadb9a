"""The set-up files agree: pyproject.toml is the one source of versions, environment.yml follows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAME = {"torch": "pytorch-cpu"}  # PyPI name -> conda-forge name where they differ


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    """The package's own dependencies: what the course needs (the dev extra stays off Binder)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = dict(_split(s) for s in meta["dependencies"])
    return {CONDA_NAME.get(k, k): v for k, v in out.items()}


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


def test_environment_installs_the_package_itself_without_extras():
    """`- -e .` unquoted: repo2docker then copies the repository before installing (a quoted
    path reads as a remote requirement and the repository arrives only afterwards)."""
    lines = [ln.strip() for ln in (ROOT / "environment.yml").read_text().splitlines()]
    assert "- -e ." in lines
    assert not any("[dev]" in ln or "playwright" in ln for ln in lines)


def test_repo2docker_copies_the_repository_before_installing(tmp_path):
    """Binder's build, as repo2docker would run it (Dockerfile only, no Docker needed)."""
    import shutil
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("repo2docker")
    if not exe.exists():
        exe = shutil.which("repo2docker")
    if not exe:
        pytest.skip("jupyter-repo2docker is not installed (it is in the dev extra)")
    repo = tmp_path / "repo"  # the files Binder sees: what git tracks plus the work tree
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".venv", "build", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "student"))
    run = subprocess.run([str(exe), "--no-build", "--debug", str(repo)], capture_output=True,
                         text=True, timeout=300)
    dockerfile = run.stdout + run.stderr
    lines = dockerfile.splitlines()

    def first(pattern: str) -> int:
        hits = [k for k, line in enumerate(lines) if re.search(pattern, line)]
        assert hits, f"repo2docker's Dockerfile has no line matching {pattern!r}"
        return hits[0]

    copy_repo = first(r"^COPY .*src/ \$\{REPO_DIR\}/$")
    install = first(r"env update .*environment\.yml")
    post_build = first(r"^RUN \./postBuild$")
    assert copy_repo < install < post_build
    assert not any(re.match(r"^COPY .*src/environment\.yml", line) for line in lines)


def test_jupyterlab_news_prompt_is_switched_off():
    """Binder (postBuild) and `make lab` (.venv) install the same settings overrides."""
    import json

    overrides = json.loads((ROOT / "tools" / "jupyterlab-overrides.json").read_text())
    notes = overrides["@jupyterlab/apputils-extension:notification"]
    assert notes["fetchNews"] == "false" and notes["checkForUpdates"] is False
    for setup in ("postBuild", "Makefile"):
        text = (ROOT / setup).read_text()
        assert "tools/jupyterlab-overrides.json" in text and "lab/settings" in text


def test_binder_opens_the_student_edition():
    text = (ROOT / "postBuild").read_text()
    assert "tools/notebooks.py student --out student" in text
    assert "lab/tree/student" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make demo" in (ROOT / "README.md").read_text()
