"""The course: every notebook runs top to bottom in quick mode and its exercise solutions pass.

The notebooks are executed from an in-memory copy (the committed files, with their saved
outputs, are never rewritten) by nbclient with the "python3" kernel, in ``notebooks/`` as the
working directory, with MINT_TEACH_QUICK=1. Exercises follow one pattern: a cell tagged
``exercise`` holds the student's slot (``answer = None``) and a check call; a hidden cell tagged
``solution`` after it fills in a working answer and calls the same check, which must print
``✔ correct``.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from mint_teach import checks

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_quickstart", "01_activations", "02_graphs", "03_mutual_information",
            "04_mint_mnist", "05_mint_cifar10", "06_beyond_accuracy"]
MAX_BYTES = 1_000_000


def _tagged(nb, tag: str) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def _text(cell) -> str:
    """Everything a code cell printed or displayed as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def test_the_course_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_course_conventions(path):
    """Cheap checks on the committed file: the switch, the import, exercises, saved outputs."""
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = code[0].source
    assert "PAPER_SCALE = False" in first and "import mint_teach as mt" in first
    assert "QUICK = mt.is_quick() or not PAPER_SCALE" in first
    exercises, solutions = _tagged(nb, "exercise"), _tagged(nb, "solution")
    assert exercises and len(exercises) == len(solutions)
    for ex in exercises:
        assert "answer = None" in ex.source and "mt.checks.check_" in ex.source
    for sol in solutions:
        assert sol.metadata.get("jupyter", {}).get("source_hidden") is True
        assert "mt.checks.check_" in sol.source
    # saved in quick mode with outputs, so readers on GitHub see the figures; no saved errors
    assert all(c.get("execution_count") for c in code), "notebook is not fully executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    for sol in solutions:
        assert checks.CORRECT in _text(sol)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, monkeypatch, record_property):
    monkeypatch.setenv("MINT_TEACH_QUICK", "1")  # the kernel inherits this environment
    nb = nbformat.read(path, as_version=4)  # a copy in memory: the file is never rewritten
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first cell that fails
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    print(f"{path.stem}: {seconds:.1f} s")

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "quick mode" in _text(code[0])
    for cell in _tagged(nb, "exercise"):  # the student's slot runs and asks for an answer
        assert checks.NOT_YET in _text(cell), cell.source
    solutions = _tagged(nb, "solution")
    assert solutions
    for cell in solutions:
        assert checks.CORRECT in _text(cell), (cell.source, _text(cell))
