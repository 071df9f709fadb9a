"""The course website (tools/book.py, `make book` and `make book-student`).

Both editions are built once from the committed notebooks; the tests read the HTML. The full
edition folds every solution (code and output) behind a "Show solution" button; the student
edition carries no solution code or output and no teaching page; both search, and load
nothing from the network (MathJax from their own _static). The builder replaces only a folder
it wrote itself. The browser test (tests/test_browser.py) opens a page with the network off.
"""
from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "tools" / "book.py"
REPOSITORY = "https://github.com/example-owner/mint-course"


def _book():
    spec = importlib.util.spec_from_file_location("course_book", BOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


book = _book()


def _build(out: Path, edition: str, **kwargs) -> Path:
    """Build one edition; skip (outside CI) where the site tools or MathJax cannot be had."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None and not os.environ.get("CI"):
            pytest.skip(f"{module} not installed (pip install -e '.[site]')")
    try:
        return book.build(out, edition, **kwargs)
    except book.BookError as err:
        if "MathJax" in str(err) or "npm" in str(err):
            if not os.environ.get("CI"):
                pytest.skip(str(err))
        raise


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Both editions: the full one under umask 027 with a repository address, the student
    one into a folder that exists and is empty."""
    base = tmp_path_factory.mktemp("sites")
    old = os.umask(0o027)
    try:
        _build(base / "full", "full", repository=REPOSITORY)
    finally:
        os.umask(old)
    (base / "student").mkdir()
    _build(base / "student", "student", repository=None)
    return {"full": base / "full", "student": base / "student", "base": base}


def _text(page: str) -> str:
    """What a reader sees of an HTML page: tags dropped, entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _without_details(page: str) -> str:
    return re.sub(r"<details\b.*?</details>", " ", page, flags=re.S)


def _notebooks():
    import nbformat

    return [(p, nbformat.read(p, as_version=4))
            for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _solution_lines(nb, shared: str) -> list[str]:
    """Distinctive lines of the solution cells (code and printed output): lines of at least
    12 characters that no other cell and no page of the student edition (``shared``) has."""
    others = "\n".join(c.source + "\n" + _outputs_text(c) for c in nb.cells
                       if "solution" not in c.metadata.get("tags", []))
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            for line in (cell.source + "\n" + _outputs_text(cell)).splitlines():
                line = line.strip()
                if len(line) >= 12 and line not in others and line not in shared:
                    lines.append(line)
    return lines


def _shared_docs() -> str:
    return "\n".join((ROOT / p).read_text() for p in
                     ("README.md", "docs/method.md", "docs/architecture.md"))


def _solution_count(nb) -> int:
    return sum(1 for c in nb.cells if "solution" in c.metadata.get("tags", []))


# -------------------------------------------------------------------------------- both editions

def test_both_editions_build_with_marker_and_search(sites):
    for edition in ("full", "student"):
        site = sites[edition]
        assert (site / "index.html").is_file()
        assert (site / book.MARKER).is_file(), "the marker that allows the next build to replace it"
        assert (site / "search.html").is_file()
        index = (site / "searchindex.js").read_text()
        data = json.loads(index[index.index("(") + 1:index.rindex(")")])
        for path, nb in _notebooks():
            assert f"notebooks/{path.stem}" in data["docnames"], (edition, path.stem)
        assert "henz" in data["terms"] or "henze" in data["terms"], "no words indexed"
    # nothing else was written beside the sites (temporary folders, MyST-NB's jupyter_execute)
    assert sorted(p.name for p in sites["base"].iterdir()) == ["full", "student"]


def test_navigation_is_titled_by_each_notebooks_first_heading(sites):
    for edition in ("full", "student"):
        index = (sites[edition] / "index.html").read_text()
        links = {html.unescape(re.sub(r"<[^>]+>", "", text)).strip().replace("\u2019", "'"): href
                 for href, text in re.findall(r'<a class="reference internal" href="([^"]+)">'
                                              r'(.*?)</a>', index, flags=re.S)}
        for path, nb in _notebooks():
            title = book.title_of(nb, path.stem)
            assert title != path.stem[:2] and len(title) > 5
            assert links.get(title) == f"notebooks/{path.stem}.html", (title, sorted(links))
        assert not any(re.fullmatch(r"\d\d", label) for label in links), sorted(links)


def test_pages_load_no_script_or_style_from_the_network(sites):
    for edition in ("full", "student"):
        site = sites[edition]
        pages = sorted(site.rglob("*.html"))
        assert len(pages) >= 12
        with_math = 0
        for page in pages:
            text = page.read_text()
            refs = re.findall(r'<script\b[^>]*\bsrc="([^"]*)"', text)
            refs += re.findall(r'<link\b[^>]*\bhref="([^"]*)"', text)
            remote = [r for r in refs if re.match(r"^(https?:)?//", r)]
            assert not remote, f"{page.relative_to(site)} loads {remote}"
            assert "cdn.jsdelivr" not in text and "unpkg.com" not in text, page
            assert "application/vnd.jupyter.widget-view+json" not in text, page
            mathjax = re.findall(r'<script\b[^>]*\bsrc="([^"?]*mathjax[^"?]*)', text)
            if mathjax:
                with_math += 1
                assert all(m.endswith("_static/mathjax/tex-mml-chtml.js") for m in mathjax)
                assert (page.parent / mathjax[0]).resolve().is_file()
        assert with_math >= 5, f"only {with_math} pages load MathJax"
        fonts = list((site / "_static/mathjax/output/chtml/fonts/woff-v2").glob("*.woff"))
        assert len(fonts) > 10, "MathJax's fonts are not served with the site"
        assert (site / "_static/mathjax/input/tex/extensions").is_dir()
        for name in ("02_graphs", "04_mint_mnist"):  # the notebooks with widget outputs
            assert "mt-widget-note" in (site / "notebooks" / f"{name}.html").read_text()


# ------------------------------------------------------------------------------- full edition

def test_full_edition_folds_every_solution_and_its_output(sites):
    shared = _shared_docs()
    for path, nb in _notebooks():
        page = (sites["full"] / "notebooks" / f"{path.stem}.html").read_text()
        folded = re.findall(r"<details\b.*?</details>", page, flags=re.S)
        toggles = [d for d in folded if "Show solution" in d]
        assert len(toggles) == _solution_count(nb) > 0, path.stem
        visible, whole = _text(_without_details(page)), _text(page)
        lines = _solution_lines(nb, shared)
        assert lines, path.stem
        for line in lines:
            assert line in whole, (path.stem, line)  # the solution is on the page...
            assert line not in visible, (path.stem, line)  # ...only behind its button
        assert "✔ correct" in whole and "✔ correct" not in visible, path.stem


def test_full_edition_has_the_teacher_pages_and_the_documents(sites):
    site = sites["full"]
    for name in ("method", "reproduction", "scale", "architecture", "teaching"):
        assert (site / "docs" / f"{name}.html").is_file(), name
    assert 'href="docs/teaching.html"' in (site / "index.html").read_text()
    assert (site / "README.html").is_file()


def test_full_edition_links_to_binder_and_the_repository(sites):
    page = (sites["full"] / "notebooks" / "04_mint_mnist.html").read_text()
    binder = ("https://mybinder.org/v2/gh/example-owner/mint-course/HEAD?urlpath=lab/tree/"
              "notebooks/04_mint_mnist.ipynb")
    assert binder in html.unescape(page)
    assert REPOSITORY in page


def test_files_are_written_with_the_users_umask(sites):
    site = sites["full"]  # built under umask 027
    modes = {stat.S_IMODE(p.stat().st_mode) for p in site.rglob("*") if p.is_file()}
    dirs = {stat.S_IMODE(p.stat().st_mode) for p in [site, *site.rglob("*")] if p.is_dir()}
    assert modes == {0o640}, sorted(oct(m) for m in modes)
    assert dirs == {0o750}, sorted(oct(m) for m in dirs)


# ---------------------------------------------------------------------------- student edition

def test_student_edition_has_no_solution_code_or_output(sites):
    site, shared = sites["student"], _shared_docs()
    texts = {p: p.read_text(errors="replace") for p in site.rglob("*")
             if p.is_file() and p.suffix in (".html", ".js", ".ipynb", ".txt", ".md")}
    for p, text in texts.items():
        assert "✔ correct" not in text, p.relative_to(site)
        assert "Show solution" not in text, p.relative_to(site)
    for path, nb in _notebooks():
        page = _text((site / "notebooks" / f"{path.stem}.html").read_text())
        source = (site / "_sources" / "notebooks" / path.name).read_text()
        for line in _solution_lines(nb, shared):
            assert line not in page, (path.stem, line)
            assert json.dumps(line)[1:-1] not in source, (path.stem, line)
        assert "# Solution" not in page, path.stem


def test_student_edition_has_no_teacher_pages(sites):
    site = sites["student"]
    assert not (site / "docs" / "teaching.html").exists()
    assert not list(site.rglob("teaching*"))
    for page in site.rglob("*.html"):
        assert "teaching.html" not in page.read_text(), page.relative_to(site)
    assert "mybinder.org" not in (site / "index.html").read_text()  # no GitHub address given


# ------------------------------------------------------------------------ the builder's safety

def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(BOOK), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _one_line_refusal(done, *words):
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_refuses_a_folder_holding_other_files(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "my_notes.txt").write_text("keep me")
    _one_line_refusal(_cli("--out", str(notes)), "my_notes.txt", book.MARKER)
    assert (notes / "my_notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


def test_refuses_the_current_folder_of_a_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    _one_line_refusal(_cli("--out", ".", cwd=checkout), "--out .")
    assert (checkout / ".git").is_dir() and (checkout / "pyproject.toml").is_file()
    with pytest.raises(book.BookError, match="refusing|repository"):
        book.check_out(ROOT)


def test_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "site.html"
    target.write_text("mine")
    _one_line_refusal(_cli("--out", str(target)), "is a file")
    assert target.read_text() == "mine"


@pytest.mark.parametrize("content", ["{not json", '{"cells": 3}'])
def test_invalid_notebook_is_named_in_one_line(tmp_path, content):
    source = tmp_path / "course"
    (source / "notebooks").mkdir(parents=True)
    (source / "docs").mkdir()
    for name in ("method", "reproduction", "scale", "architecture", "teaching"):
        (source / "docs" / f"{name}.md").write_text(f"# {name}\n")
    (source / "README.md").write_text("# course\n\ntext\n")
    (source / "notebooks" / "00_broken.ipynb").write_text(content)
    out = tmp_path / "out"
    _one_line_refusal(_cli("--source", str(source), "--out", str(out)), "00_broken.ipynb")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course"]


def test_bad_edition_and_repository_are_refused(tmp_path):
    _one_line_refusal(_cli("--edition", "teacher", "--out", str(tmp_path / "a")), "teacher")
    _one_line_refusal(_cli("--repository", "https://example.org/x/y",
                           "--out", str(tmp_path / "a")), "GitHub")
    assert not (tmp_path / "a").exists()


def test_replacing_a_site_removes_only_the_marked_folder(tmp_path):
    out, built = tmp_path / "site", tmp_path / ".site.build-1"
    out.mkdir()
    (out / book.MARKER).write_text("old")
    (out / "old.html").write_text("old")
    built.mkdir()
    (built / book.MARKER).write_text("new")
    (built / "index.html").write_text("new")
    (tmp_path / "beside.txt").write_text("keep")
    book.replace_out(built, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([book.MARKER, "index.html"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "site"]
    # a folder that lost its marker (or never had one) is not replaced
    (out / book.MARKER).unlink()
    built.mkdir()
    with pytest.raises(book.BookError):
        book.replace_out(built, out)
    assert (out / "index.html").read_text() == "new"


@pytest.mark.parametrize("url, repo", [
    ("git@github.com:owner/repo.git", "owner/repo"),
    ("https://github.com/owner/repo", "owner/repo"),
    ("https://github.com/owner/repo.git", "owner/repo"),
    ("https://gitlab.com/owner/repo", None),
    ("/srv/git/repo.git", None),
    (None, None),
])
def test_github_repository_reads_the_makefiles_forms(url, repo):
    assert book.github_repository(url) == repo
