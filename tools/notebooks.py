"""Execute the course notebooks in quick mode, or write a student copy of them.

    python tools/notebooks.py execute [NAME ...]   # re-run notebooks in place (make notebooks)
    python tools/notebooks.py student [--out DIR]  # solutions removed (make student)

``execute`` runs each notebook top to bottom with nbclient in quick mode (MINT_TEACH_QUICK=1),
in ``notebooks/`` as the working directory, with this checkout's ``mint_teach`` first on the
kernel's path. It records in the notebook's metadata (``metadata.mint_teach``) the hash of the
``mint_teach`` sources it ran with, the wall time and the kernel's peak resident memory, writes
the measured time and memory into the header between the ``<!-- measured -->`` markers, and
replaces the file atomically. A notebook that fails is left untouched and the command exits 1.

``student`` writes copies without the cells tagged ``solution`` or ``claim`` and with the
outputs of the cells tagged ``exercise`` cleared, so no answer is visible; the documents the
notebooks link to (``../docs/*.md``, the teaching guide excepted) are copied beside them into
``docs/`` and the links rewritten, so a copy handed out as a folder is complete. Files get the
user's umask, like any file the user writes.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _course_tools import NOTEBOOKS, ROOT, UsageError, course_notebooks, write_file  # noqa: E402

MARK = re.compile(r"<!-- measured -->.*?<!-- /measured -->", re.S)
# The kernel's own peak resident memory. Linux's VmHWM belongs to the process image, so it
# starts afresh at exec; ru_maxrss (the fallback elsewhere) would carry over the peak of the
# process that started the kernel (a long pytest run, say).
PEAK_CELL = ("import os as _o, resource as _r, sys as _s\n"
             "_hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')] "
             "if _o.path.exists('/proc/self/status') else []\n"
             "print('PEAK_KB', int(_hwm[0].split()[1]) if _hwm else "
             "_r.getrusage(_r.RUSAGE_SELF).ru_maxrss // (1024 if _s.platform == 'darwin' else 1))")


def _write(nb, path: Path) -> None:
    """Write ``nb`` to ``path`` whole, with the user's umask (see ``write_file``)."""
    import nbformat

    write_file(path, nbformat.writes(nb) + "\n")


def read_notebook(path: Path):
    """``nbformat.read`` with a one-line error naming the file when it is not a notebook."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such notebook") from None
    except Exception as err:  # noqa: BLE001 - NotJSONError, ValidationError, UnicodeError...
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise UsageError(f"{path}: not a readable notebook ({type(err).__name__}: {first})") \
            from None


def code_hash(nb) -> str:
    """SHA-256 (first 16 hex digits) of the notebook's code cells, in order, with line endings
    normalised: the saved outputs are stale when it differs from the one recorded."""
    import hashlib

    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.replace("\r\n", "\n").encode())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def fold_solutions(nb) -> None:
    """Hide every solution cell's source and outputs in JupyterLab (one click shows them)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            jupyter = cell.metadata.setdefault("jupyter", {})
            jupyter["source_hidden"] = True
            jupyter["outputs_hidden"] = True


# Reading the notebook and doing its exercises, on top of running it (the teaching guide's
# lab plan uses the same figures).
WORKING_MINUTES = {"00": 20, "01": 25, "02": 25, "03": 30, "04": 30, "05": 30, "06": 25, "07": 40}


def measured_line(seconds: float, peak_mb: float, stem: str = "") -> str:
    work = WORKING_MINUTES.get(stem[:2])
    minutes = f"{seconds / 60:.1f}" if seconds < 600 else f"{round(seconds / 60)}"
    return (f"<!-- measured -->Quick mode, a first run (empty cache, data already on disk, the "
            f"shipped baseline weights), measured by `make notebooks` on a two-core CPU: "
            f"{minutes} min, kernel peak memory {peak_mb:,.0f} MB."
            + (f" Reading it and doing the exercises takes a student about {work} min more."
               if work else "") + "<!-- /measured -->")


def kernel_env() -> None:
    """Quick mode and this checkout's ``mint_teach`` for the kernels started from here."""
    os.environ["MINT_TEACH_QUICK"] = "1"  # the kernel inherits this environment
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in paths if p != str(ROOT)])


def run(nb, timeout: int = 1200, cwd: Path = NOTEBOOKS) -> tuple[float, float]:
    """Execute the notebook object ``nb`` in place, in the folder ``cwd``; return (seconds,
    kernel peak memory in MB)."""
    import nbclient
    import nbformat

    kernel_env()
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        peak = nb.cells.pop()
    text = "".join(o.get("text", "") for o in peak.outputs)
    return seconds, int(re.search(r"PEAK_KB (\d+)", text).group(1)) / 1024


