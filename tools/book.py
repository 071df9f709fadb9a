"""Build the course website from the committed notebooks and docs (Sphinx, MyST-NB, book theme).

    python tools/book.py [--edition full|student] [--out DIR] [--repository URL] [--mathjax PATH]

Nothing is executed: MyST-NB renders each notebook's saved outputs. Two editions:

* ``full`` (``make book``, build/site/): every notebook with each solution cell (code cells
  tagged ``solution``) folded, code and output, behind a "Show solution" button; the README,
  the method, the architecture and the teaching guide.
* ``student`` (``make book-student``, build/site-student/): the notebooks without their
  solution cells and with the exercise cells' outputs cleared, as ``make student`` hands them
  out; no teaching guide.

The pages work offline: MathJax 3 is served from the site's own ``_static/mathjax`` (taken
once from the npm package ``mathjax@3`` with ``npm pack`` and kept in the per-user cache, or
from ``--mathjax``), and the ipywidgets outputs, which need a running kernel, are replaced by
a note saying where to run them. With a GitHub repository (``--repository``, else the
``origin`` remote) the pages link to it and the full edition's notebooks get a Binder button.

The site is built in a fresh temporary folder beside ``--out`` and moved into place at the
end. An existing ``--out`` is replaced only when it is empty or carries the marker file
``.mint_teach_site`` that this tool writes into every site it builds; anything else is refused
and left as it is.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _course_tools import _umask  # noqa: E402  the course tools' one umask reader

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".mint_teach_site"
EDITIONS = ("full", "student")
DEFAULT_OUT = {"full": "build/site", "student": "build/site-student"}
DOCS = {"full": ["method", "reproduction", "scale", "architecture", "teaching"],
        "student": ["method", "reproduction", "scale", "architecture"]}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("Interactive widget: it needs a running kernel. Open this notebook in "
               "JupyterLab (make lab) or on Binder to use it.")
# The parts of the MathJax 3 npm package that the TeX-to-CommonHTML component loads: the
# component itself, the TeX extensions it loads on demand, its fonts, the menu and a11y parts.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "a11y", "ui",
                 "adaptors")
MATHJAX_SPEC = "mathjax@3.2.2"  # the last MathJax 3 release; the cache is named by it


class BookError(Exception):
    """A user error: printed as one line, exit status 2."""


class BuildFailed(Exception):
    """Sphinx itself failed (its messages are printed): exit status 1."""


# ------------------------------------------------------------------------------ the out folder

def check_out(out: Path) -> None:
    """Refuse an ``--out`` that this tool may not replace (see the module docstring)."""
    if out.is_symlink():
        raise BookError(f"--out {out} is a symbolic link; give a folder path")
    if out.exists() and not out.is_dir():
        raise BookError(f"--out {out} is a file, not a folder; give a new or empty folder, "
                        f"or a site this tool built")
    if out.is_dir():
        try:
            entries = [p.name for p in out.iterdir()]
        except OSError as err:
            raise BookError(f"--out {out} cannot be read ({err.strerror})") from None
        if entries and MARKER not in entries:
            raise BookError(
                f"--out {out} holds files this tool did not write ({', '.join(sorted(entries)[:3])}"
                f"{', ...' if len(entries) > 3 else ''}) and no {MARKER} marker; refusing to "
                f"replace it: give a new or empty folder")
    if out.resolve() in (ROOT.resolve(), *ROOT.resolve().parents):
        raise BookError(f"--out {out} is the repository or a folder above it; give a new folder")


def _apply_umask(tree: Path) -> None:
    """Folders 0777 and files 0666 less the user's umask (mkdtemp makes its folder 0700)."""
    mask = _umask()
    for folder, dirs, files in os.walk(tree):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~mask)


def replace_out(built: Path, out: Path) -> None:
    """Move the finished site ``built`` to ``out``; an old site there (checked) is removed."""
    check_out(out)  # again, just before: nothing foreign may have arrived meanwhile
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "site")
        try:
            os.rename(built, out)
        except OSError:
            os.rename(old / "site", out)  # put the previous site back as it was
            old.rmdir()
            raise
        shutil.rmtree(old)
    else:
        os.rename(built, out)


