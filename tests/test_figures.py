"""tools/figures.py (`make figures`): every saved figure as a PNG, same pixels, tagged with the
resolution they hold (200 dpi for a "retina" output, 100 for a plain one, which is reported)."""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "figures.py"


def _tool():
    return load_tool("figures")


def _saved_pngs(path: Path) -> dict[str, tuple[bytes, float | None]]:
    """Each saved figure's PNG bytes and the displayed width its output's metadata records."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = {}
    for index, cell in enumerate(nb["cells"]):
        outputs = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for n, o in enumerate(outputs, 1):
            shown = o.get("metadata", {}).get("image/png", {}).get("width")
            found[f"{index:02d}-{n}.png"] = (base64.b64decode("".join(o["data"]["image/png"])),
                                             shown)
    return found


def _cli(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_every_figure_of_a_notebook_is_written_with_its_own_pixels(tmp_path):
    out = tmp_path / "figures"
    result = _cli("02", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = _saved_pngs(ROOT / "notebooks" / "02_graphs.ipynb")
    assert saved  # notebook 02 has figures
    written = {p.name: p for p in (out / "02_graphs").glob("*.png")}
    assert set(written) == set(saved)
    for name, (blob, shown) in saved.items():
        before, after = Image.open(io.BytesIO(blob)), Image.open(written[name])
        assert after.size == before.size
        assert np.array_equal(np.asarray(after.convert("RGBA")), np.asarray(before.convert("RGBA")))
        dpi = 200 if shown else 100  # a "retina" output records its displayed (half) width
        assert round(after.info["dpi"][0]) == dpi
        assert f"{name}: {after.size[0]} x {after.size[1]} px" in result.stdout
        assert f"in at {dpi} dpi" in result.stdout
    assert not (out / "00_quickstart").exists()  # only the notebooks asked for


def _figure_outputs():
    """One matplotlib figure as IPython's inline backend saves it: plain "png" (no metadata)
    and "retina" (twice the pixels; the displayed size in the metadata)."""
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure, retina_figure

    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    ax.plot([0, 1, 2], [1, 0, 2])
    ax.set_title("a figure")
    plain = print_figure(fig, "png")
    retina, shown = retina_figure(fig)
    plt.close(fig)

    def output(blob, metadata):
        return {"output_type": "display_data", "metadata": metadata,
                "data": {"image/png": base64.b64encode(blob).decode(), "text/plain": ["<Figure>"]}}

    return output(plain, {}), output(retina, {"image/png": shown})


def _course(folder: Path, cells) -> None:
    folder.mkdir()
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "execution_count": 1, "id": f"c{i}", "metadata": {},
                     "source": "plt.plot()", "outputs": outputs}
                    for i, outputs in enumerate(cells)]}
    (folder / "09_demo.ipynb").write_text(json.dumps(nb))


def test_a_retina_figure_is_200_dpi_and_a_plain_one_100_and_reported(tmp_path, monkeypatch,
                                                                      capsys):
    tool = _tool()
    plain, retina = _figure_outputs()
    _course(tmp_path / "notebooks", [[plain], [retina]])
    monkeypatch.setattr(tool, "NOTEBOOKS", tmp_path / "notebooks")
    out = tmp_path / "out"
    assert tool.main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    low, high = Image.open(out / "09_demo" / "00-1.png"), Image.open(out / "09_demo" / "01-1.png")
    assert [round(d) for d in low.info["dpi"]] == [100, 100]
    assert [round(d) for d in high.info["dpi"]] == [200, 200]
    assert abs(high.size[0] - 2 * low.size[0]) <= 2  # twice the pixels ...
    assert abs(high.size[0] / 200 - low.size[0] / 100) < 0.02  # ... for the same inches
    lines = dict(line.split(": ", 1) for line in printed.splitlines() if line.startswith("09_"))
    assert lines["09_demo/00-1.png"].endswith("in at 100 dpi (below the 200 dpi asked)")
    assert lines["09_demo/01-1.png"].endswith("in at 200 dpi")
    summary = printed.strip().splitlines()[-1]
    assert summary.startswith("below 200 dpi, 1 of 2 figures")
    assert "09_demo/00-1.png (100 dpi)" in summary and "01-1" not in summary
    # asked for 100 dpi, nothing falls short
    assert tool.main(["--out", str(out), "--dpi", "100"]) == 0
    assert "below" not in capsys.readouterr().out


def test_a_nonsense_displayed_width_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    tool = _tool()
    _, retina = _figure_outputs()
    retina["metadata"]["image/png"]["width"] = 0
    _course(tmp_path / "notebooks", [[retina]])
    monkeypatch.setattr(tool, "NOTEBOOKS", tmp_path / "notebooks")
    assert tool.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "displayed width 0" in err
    assert not (tmp_path / "out").exists()


def test_the_drawing_resolution_is_the_course_style():
    import mint_teach as mt

    assert _tool().FIGURE_DPI == mt.plots.COURSE_STYLE["figure.dpi"]


def _setup_format(path: Path) -> str | None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"][:3]:
        for line in "".join(cell["source"]).splitlines():
            if line.startswith("%config InlineBackend.figure_format"):
                return line.split("=", 1)[1].strip().strip("'\"")
    return None


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_the_saved_figures_have_the_resolution_the_set_up_cell_asks_for(path):
    """A notebook whose set-up cell asks for "retina" saved every figure at 200 dpi (fails for
    outputs older than the set-up cell: re-execute the notebook with `make notebooks`)."""
    tool = _tool()
    if _setup_format(path) != "retina":
        pytest.skip(f"{path.name} saves its figures as plain png (100 dpi)")
    dpis = {name: tool.with_dpi(blob, shown, name)[2]
            for name, blob, shown in tool.figures_of(path)}
    assert dpis and set(dpis.values()) == {200}, dpis


def test_a_folder_the_tool_did_not_write_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _cli("02", "--out", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "did not write" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_rerun_replaces_only_what_the_tool_wrote(tmp_path):
    out = tmp_path / "figures"
    assert _cli("02", "03", "--out", str(out)).returncode == 0
    (out / "my_slide_notes.txt").write_text("a teacher's own file")
    assert _cli("02", "--out", str(out)).returncode == 0
    assert not (out / "03_mutual_information").exists()  # written before, not asked for now
    assert (out / "my_slide_notes.txt").read_text() == "a teacher's own file"
    listed = (out / ".mint_teach-figures").read_text().splitlines()[1:]
    assert listed and all(line.startswith("02_graphs/") for line in listed)


def test_a_damaged_notebook_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    tool = _tool()
    broken = tmp_path / "notebooks"
    broken.mkdir()
    (broken / "09_broken.ipynb").write_text("{ not json")
    monkeypatch.setattr(tool, "NOTEBOOKS", broken)
    assert tool.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "09_broken.ipynb" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_an_unknown_notebook_name_and_a_bad_dpi_are_user_errors(tmp_path):
    for args, words in ((["99"], "no notebook matches"), (["02", "--dpi", "5"], "--dpi")):
        result = _cli(*args, "--out", str(tmp_path / "x"))
        assert result.returncode == 2 and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["figures"])
def test_make_has_the_target(target):
    result = subprocess.run(["make", "-n", target, "PY=python", "ENV_DEP="], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "tools/figures.py" in result.stdout
