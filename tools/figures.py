"""Write every course figure as a PNG file a teacher can project or put on a slide.

    python tools/figures.py [--out build/figures] [--dpi 200] [NAME ...]   # make figures

Reads the saved outputs of the course notebooks (nothing is executed) and writes each
``image/png`` output as ``OUT/<notebook>/<cell>-<n>.png``: ``<cell>`` is the cell's index in the
notebook (as JupyterLab counts from 0, two digits), ``<n>`` counts that cell's images from 1.
The pixels are the notebook's own, unchanged (nothing is resampled). Each PNG is tagged with
the resolution its pixels really hold: the course's figures are drawn at 100 dpi
(``mint_teach.plots.COURSE_STYLE``), and a notebook whose set-up cell says
``%config InlineBackend.figure_format = "retina"`` saves twice the pixels, recording the
displayed size in the output's metadata; so a figure's resolution is 100 dpi x pixel width /
displayed width (200 for retina, 100 for plain "png"), and a slide or document places it at its
drawn size. ``--dpi`` (200 by default) is the resolution asked for: the tool prints each
figure's real one and names those below it; it never tags pixels with a resolution they lack.

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
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the tests)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _course_tools import NOTEBOOKS, ROOT, UsageError, course_notebooks, write_file  # noqa: E402

MARKER = ".mint_teach-figures"
FIGURE_DPI = 100  # mint_teach.plots.COURSE_STYLE["figure.dpi"], the size the figures are drawn at


class FiguresError(UsageError):
    """A user error: one line for the command line."""


def figures_of(path: Path) -> list[tuple[str, bytes, float | None]]:
    """``(file name, PNG bytes, displayed width)`` of every image/png output of the notebook at
    ``path``. The displayed width (in CSS pixels) is the one the output's metadata records
    (``metadata["image/png"]["width"]``, set by a "retina" figure), None when it records none."""
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
            shown = (output.get("metadata") or {}).get("image/png", {}).get("width")
            if shown is not None and (isinstance(shown, bool) or not isinstance(shown, (int, float))
                                      or not shown > 0):
                raise FiguresError(f"{path.name} cell {index}: image {n} has displayed width "
                                   f"{shown!r} in its metadata; expected a positive number")
            found.append((f"{index:02d}-{n}.png", blob, shown))
    return found


def true_dpi(pixel_width: int, shown_width: float | None) -> int:
    """The resolution a saved figure's pixels hold: the drawing resolution (``FIGURE_DPI``)
    times pixels per displayed pixel (2 for a "retina" figure, 1 when no width is recorded)."""
    return round(FIGURE_DPI * pixel_width / (shown_width or pixel_width))


def with_dpi(blob: bytes, shown_width: float | None, where: str
             ) -> tuple[bytes, tuple[int, int], int]:
    """The same pixels as a PNG tagged with their true resolution (:func:`true_dpi`, from the
    displayed width ``shown_width``); also the pixel size and that resolution."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise FiguresError(f"{where}: the saved image is not a readable PNG ({exc})") from None
    dpi = true_dpi(image.size[0], shown_width)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi), optimize=True)
    return buffer.getvalue(), image.size, dpi


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
    write_file(out / MARKER, f"mint_teach figures (tools/figures.py); files written:\n{lines}")


def export(out: Path, paths: list[Path], dpi: int = 200
           ) -> list[tuple[Path, tuple[int, int], int]]:
    """Write the figures of ``paths`` into ``out``, each tagged with its true resolution
    (:func:`true_dpi`); return each file with its pixel size and that resolution. ``dpi`` is
    the resolution asked for (checked here; :func:`main` names the figures below it)."""
    if not 50 <= dpi <= 1200:
        raise FiguresError(f"--dpi must lie in 50..1200; got {dpi}")
    previous = _previous(out)
    figures = []  # read and convert everything before touching the folder
    for path in paths:
        for name, blob, shown in figures_of(path):
            png, size, real = with_dpi(blob, shown, f"{path.name} {name}")
            figures.append((Path(path.stem) / name, png, size, real))
    new = {rel for rel, *_ in figures}
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
    for rel, png, size, real in figures:
        write_file(out / rel, png)
        written.append((out / rel, size, real))
    _mark(out, new)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 04 (default: all)")
    parser.add_argument("--out", default=str(ROOT / "build" / "figures"))
    parser.add_argument("--dpi", type=int, default=200,
                        help="the resolution asked for; figures below it are named")
    args = parser.parse_args(argv)
    try:
        written = export(Path(args.out), course_notebooks(args.names, NOTEBOOKS), args.dpi)
    except (UsageError, OSError) as exc:
        print(f"figures: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    low = []
    for path, (w, h), real in written:
        rel = path.relative_to(args.out) if path.is_relative_to(args.out) else path
        print(f"{rel}: {w} x {h} px, {w / real:.1f} x {h / real:.1f} in at {real} dpi"
              + (f" (below the {args.dpi} dpi asked)" if real < args.dpi else ""))
        if real < args.dpi:
            low.append(f"{rel} ({real} dpi)")
    print(f"wrote {len(written)} figures to {args.out}")
    if low:
        print(f"below {args.dpi} dpi, {len(low)} of {len(written)} figures (tagged with what "
              f"their pixels hold; re-execute their notebook with InlineBackend.figure_format "
              f'"retina" for twice the pixels): {", ".join(low)}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