# ------------------------------------------------------------------------------------ sources

def course_notebooks(source: Path) -> list[Path]:
    """The course notebooks, in order (``notebooks/NN_name.ipynb``)."""
    return sorted((source / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def read_notebook(path: Path):
    """Read a notebook; an unreadable or invalid file is a :class:`BookError` naming it."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except (OSError, ValueError, nbformat.ValidationError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BookError(f"{path} is not a valid notebook: {reason}") from None
    except Exception as err:  # nbformat's NotJSONError and friends have no common base
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BookError(f"{path} is not a valid notebook: {reason[:200]}") from None
    return nb


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _static_widget(output) -> None:
    """Replace an ipywidgets view (which needs a kernel) by a note where to run it."""
    data = output.get("data", {})
    if WIDGET_MIME in data:
        output["data"] = {"text/html": f'<p class="mt-widget-note">{WIDGET_NOTE}</p>',
                          "text/plain": WIDGET_NOTE}


def page_notebook(nb, edition: str):
    """The notebook as its page shows it (a modified copy; ``nb`` itself is left alone).

    Full edition: solution cells tagged ``hide-cell`` with a "Show solution" prompt, so
    MyST-NB folds their code and outputs. Student edition: solution cells removed and the
    outputs of exercise cells cleared. Both: widget views replaced by a note.
    """
    import copy

    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
        if cell.cell_type == "code" and "solution" in tags:
            if edition == "student":
                continue
            cell.metadata["tags"] = tags + ["hide-cell"]
            cell.metadata["mystnb"] = {"code_prompt_show": "Show solution",
                                       "code_prompt_hide": "Hide solution"}
        if cell.cell_type == "code" and "exercise" in tags and edition == "student":
            cell.outputs = []
            cell.execution_count = None
        for output in cell.get("outputs", []):
            _static_widget(output)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def title_of(nb, fallback: str) -> str:
    """The first Markdown heading of a notebook."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return fallback


def unlink_docs(text: str, names) -> str:
    """Markdown links to the documents ``names`` (left out of this edition) become plain text."""
    for name in names:
        text = re.sub(rf"\[([^\]]+)\]\((?:\.\./)?(?:docs/)?{name}\.md(?:#[^)]*)?\)", r"\1", text)
    return text


def readme_intro(readme: str) -> str:
    """The README's first paragraph after its title: what the toolkit is."""
    body = readme.split("\n", 1)[1] if readme.startswith("#") else readme
    paragraphs = [p.strip() for p in body.strip().split("\n\n") if p.strip()]
    return paragraphs[0] if paragraphs else ""


# --------------------------------------------------------------------------------- repository

def github_repository(url: str | None) -> str | None:
    """``OWNER/REPO`` of a GitHub address (https or ssh form), else None."""
    if not url:
        return None
    match = re.match(r"^(?:git@github\.com:|https://github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?$",
                     url.strip())
    return match.group(1) if match else None


def origin_url(source: Path) -> str | None:
    """The ``origin`` remote of the checkout at ``source`` (None without git or remote)."""
    try:
        out = subprocess.run(["git", "-C", str(source), "remote", "get-url", "origin"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# ------------------------------------------------------------------------------------ MathJax

def _cache_dir() -> Path:
    """The toolkit's per-user cache (the same rule as ``mint_teach.config.cache_dir``)."""
    if os.environ.get("MINT_TEACH_CACHE"):
        return Path(os.environ["MINT_TEACH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mint_teach"


def _extract_mathjax(tarball: Path, dest: Path) -> None:
    """Unpack the parts of an ``npm pack mathjax@3`` tarball that the site loads into ``dest``."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(tarball) as tar:
                members = [m for m in tar.getmembers()
                           if m.name.startswith(("package/es5/", "package/LICENSE",
                                                 "package/package.json"))]
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
        except (OSError, tarfile.TarError) as err:
            why = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
            raise BookError(f"--mathjax {tarball}: not a readable npm tarball ({why})") from None
        _copy_mathjax(Path(tmp) / "package", dest)


def _copy_mathjax(package: Path, dest: Path) -> None:
    es5 = package / "es5" if (package / "es5").is_dir() else package
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise BookError(f"{package} holds no MathJax 3 (es5/tex-mml-chtml.js missing)")
    dest.mkdir(parents=True)
    for part in MATHJAX_PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / part)
    for extra in ("LICENSE", "package.json"):
        if (package / extra).is_file():
            shutil.copyfile(package / extra, dest / extra)


def mathjax_folder(spec: str | None) -> Path:
    """A folder with MathJax 3's CommonHTML component, fonts and extensions.

    ``spec``: a tarball from ``npm pack mathjax@3`` or an unpacked package folder. Without it,
    the per-user cache, filled once by ``npm pack mathjax@3`` (the npm registry is needed the
    first time only).
    """
    if spec:
        path = Path(spec)
        if not path.exists():
            raise BookError(f"--mathjax {spec}: no such file or folder")
        tmp = Path(tempfile.mkdtemp(prefix="mint_teach_mathjax-"))
        shutil.rmtree(tmp)
        if path.is_dir():
            _copy_mathjax(path, tmp)
        else:
            _extract_mathjax(path, tmp)
        return tmp
    cached = _cache_dir() / "site" / MATHJAX_SPEC.replace("@", "-")
    if (cached / "tex-mml-chtml.js").is_file():
        return cached
    if shutil.which("npm") is None:
        raise BookError(f"MathJax 3 is not in {cached} and npm is not installed: install npm "
                        f"(Debian: apt-get install npm) or pass --mathjax with a tarball from "
                        f"`npm pack {MATHJAX_SPEC}`")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"book: fetching {MATHJAX_SPEC} with npm pack (once; kept in {cached})",
              file=sys.stderr)
        try:
            done = subprocess.run(["npm", "pack", MATHJAX_SPEC, "--silent",
                                   "--pack-destination", tmp], capture_output=True, text=True,
                                  timeout=300)
        except (OSError, subprocess.SubprocessError) as err:
            raise BookError(f"npm pack {MATHJAX_SPEC} failed ({err}); pass --mathjax") from None
        tarballs = sorted(Path(tmp).glob("mathjax-*.tgz"))
        if done.returncode != 0 or not tarballs:
            why = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
            raise BookError(f"npm pack {MATHJAX_SPEC} failed ({why}); run it where the npm "
                            f"registry is reachable or pass --mathjax with its tarball")
        staged = Path(tempfile.mkdtemp(prefix=".mathjax-3.", dir=cached.parent))
        try:
            _extract_mathjax(tarballs[0], staged / "mathjax")
            try:
                os.rename(staged / "mathjax", cached)
            except OSError:  # another build filled the cache meanwhile
                if not (cached / "tex-mml-chtml.js").is_file():
                    raise
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return cached


# ------------------------------------------------------------------------------------ sources

CONF = '''\
# Written by tools/book.py for one build; edit tools/book.py instead.
project = {project!r}
html_title = {project!r}
extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"           # render the saved outputs; never run a notebook
nb_ipywidgets_js = {{}}               # no widget scripts from a CDN (widgets become a note)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
mathjax_path = "mathjax/tex-mml-chtml.js"  # served from the site's own _static
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme = "sphinx_book_theme"
html_theme_options = {theme_options!r}
html_show_sphinx = False
html_last_updated_fmt = None
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
'''

COURSE_CSS = """\
.mt-widget-note { font-style: italic; color: #555; border-left: 3px solid #bbb;
                  padding-left: 0.6em; }
.mt-edition { font-size: 0.9em; color: #555; }
"""


def index_page(edition: str, notebooks: list[tuple[str, str]], intro: str,
               repository: str | None) -> str:
    """The landing page: what the course is, where to run it, and the table of contents."""
    lines = ["# MINT, a course in notebooks", "", intro, ""]
    if edition == "full":
        lines += ["Each notebook is shown as last executed in quick mode. Every exercise's "
                  "solution is folded behind a **Show solution** button under the exercise.", ""]
    else:
        lines += ["Each notebook is shown as last executed in quick mode, with the exercises "
                  "left for you to answer (this edition has no solutions).", ""]
    if repository:
        binder = f"https://mybinder.org/v2/gh/{repository}/HEAD"
        if edition == "full":
            binder += "?urlpath=lab/tree/notebooks"
        lines += [f"Run the notebooks in your browser on [Binder]({binder}), or clone the "
                  f"[repository](https://github.com/{repository}) and run `make lab`.", ""]
    else:
        lines += ["Run the notebooks yourself: clone the repository and run `make lab` "
                  "(JupyterLab on `notebooks/`).", ""]
    lines += ["```{toctree}", ":caption: Notebooks", ":maxdepth: 1", ""]
    lines += [f"{title} <notebooks/{stem}>" for stem, title in notebooks]
    lines += ["```", "", "```{toctree}", ":caption: Documents", ":maxdepth: 1", "",
              "The toolkit (README) <README>"]
    lines += [f"docs/{name}" for name in DOCS[edition]]
    lines += ["```", ""]
    return "\n".join(lines)


def read_sources(source: Path) -> list:
    """Every course notebook of ``source``, read and validated: ``[(path, notebook), ...]``."""
    paths = course_notebooks(source)
    if not paths:
        raise BookError(f"no notebooks in {source / 'notebooks'} (expected NN_name.ipynb)")
    for name in DOCS["full"]:
        if not (source / "docs" / f"{name}.md").is_file():
            raise BookError(f"{source / 'docs' / (name + '.md')} is missing")
    if not (source / "README.md").is_file():
        raise BookError(f"{source / 'README.md'} is missing")
    return [(p, read_notebook(p)) for p in paths]


def stage_sources(source: Path, notebooks: list, src: Path, edition: str,
                  repository: str | None, mathjax: Path) -> None:
    """Write the Sphinx project of one edition into ``src`` (``notebooks`` from read_sources)."""
    import nbformat

    left_out = sorted(set(DOCS["full"]) - set(DOCS[edition]))
    (src / "notebooks").mkdir(parents=True)
    toc = []
    for path, nb in notebooks:
        page = page_notebook(nb, edition)
        for cell in page.cells:
            if cell.cell_type == "markdown":
                cell.source = unlink_docs(cell.source, left_out)
        nbformat.write(page, src / "notebooks" / path.name)
        toc.append((path.stem, title_of(nb, path.stem)))
    (src / "docs").mkdir()
    for name in DOCS[edition]:
        text = (source / "docs" / f"{name}.md").read_text(encoding="utf-8")
        (src / "docs" / f"{name}.md").write_text(unlink_docs(text, left_out), encoding="utf-8")
    readme = (source / "README.md").read_text(encoding="utf-8")
    (src / "README.md").write_text(unlink_docs(readme, left_out), encoding="utf-8")
    (src / "index.md").write_text(
        index_page(edition, toc, readme_intro(readme), repository), encoding="utf-8")

    theme = {"home_page_in_toc": True, "use_download_button": True,
             "use_fullscreen_button": False, "show_toc_level": 2,
             "extra_footer": ("<p class='mt-edition'>Student edition: no solutions.</p>"
                              if edition == "student" else "")}
    if repository:
        theme.update(repository_url=f"https://github.com/{repository}",
                     repository_branch="HEAD", path_to_docs="", use_repository_button=True)
        if edition == "full":  # the student edition's notebooks are not the repository's
            theme["launch_buttons"] = {"binderhub_url": "https://mybinder.org",
                                       "notebook_interface": "jupyterlab"}
    project = "MINT course" + (" (student edition)" if edition == "student" else "")
    (src / "conf.py").write_text(CONF.format(project=project, theme_options=theme),
                                 encoding="utf-8")
    (src / "_static").mkdir()
    (src / "_static" / "course.css").write_text(COURSE_CSS, encoding="utf-8")
    shutil.copytree(mathjax, src / "_static" / "mathjax")


# -------------------------------------------------------------------------------------- build

def build(out: Path, edition: str = "full", source: Path = ROOT, repository: str | None = None,
          mathjax: str | None = None) -> Path:
    """Build one edition of the site into ``out`` (replaced only if checked); return its index.

    ``repository``: a GitHub address for the repository and Binder links; None reads the
    ``origin`` remote of ``source`` (no links without a GitHub remote). Raises
    :class:`BookError` for the user's errors (a refused ``--out``, an invalid notebook).
    """
    if edition not in EDITIONS:
        raise BookError(f"--edition {edition!r} is not one of {', '.join(EDITIONS)}")
    out = Path(out)
    check_out(out)
    if repository is not None:
        repo = github_repository(repository)
        if repo is None:
            raise BookError(f"--repository {repository!r} is not a GitHub address "
                            f"(https://github.com/OWNER/REPO)")
    else:
        repo = github_repository(origin_url(source))
    notebooks = read_sources(Path(source))  # every input checked before any work
    for module, package in (("sphinx", "sphinx"), ("myst_nb", "myst-nb"),
                            ("sphinx_book_theme", "sphinx-book-theme")):
        if importlib.util.find_spec(module) is None:
            raise BookError(f"{package} is not installed in {sys.prefix}; install the site "
                            f"tools with: pip install -e '.[site]'")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # everything of this build lives in one fresh folder beside --out: the Sphinx project,
        # the doctrees, MyST-NB's jupyter_execute (which it puts beside the HTML folder) and
        # the site itself, moved to --out at the end
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    except OSError as err:
        raise BookError(f"--out {out}: cannot write in {out.parent} ({err.strerror})") from None
    built = stage / "site"
    mathjax_dir = None
    try:
        mathjax_dir = mathjax_folder(mathjax)
        src = stage / "src"
        stage_sources(Path(source), notebooks, src, edition, repo, mathjax_dir)
        print(f"book: {edition} edition, {len(notebooks)} notebooks -> {out}", file=sys.stderr)
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(stage / "doctrees"),
               str(src), str(built)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        for line in done.stderr.splitlines():  # Sphinx's warnings, if any
            if line.strip():
                print(line.replace(str(src) + os.sep, ""), file=sys.stderr)
        if done.returncode != 0:
            raise BuildFailed(f"sphinx-build failed (exit {done.returncode}); its messages are "
                              f"above")
        (built / ".buildinfo").unlink(missing_ok=True)
        (built / MARKER).write_text(
            f"Written by tools/book.py ({edition} edition). This folder is replaced by the next "
            f"build; do not keep other files here.\n", encoding="utf-8")
        _apply_umask(built)
        replace_out(built, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if mathjax and mathjax_dir is not None and mathjax_dir.exists():
            shutil.rmtree(mathjax_dir, ignore_errors=True)
    return out / "index.html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", default="full", help="full (default) or student")
    parser.add_argument("--out", help="output folder (default build/site or build/site-student)")
    parser.add_argument("--repository", help="GitHub address for the repository and Binder "
                        "links (default: the origin remote, when it is on GitHub)")
    parser.add_argument("--mathjax", help="tarball from `npm pack mathjax@3`, or its unpacked "
                        "folder (default: the per-user cache, filled once by npm)")
    parser.add_argument("--source", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out or ROOT / DEFAULT_OUT.get(args.edition, "build/site"))
    start = time.perf_counter()
    try:
        index = build(out, args.edition, Path(args.source), args.repository, args.mathjax)
    except BookError as err:
        print(f"book.py: {err}", file=sys.stderr)
        return 2
    except BuildFailed as err:
        print(f"book.py: {err}", file=sys.stderr)
        return 1
    print(f"wrote the {args.edition} edition to {out} in {time.perf_counter() - start:.1f} s "
          f"(open {index})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
