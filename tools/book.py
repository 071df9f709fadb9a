"""Build the course as a static website from the committed notebooks and docs, offline.

    python tools/book.py [--out build/site]

Every page is plain HTML that opens from the file system or any static host: the notebooks
with their saved outputs (nbconvert's HTML exporter; nothing is executed), the method and the
teaching guide (Markdown rendered by nbconvert's Markdown filter), and an index page. A bar at
the top of each page links them all.

Why not Jupyter Book 2: its ``myst build --html`` renders through the book-theme web
application, which it downloads from the internet on first use; that theme is not published
on PyPI or npm (only its component libraries are), so the build cannot run offline or in CI
without network. nbconvert is already installed with JupyterLab and needs nothing else.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [("method", "The method"), ("teaching", "Teaching guide")]
STYLE = """<style>
.mt-nav {font: 14px/1.5 system-ui, sans-serif; background: #1f3a5f; padding: 0.5em 1em;
         position: sticky; top: 0; z-index: 1000;}
.mt-nav a {color: #fff; margin-right: 1.1em; text-decoration: none;}
.mt-nav a.here {text-decoration: underline;}
.mt-doc {max-width: 52em; margin: 1.5em auto; padding: 0 1em;
         font: 16px/1.6 system-ui, sans-serif;}
.mt-doc pre {background: #f5f5f5; padding: 0.6em; overflow-x: auto;}
.mt-doc table {border-collapse: collapse;} .mt-doc td, .mt-doc th {border: 1px solid #ccc;
         padding: 0.2em 0.6em;}
</style>"""


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def title_of(path: Path) -> str:
    """The first Markdown heading of a notebook or document."""
    import nbformat

    if path.suffix == ".ipynb":
        text = next((c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "markdown"), path.stem)
    else:
        text = path.read_text(encoding="utf-8")
    match = re.search(r"^#\s+(.+)$", text, re.M)
    return match.group(1).strip() if match else path.stem


def nav(pages: list[tuple[str, str]], here: str) -> str:
    links = "".join(f'<a href="{href}"{" class=here" if href == here else ""}>'
                    f"{html.escape(label)}</a>" for href, label in pages)
    return f'<nav class="mt-nav">{links}</nav>'


def relink(text: str) -> str:
    """Links between repository files become links between pages of the site."""
    for name, _ in DOCS:
        text = re.sub(rf'href="(\.\./)?(docs/)?{name}\.md', f'href="{name}.html', text)
    return re.sub(r'href="(\.\./notebooks/|notebooks/)?(\d\d_[\w-]+)\.ipynb', r'href="\2.html',
                  text)


def with_nav(page: str, bar: str) -> str:
    page = page.replace("</head>", STYLE + "</head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + bar, page, count=1)


def markdown_page(title: str, body_md: str, bar: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body = markdown2html_mistune(body_md)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{STYLE}</head><body>{bar}<main class='mt-doc'>{body}</main></body></html>")


def index_markdown() -> str:
    lines = ["# MINT, a course in notebooks", "",
             "Mutual Information-based Neuron Trimming (Ganesh, Corso and Yasaei Sekeh, ICPR "
             "2020), taught step by step with the `mint_teach` toolkit. The pages show each "
             "notebook as last executed in quick mode; run them in JupyterLab or on Binder to "
             "change anything.", "", "## Notebooks", ""]
    lines += [f"- [{html.escape(title_of(p))}]({p.stem}.html)" for p in notebooks()]
    lines += ["", "## Documents", ""]
    lines += [f"- [{label}]({name}.html)" for name, label in DOCS]
    return "\n".join(lines) + "\n"


def build(out: Path) -> list[Path]:
    """Write the site into ``out`` (replaced as a whole); return the pages written."""
    import nbformat
    from nbconvert import HTMLExporter

    pages = [("index.html", "Course")] + [(f"{p.stem}.html", p.stem[:2]) for p in notebooks()]
    pages += [(f"{name}.html", label) for name, label in DOCS]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)  # a static host serves it as it is
    try:
        exporter = HTMLExporter(template_name="lab")
        written = []
        for path in notebooks():
            body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
            target = tmp / f"{path.stem}.html"
            target.write_text(relink(with_nav(body, nav(pages, target.name))), encoding="utf-8")
            written.append(target)
        for name, label in DOCS:
            text = (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8")
            target = tmp / f"{name}.html"
            target.write_text(relink(markdown_page(label, text, nav(pages, target.name))),
                              encoding="utf-8")
            written.append(target)
        index = tmp / "index.html"
        index.write_text(markdown_page("MINT course", index_markdown(), nav(pages, "index.html")),
                         encoding="utf-8")
        written.append(index)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / p.name for p in written]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "site"))
    args = parser.parse_args(argv)
    pages = build(Path(args.out))
    print(f"wrote {len(pages)} pages to {args.out} (open index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
