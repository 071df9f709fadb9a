"""tools/figures.py (`make figures`): every saved figure as a PNG tagged 200 dpi, same pixels."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "figures.py"


def _tool():
    spec = importlib.util.spec_from_file_location("course_figures", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _saved_pngs(path: Path) -> dict[str, bytes]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = {}
    for index, cell in enumerate(nb["cells"]):
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", [])
                if "image/png" in o.get("data", {})]
        for n, png in enumerate(pngs, 1):
            found[f"{index:02d}-{n}.png"] = base64.b64decode("".join(png))
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
    for name, blob in saved.items():
        before, after = Image.open(io.BytesIO(blob)), Image.open(written[name])
        assert after.size == before.size
        assert np.array_equal(np.asarray(after.convert("RGBA")), np.asarray(before.convert("RGBA")))
        assert round(after.info["dpi"][0]) == 200
        assert f"{name}: {after.size[0]} x {after.size[1]} px" in result.stdout
    assert not (out / "00_quickstart").exists()  # only the notebooks asked for


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
