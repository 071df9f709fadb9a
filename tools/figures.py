"""Write every course figure as a PNG file a teacher can project or put on a slide.

    python tools/figures.py [--out build/figures] [--dpi 200] [NAME ...]   # make figures

Reads the saved outputs of the course notebooks (nothing is executed) and writes each
``image/png`` output as ``OUT/<notebook>/<cell>-<n>.png``: ``<cell>`` is the cell's index in the
notebook (as JupyterLab counts from 0, two digits), ``<n>`` counts that cell's images from 1.
The pixels are the notebook's own, unchanged (nothing is resampled); the PNG's resolution tag
is set to ``--dpi`` (200 by default), so a slide or document places each figure at its pixel
width / dpi inches. The figures are rendered at the course style's resolution
(``mint_teach.plots.COURSE_STYLE``); the tool prints every figure's pixel size.

``OUT`` holds a marker file listing what the tool wrote. A folder that is not empty and has no
marker is refused (the tool never writes into, or removes from, a folder it did not make); a
rerun replaces only the files its marker lists. Every file is written whole (a temporary file,
then a rename) with the user's umask. Errors are one line and exit status 2.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MARKER = ".mint_teach-figures"


class FiguresError(Exception):
    """A user error: one line for the command line."""


def course_notebooks(names=()) -> list[Path]:
    """The numbered notebooks, or those whose file name starts with one of ``names``."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    chosen = [p for p in paths if not names or any(p.name.startswith(n) for n in names)]
    if not chosen:
        raise FiguresError(f"no notebook matches {list(names)}; have {[p.name[:2] for p in paths]}")
    return chosen


def figures_of(path: Path) -> list[tuple[str, bytes]]:
    """``(file name, PNG bytes)`` of every image/png output of the notebook at ``path``."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FiguresError(f"cannot read notebook {path}: {exc}") from None
    found = []
    for index, cell in enumerate(cells):
        n = 0
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png is None:
                continue
            n += 1
            text = "".join(png) if isinstance(png, list) else png
            try:
                blob = base64.b64decode(text, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise FiguresError(f"{path.name} cell {index}: image {n} is not base64 ({exc})"
                                   ) from None
            found.append((f"{index:02d}-{n}.png", blob))
    return found


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` through a unique temporary file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_dpi(blob: bytes, dpi: int, where: str) -> tuple[bytes, tuple[int, int]]:
    """The same pixels as a PNG tagged ``dpi``; also the pixel size."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise FiguresError(f"{where}: the saved image is not a readable PNG ({exc})") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi), optimize=True)
    return buffer.getvalue(), image.size


def _previous(out: Path) -> list[Path]:
    """The files an earlier run wrote into ``out`` (from its marker); refuse a foreign folder."""
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise FiguresError(f"--out {out} is a file, not a folder")
    if not out.exists() or (not marker.exists() and not any(out.iterdir())):
        return []
    if not marker.is_file():
        raise FiguresError(f"--out {out} holds files this tool did not write (no {MARKER} "
                           "marker); choose another folder or empty it")
    listed = [line.strip() for line in marker.read_text(encoding="utf-8").splitlines()[1:]]
    files = [out / rel for rel in listed if rel]
    if any(".." in Path(rel).parts or Path(rel).is_absolute() for rel in listed):
        raise FiguresError(f"{marker} lists a path outside {out}; remove the folder by hand")
    return files


def _mark(out: Path, files) -> None:
    """Write the marker: the tool's name, then one written file per line."""
    lines = "".join(f"{rel.as_posix()}\n" for rel in sorted(files))
    _write(out / MARKER, f"mint_teach figures (tools/figures.py); files written:\n{lines}".encode())


def export(out: Path, paths: list[Path], dpi: int = 200) -> list[tuple[Path, tuple[int, int]]]:
    """Write the figures of ``paths`` into ``out``; return each file with its pixel size."""
    if not 50 <= dpi <= 1200:
        raise FiguresError(f"--dpi must lie in 50..1200; got {dpi}")
    previous = _previous(out)
    figures = []  # read and convert everything before touching the folder
    for path in paths:
        for name, blob in figures_of(path):
            png, size = with_dpi(blob, dpi, f"{path.name} {name}")
            figures.append((Path(path.stem) / name, png, size))
    new = {rel for rel, _, _ in figures}
    out.mkdir(parents=True, exist_ok=True)
    # Until the run ends, the marker lists old and new files: an interrupted run leaves
    # nothing in the folder that a rerun would not recognise as its own.
    _mark(out, new | {old.relative_to(out) for old in previous})
    for old in previous:  # what an earlier run wrote and this one does not
        if old.relative_to(out) not in new:
            old.unlink(missing_ok=True)
            if old.parent != out and old.parent.is_dir() and not any(old.parent.iterdir()):
                old.parent.rmdir()
    written = []
    for rel, png, size in figures:
        _write(out / rel, png)
        written.append((out / rel, size))
    _mark(out, new)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 04 (default: all)")
    parser.add_argument("--out", default=str(ROOT / "build" / "figures"))
    parser.add_argument("--dpi", type=int, default=200, help="resolution tag of the PNG files")
    args = parser.parse_args(argv)
    try:
        written = export(Path(args.out), course_notebooks(args.names), args.dpi)
    except (FiguresError, OSError) as exc:
        print(f"figures: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    for path, (w, h) in written:
        print(f"{path.relative_to(args.out) if path.is_relative_to(args.out) else path}: "
              f"{w} x {h} px, {w / args.dpi:.1f} x {h / args.dpi:.1f} in at {args.dpi} dpi")
    print(f"wrote {len(written)} figures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