def execute(path: Path, timeout: int = 1200, fresh_cache: bool = True) -> dict:
    """Run one notebook in quick mode and rewrite it with its outputs and measurements.

    With ``fresh_cache`` (the default) the kernel gets an empty cache folder of its own, so the
    time recorded is a student's first run; the user's cache is not touched."""
    import nbformat

    sys.path.insert(0, str(ROOT))
    from mint_teach.course import source_hash

    nb = read_notebook(path)
    fold_solutions(nb)
    saved = os.environ.get("MINT_TEACH_CACHE")
    with tempfile.TemporaryDirectory(prefix="mint_teach-first-run-") as cache:
        if fresh_cache:  # what a student's first session meets: nothing cached yet
            os.environ["MINT_TEACH_CACHE"] = cache
        try:
            seconds, peak_mb = run(nb, timeout)
        finally:
            if saved is None:
                os.environ.pop("MINT_TEACH_CACHE", None)
            else:
                os.environ["MINT_TEACH_CACHE"] = saved
    info = {"source_hash": source_hash(), "code_hash": code_hash(nb), "first_run": fresh_cache,
            "quick_seconds": round(seconds, 1), "peak_memory_mb": round(peak_mb, 1)}
    nb.metadata["mint_teach"] = info
    first = nb.cells[0]
    if first.cell_type == "markdown" and MARK.search(first.source):
        first.source = MARK.sub(measured_line(seconds, peak_mb, path.stem), first.source)
    _write(nb, path)
    return info


DOC_LINK = re.compile(r"\]\(\.\./docs/([A-Za-z0-9_.-]+\.md)(#[^)]*)?\)")
TEACHER_ONLY = {"teaching.md"}  # answers and rubric: never in a student copy


def _cited_docs(texts) -> set[str]:
    """The docs/*.md files linked from ``texts``, and those they link to, teacher pages out."""
    todo = {m.group(1) for t in texts for m in DOC_LINK.finditer(t)}
    found: set[str] = set()
    while todo:
        name = todo.pop()
        path = ROOT / "docs" / name
        if name in found or name in TEACHER_ONLY or not path.is_file():
            continue
        found.add(name)
        text = path.read_text(encoding="utf-8")
        todo |= {m.group(1) for m in re.finditer(r"\]\(([A-Za-z0-9_.-]+\.md)(#[^)]*)?\)", text)}
    return found


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.resolve() in (ROOT.resolve(), NOTEBOOKS.resolve()):
        raise UsageError(f"--out {out}: would overwrite the course notebooks; choose another folder")


def student_copy(out: Path, paths=None) -> list[Path]:
    """Write student copies of ``paths`` (default: every course notebook) into ``out``.

    nbconvert's ``TagRemovePreprocessor`` drops the cells tagged ``solution`` and ``claim``
    and clears the outputs of the cells tagged ``exercise``; the documents the notebooks cite
    are copied into ``out/docs`` and the links pointed there. Only the files named here are
    written; nothing else in ``out`` is touched."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    out = Path(out)
    _check_out(out)
    strip = TagRemovePreprocessor(remove_cell_tags={"solution", "claim"},
                                  remove_all_outputs_tags={"exercise"})
    notebooks = [read_notebook(path) for path in (paths or course_notebooks(folder=NOTEBOOKS))]
    texts = [c.source for nb in notebooks for c in nb.cells if c.cell_type == "markdown"]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in zip(paths or course_notebooks(folder=NOTEBOOKS), notebooks):
        nb, _ = strip.preprocess(nb, {})
        for cell in nb.cells:
            if "exercise" in cell.metadata.get("tags", []) and cell.cell_type == "code":
                cell.execution_count = None  # no hint of an earlier run either
            if cell.cell_type == "markdown":
                cell.source = DOC_LINK.sub(lambda m: f"](docs/{m.group(1)}{m.group(2) or ''})",
                                           cell.source)
        nb.metadata.pop("mint_teach", None)
        target = out / path.name
        _write(nb, target)
        written.append(target)
    docs = _cited_docs(texts)
    if docs:
        (out / "docs").mkdir(exist_ok=True)
    for name in sorted(docs):
        target = out / "docs" / name
        write_file(target, (ROOT / "docs" / name).read_text(encoding="utf-8"))
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="re-execute notebooks in quick mode, in place")
    run.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 04 (default: all)")
    run.add_argument("--warm", action="store_true",
                     help="use the user's cache instead of an empty one (not a first run)")
    stu = sub.add_parser("student", help="write the student copy")
    stu.add_argument("--out", default=str(ROOT / "build" / "student"))
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            for target in student_copy(Path(args.out)):
                print(f"wrote {target}")
            return 0
        paths = course_notebooks(args.names, NOTEBOOKS)
    except (UsageError, OSError) as err:
        print(f"notebooks.py {args.command}: {err}", file=sys.stderr)
        return 2
    failed, table = [], []
    for path in paths:
        print(f"{path.name}: running ...", flush=True)
        try:
            info = execute(path, fresh_cache=not args.warm)
        except Exception as err:  # report and go on with the next notebook
            failed.append(path.name)
            print(f"{path.name}: FAILED, file left as it was\n{str(err)[-2000:]}", flush=True)
            continue
        print(f"{path.name}: {info['quick_seconds']:.0f} s, kernel peak "
              f"{info['peak_memory_mb']:.0f} MB, sources {info['source_hash']}", flush=True)
        table.append((path.stem, info))
    if table:  # the course's goal for a first run: <= 2 min and <= 1.5 GB on two cores
        print(f"\n{'notebook':<24}{'run':>10}{'peak MB':>9}  within 2 min / 1.5 GB")
        for stem, info in table:
            ok = info["quick_seconds"] <= 120 and info["peak_memory_mb"] <= 1536
            print(f"{stem:<24}{info['quick_seconds']:>8.0f} s{info['peak_memory_mb']:>9.0f}  "
                  f"{'yes' if ok else 'NO'}{'' if info['first_run'] else ' (warm cache)'}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
