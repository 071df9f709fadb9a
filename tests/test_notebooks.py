"""The course: every notebook runs top to bottom in quick mode and its exercise solutions pass.

The notebooks are executed from an in-memory copy (the committed files, with their saved
outputs, are never rewritten) by nbclient with the "python3" kernel, in ``notebooks/`` as the
working directory, with MINT_TEACH_QUICK=1. Exercises follow one pattern: a cell tagged
``exercise`` holds the student's slot (``answer = None``) and a check call; a hidden cell tagged
``solution`` after it fills in a working answer and calls the same check, which must print
``✔ correct``.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from mint_teach import checks
from mint_teach.course import source_hash
from tool_loader import load_tool

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_quickstart", "01_activations", "02_graphs", "03_mutual_information",
            "04_mint_mnist", "05_mint_cifar10", "06_beyond_accuracy", "07_reproduction"]
MAX_BYTES = 1_000_000
MAX_KERNEL_MB = 1536  # Binder gives about 2 GB per user
ROOT = NOTEBOOK_DIR.parent


def _tools():
    """tools/notebooks.py, the code behind `make notebooks` and `make student`."""
    return load_tool("notebooks")


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
        folded = sol.metadata.get("jupyter", {})  # source and outputs hidden until clicked
        assert folded.get("source_hidden") is True and folded.get("outputs_hidden") is True
        assert "mt.checks.check_" in sol.source
    # saved in quick mode with outputs, so readers on GitHub see the figures; no saved errors
    assert all(c.get("execution_count") for c in code), "notebook is not fully executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    for sol in solutions:
        assert checks.CORRECT in _text(sol)


# every notebook whose markdown states results backs them with claim cells (03 and 07 too, once
# theirs are written); a claim cell asserts, on variables computed just above it, a sentence of
# the text: the execution tests run it, so a re-run that breaks the sentence fails
CLAIMED = {"00_quickstart", "01_activations", "02_graphs", "04_mint_mnist", "05_mint_cifar10",
           "06_beyond_accuracy"}


def _claim_problems(source: str) -> list[str]:
    """What keeps a cell from being a pure claim: any statement but ``assert`` (comments are
    not statements), an assignment hidden in an assert (``:=``), or no assert at all."""
    tree = ast.parse(source)
    problems = [f"line {node.lineno}: {type(node).__name__}, not an assert"
                for node in tree.body if not isinstance(node, ast.Assert)]
    problems += [f"line {node.lineno}: an assignment expression (:=)"
                 for node in ast.walk(tree) if isinstance(node, ast.NamedExpr)]
    return problems if tree.body else ["no assert"]


def test_claim_check_tells_asserts_from_other_code():
    assert _claim_problems("# the cut weights stay zero\nassert a < b, 'why'\nassert c") == []
    assert _claim_problems("x = 1\nassert x") == ["line 1: Assign, not an assert"]
    assert _claim_problems("assert (n := 3) > 2") == ["line 1: an assignment expression (:=)"]
    assert _claim_problems("print(1)") == ["line 1: Expr, not an assert"]
    assert _claim_problems("# only a comment") == ["no assert"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claim_cells_only_assert(path):
    """Claim cells hold asserts and comments only, each right after the code cell it checks,
    so dropping them (the student copy) changes nothing the rest of the notebook computes."""
    nb = nbformat.read(path, as_version=4)
    claims = _tagged(nb, "claim")
    if path.stem in CLAIMED:
        assert claims, f"{path.name} has no claim cell"
    for k, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        if "claim" not in tags:
            continue
        assert cell.cell_type == "code" and not tags & {"exercise", "solution"}, (path.name, k)
        assert not _claim_problems(cell.source), (path.name, k, _claim_problems(cell.source))
        above = nb.cells[k - 1] if k else None
        assert above is not None and above.cell_type == "code", (path.name, k, "follows no code")
        assert not set(above.metadata.get("tags", [])) & {"exercise", "solution", "claim"}, (
            path.name, k, "a claim follows the cell that computes what it asserts")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_match_the_sources(path):
    """Saved outputs were computed with the mint_teach sources of this checkout."""
    nb = nbformat.read(path, as_version=4)
    recorded = nb.metadata.get("mint_teach", {}).get("source_hash")
    assert recorded == source_hash(), (
        f"{path.name}'s saved outputs were computed with mint_teach sources {recorded}, the "
        f"checkout has {source_hash()}: run `make notebooks NB={path.stem[:2]}` (all: `make "
        "notebooks`) and commit the notebook")
    code = nb.metadata["mint_teach"].get("code_hash")
    assert code == _tools().code_hash(nb), (
        f"{path.name}'s code cells changed after its outputs were saved: run `make notebooks "
        f"NB={path.stem[:2]}` and commit the notebook")
    assert "not measured yet" not in nb.cells[0].source


def test_code_hash_sees_code_edits_but_not_line_endings():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    tools = _tools()
    before = tools.code_hash(nb)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source = cell.source.replace("\n", "\r\n")
    assert tools.code_hash(nb) == before
    cell.source += "\nx = 1"
    assert tools.code_hash(nb) != before


def _numbers(text: str) -> set[str]:
    """Decimal numbers with at least two decimals (answers, not counts or settings)."""
    return set(re.findall(r"(?<![\d.])-?\d+\.\d{2,}", text))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_answer_is_shown_before_its_exercise(path):
    """The value a solution checks is nowhere above its exercise, in outputs or markdown."""
    nb = nbformat.read(path, as_version=4)
    for k, cell in enumerate(nb.cells):
        if "solution" not in cell.metadata.get("tags", []):
            continue
        answers = _numbers(_text(cell).split(checks.CORRECT, 1)[-1].splitlines()[0])
        exercise = max(i for i in range(k) if "exercise" in nb.cells[i].metadata.get("tags", []))
        settings = set().union(*(_numbers(c.source) for c in nb.cells[:k]
                                 if c.cell_type == "code"))  # typed in code: not a result
        for before in nb.cells[:exercise]:
            shown = before.source if before.cell_type == "markdown" else _text(before)
            leaked = (answers & _numbers(shown)) - settings
            assert not leaked, (path.name, leaked, shown[:300])


def test_student_copy_has_no_answers(tmp_path):
    """`make student`: no solution or claim cells, exercise outputs cleared, the rest kept,
    files readable by others (the user's umask), the cited documents beside them."""
    old = os.umask(0o022)
    try:
        written = _tools().student_copy(tmp_path)
    finally:
        os.umask(old)
    notebooks = [p for p in written if p.suffix == ".ipynb"]
    assert [p.name for p in notebooks] == [p.name for p in NOTEBOOKS]
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o644, path
    for original, copy in zip(NOTEBOOKS, notebooks):
        full, student = (nbformat.read(p, as_version=4) for p in (original, copy))
        nbformat.validate(student)
        assert not _tagged(student, "solution") and not _tagged(student, "claim")
        assert len(_tagged(student, "exercise")) == len(_tagged(full, "exercise"))
        removed = len(_tagged(full, "solution")) + len(_tagged(full, "claim"))
        assert len(student.cells) == len(full.cells) - removed
        for cell in student.cells:  # every relative link resolves from where the copy is
            if cell.cell_type == "markdown":
                for target in re.findall(r"\]\((?!https?:|#)([^)#\s]+)", cell.source):
                    assert (tmp_path / target).exists(), (copy.name, target)
        assert not (tmp_path / "docs" / "teaching.md").exists()
        for cell in _tagged(student, "exercise"):
            assert cell.outputs == [] and "answer = None" in cell.source
        texts = [_text(c) for c in student.cells if c.cell_type == "code"]
        assert not any(checks.CORRECT in t for t in texts)
        assert sum("image/png" in o.get("data", {}) for c in student.cells
                   if c.cell_type == "code" for o in c.outputs) > 0  # figures kept


@pytest.fixture(scope="module")
def student_folder(tmp_path_factory):
    """One student copy (`make student`) for the tests that run it."""
    folder = tmp_path_factory.mktemp("student")
    _tools().student_copy(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_runs_unanswered(path, student_folder, monkeypatch):
    """The student copy runs top to bottom in quick mode from where it is written, with every
    exercise unanswered: nothing a later cell needs lives only in a removed cell, and every
    checker says the exercise is not answered yet."""
    monkeypatch.setenv("MINT_TEACH_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(student_folder / path.name, as_version=4)
    _tools().run(nb, timeout=1200, cwd=student_folder)  # raises on the first failing cell
    exercises = _tagged(nb, "exercise")
    assert exercises
    for cell in exercises:
        assert checks.NOT_YET in _text(cell), cell.source
        assert checks.CORRECT not in _text(cell)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, monkeypatch, record_property):
    # run() sets MINT_TEACH_QUICK and PYTHONPATH for the kernel; monkeypatch restores them
    monkeypatch.setenv("MINT_TEACH_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)  # a copy in memory: the file is never rewritten
    seconds, peak_mb = _tools().run(nb, timeout=1200)  # raises on the first cell that fails
    record_property("seconds", round(seconds, 1))
    record_property("peak_mb", round(peak_mb))
    print(f"{path.stem}: {seconds:.1f} s, kernel peak memory {peak_mb:.0f} MB")
    assert peak_mb < MAX_KERNEL_MB, f"{path.stem} peaked at {peak_mb:.0f} MB"

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "quick mode" in _text(code[0])
    for cell in _tagged(nb, "exercise"):  # the student's slot runs and asks for an answer
        assert checks.NOT_YET in _text(cell), cell.source
    solutions = _tagged(nb, "solution")
    assert solutions
    for cell in solutions:
        assert checks.CORRECT in _text(cell), (cell.source, _text(cell))
