"""tools/nbgrader_meta.py: the course's exercises as nbgrader answer and checker cells.

The slow test builds an nbgrader course from notebook 02, runs `nbgrader generate_assignment`,
and autogrades a correct and a wrong submission: full marks and none.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mint_teach.checks import NOT_YET
from tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    return load_tool("nbgrader_meta")


def _notebook(name: str) -> dict:
    return json.loads(next((ROOT / "notebooks").glob(f"{name}_*.ipynb")).read_text())


def _graded(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if "nbgrader" in c["metadata"]]


def _text(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("name", ["00", "01", "02", "03", "04", "05", "06", "07"])
def test_every_exercise_becomes_an_answer_and_a_checker(name):
    tool = _tool()
    nb = _notebook(name)
    pairs = sum("exercise" in c["metadata"].get("tags", []) for c in nb["cells"])
    out = tool.nbgrader_source(nb, name)
    graded = _graded(out)
    assert len(graded) == 2 * pairs and pairs >= 1
    for answer, checker in zip(graded[::2], graded[1::2]):
        a, c = answer["metadata"]["nbgrader"], checker["metadata"]["nbgrader"]
        assert a["solution"] and not a["grade"] and not a["locked"]
        assert c["grade"] and c["locked"] and c["points"] == 1 and not c["solution"]
        assert "### BEGIN SOLUTION" in _text(answer) and "### END SOLUTION" in _text(answer)
        assert "mt.checks.check_" not in _text(answer)  # the checker cell does the check
        assert _text(checker).startswith("assert mt.checks.check_")
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in graded]
    assert len(set(ids)) == len(ids)
    # everything else is copied as it was
    others = [c for c in nb["cells"] if not {"exercise", "solution"} & set(c["metadata"].get(
        "tags", []))]
    assert [c for c in out["cells"] if "nbgrader" not in c["metadata"]] == others
    assert tool.nbgrader_source(out, name) == out  # idempotent
    assert tool.nbgrader_source(nb, name) is not nb and nb == _notebook(name)  # input untouched


def test_a_solution_without_its_exercise_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    tool = _tool()
    nb = _notebook("02")
    first = next(i for i, c in enumerate(nb["cells"])
                 if "exercise" in c["metadata"].get("tags", []))
    del nb["cells"][first]
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "02_graphs.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(tool, "NOTEBOOKS", folder)
    assert tool.main(["--out", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "follows no exercise" in err
    assert not (tmp_path / "course").exists()


def _run(args, cwd):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               MINT_TEACH_QUICK="1")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_nbgrader_releases_and_autogrades_notebook_02(tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    tool = _tool()
    assert tool.main(["02", "--out", str(course)]) == 0
    _run(["generate_assignment", "mint"], course)
    source = json.loads((course / "source" / "mint" / "02_graphs.ipynb").read_text())
    release = json.loads((course / "release" / "mint" / "02_graphs.ipynb").read_text())
    solutions = {c["metadata"]["nbgrader"]["grade_id"]: _text(c) for c in _graded(source)
                 if c["metadata"]["nbgrader"]["solution"]}
    released = "\n".join(_text(c) for c in release["cells"])
    assert "raise NotImplementedError()" in released
    assert "def cross_edges" not in released and "def hp_from_count" not in released

    def submit(student, fill):
        nb = copy.deepcopy(release)
        for cell in _graded(nb):
            meta = cell["metadata"]["nbgrader"]
            if meta["solution"]:
                cell["source"] = fill(solutions[meta["grade_id"]])
        target = course / "submitted" / student / "mint" / "02_graphs.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(nb))

    submit("right", lambda s: s.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION", ""))
    submit("wrong", lambda s: "answer = 0")
    _run(["autograde", "mint", "--create"], course)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: (gb.find_submission("mint", s).score, gb.find_submission("mint", s).max_score)
                  for s in ("right", "wrong")}
    assert scores == {"right": (2.0, 2.0), "wrong": (0.0, 2.0)}
    graded = json.loads((course / "autograded" / "wrong" / "mint" / "02_graphs.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in graded["cells"]
                      for o in c.get("outputs", []))
    assert NOT_YET in printed  # the checker's verdict reaches the student's graded copy


def test_make_has_the_target():
    result = subprocess.run(["make", "-n", "nbgrader", "PY=python", "ENV_DEP="], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "tools/nbgrader_meta.py" in result.stdout
