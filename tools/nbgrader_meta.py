"""The course notebooks as an nbgrader course: answer and checker cells with nbgrader's metadata.

    python tools/nbgrader_meta.py [NAME ...] [--out build/nbgrader] [--assignment mint]
    cd build/nbgrader && nbgrader generate_assignment mint      # release/mint/: for students
    ... collect submissions into submitted/<student>/mint/ ...
    nbgrader autograde mint                                       # autograded/, gradebook.db

A course notebook holds each exercise as two cells: the exercise (tagged ``exercise``:
``answer = None`` and the checker call) and, right after it, the teacher's solution (tagged
``solution``). nbgrader holds an exercise as one answer cell whose solution region it strips
for the students, followed by a locked test cell. This tool writes that form:

- an **answer cell** (nbgrader "autograded answer": ``solution: true``): the exercise's set-up
  lines and prompt, then the solution's code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (nbgrader replaces it by ``raise NotImplementedError()``);
- a **checker cell** (nbgrader "autograded tests": ``grade: true``, locked, 1 point):
  ``assert`` of the exercise's own ``mt.checks.check_...`` call, which prints what is off.

Every other cell is copied unchanged. The conversion is idempotent (a converted notebook has no
exercise-solution pair left) and leaves the course notebooks alone. The tool writes
``OUT/source/<assignment>/<notebook>.ipynb`` and ``OUT/nbgrader_config.py`` (quick mode,
``mint_teach`` importable, a cell timeout for the training cells). Errors are one line and exit
status 2.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _course_tools import NOTEBOOKS, ROOT, UsageError, course_notebooks, write_file  # noqa: E402

CHECK = re.compile(r"^\s*mt\.checks\.check_\w+\(")
PROMPT = re.compile(r"^answer\s*=\s*None\s*(#\s*(?P<hint>.*))?$")
SCHEMA = 3
CONFIG = '''# nbgrader configuration written by tools/nbgrader_meta.py
import os

c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.course_id = "mint_teach"
c.ExecutePreprocessor.timeout = 1200  # a notebook's training cells run for minutes on a laptop
os.environ.setdefault("MINT_TEACH_QUICK", "1")  # the course's quick mode
os.environ.setdefault("MPLBACKEND", "Agg")
# The kernels nbgrader starts import this checkout's mint_teach.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in ({root!r}, os.environ.get("PYTHONPATH", "")) if p)
'''


class GraderError(UsageError):
    """A user error: one line for the command line."""


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _code_cell(source: str, tags: list[str], nbgrader: dict) -> dict:
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
            "metadata": {"tags": tags, "nbgrader": {"schema_version": SCHEMA, **nbgrader}}}


def convert_pair(exercise: dict, solution: dict, grade_id: str) -> list[dict]:
    """The answer cell and the checker cell of one exercise-solution pair."""
    lines = _source(exercise).splitlines()
    checks = [line.strip() for line in lines if CHECK.match(line)]
    prompts = [PROMPT.match(line.strip()) for line in lines]
    if not checks or not any(prompts):
        raise GraderError(f"{grade_id}: the exercise cell needs `answer = None` and a "
                          "mt.checks.check_...(..., answer) call")
    hint = next(m.group("hint") for m in prompts if m) or "your code"
    setup = [line for line, m in zip(lines, prompts) if not m and not CHECK.match(line)]
    body = [line for line in _source(solution).splitlines()
            if not CHECK.match(line) and line not in setup]
    answer = "\n".join([*setup, f"# Set `answer` ({hint}); the cell below checks it.",
                        "### BEGIN SOLUTION", *body, "### END SOLUTION"])
    checker = "\n".join(f'assert {call}, "not yet: the line above says what is off"'
                        for call in checks)
    return [_code_cell(answer, ["exercise"], {"grade": False, "solution": True, "locked": False,
                                              "task": False, "grade_id": f"{grade_id}-answer"}),
            _code_cell(checker, ["checker"], {"grade": True, "solution": False, "locked": True,
                                              "task": False, "points": 1,
                                              "grade_id": f"{grade_id}-check"})]


def nbgrader_source(nb: dict, prefix: str) -> dict:
    """A copy of notebook ``nb`` (its JSON as a dict) in nbgrader's source form.

    Each cell tagged ``exercise`` (without nbgrader metadata) followed by a cell tagged
    ``solution`` becomes an answer cell and a checker cell; ids are ``<prefix>-ex<k>-...``.
    A ``solution`` cell with no exercise before it is an error.
    """
    out = copy.deepcopy(nb)
    cells, k, i = [], 0, 0
    source = nb.get("cells", [])
    while i < len(source):
        cell = source[i]
        fresh = "nbgrader" not in cell.get("metadata", {})
        if fresh and "exercise" in _tags(cell):
            if i + 1 >= len(source) or "solution" not in _tags(source[i + 1]):
                raise GraderError(f"{prefix}: the exercise at cell {i} has no solution cell "
                                  "right after it")
            k += 1
            answer, checker = convert_pair(cell, source[i + 1], f"{prefix}-ex{k}")
            if "id" in cell:  # nbformat 4.5 cell ids: the answer keeps the exercise's
                answer["id"], checker["id"] = cell["id"], f"{prefix}-ex{k}-check"
            cells += [answer, checker]
            i += 2
            continue
        if fresh and "solution" in _tags(cell):
            raise GraderError(f"{prefix}: the solution at cell {i} follows no exercise cell")
        cells.append(copy.deepcopy(cell))
        i += 1
    out["cells"] = cells
    return out


def write_course(out: Path, paths: list[Path], assignment: str = "mint") -> list[Path]:
    """Write the nbgrader course folder ``out``: its config and one source notebook per path."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", assignment):
        raise GraderError(f"--assignment must be letters, digits, - or _; got {assignment!r}")
    converted = []
    for path in paths:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GraderError(f"cannot read notebook {path}: {exc}") from None
        converted.append((path.name, nbgrader_source(nb, path.name[:2])))
    written = []
    for name, nb in converted:
        target = out / "source" / assignment / name
        write_file(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    write_file(out / "nbgrader_config.py", CONFIG.format(root=str(ROOT)))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 02 (default: all)")
    parser.add_argument("--out", default=str(ROOT / "build" / "nbgrader"))
    parser.add_argument("--assignment", default="mint")
    args = parser.parse_args(argv)
    try:
        written = write_course(Path(args.out), course_notebooks(args.names, NOTEBOOKS),
                               args.assignment)
    except (UsageError, OSError) as exc:
        print(f"nbgrader_meta: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"then: cd {args.out} && nbgrader generate_assignment {args.assignment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
