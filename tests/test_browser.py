"""A student's view: JupyterLab in headless Chromium runs a notebook and moves the slider.

Starts JupyterLab from this Python (so its default python3 kernel is this environment's),
opens a small generated notebook that shows ``threshold_explorer`` on digits, runs all cells
from the Run menu, reads "params pruned" off the rendered widget, presses PageUp on the
slider's handle and checks that the shown value goes up. A second test opens the course
website (tools/book.py) from disk with the network cut off and checks that its math is
typeset, a solution opens, figures load and search answers. Both need Debian's Chromium at
/usr/bin/chromium (``.ci/install_browser.sh``) and the playwright package; never downloads a
browser.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MINT_TEACH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-proxy-server"]
SERVER_START_S = 120
WIDGET_S = 240  # kernel start, importing torch, training the small digits model
CHANGE_S = 90

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK_CELLS = [
    """\
import sys
import torch
torch.set_num_threads(1)
import mint_teach as mt
print("kernel prefix:", sys.prefix)""",
    """\
train_set = mt.data.load_dataset("digits", train=True)
test_set = mt.data.load_dataset("digits", train=False)
model = mt.models.build_model("mlp", in_features=64, num_classes=10)
mt.train.fit(model, train_set, epochs=10, seed=0, device="cpu", progress=False)
pairs = mt.models.layer_pairs(model)
rows = mt.data.class_balanced_subset(train_set, 60, seed=0)
groups = mt.pipeline.pair_groups(model, pairs, 10)
deps = mt.pipeline.compute_dependencies(model, rows, pairs, groups, device="cpu",
                                        progress=False)""",
    """\
mt.widgets.threshold_explorer(model, deps, test_set, value=0.2, device="cpu")""",
]

# JupyterLab user settings for the test: no news or update checks (there is no network), and
# every cell rendered (no windowing), so the widget exists in the page once its cell has run.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _why_no_browser() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found; install Debian's chromium (.ci/install_browser.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"playwright not importable ({err}); pip install -e '.[dev]'"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, path)


def _start_lab(root: Path, port: int, token: str, log) -> subprocess.Popen:
    settings = root.parent / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(  # keep the user's Jupyter folders out of it; kernels come from this environment
        JUPYTER_CONFIG_DIR=str(root.parent / "config"),
        JUPYTER_DATA_DIR=str(root.parent / "data"),
        JUPYTER_RUNTIME_DIR=str(root.parent / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root.parent / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_server(proc: subprocess.Popen, port: int, token: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer on port {port} in {SERVER_START_S} s")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _pruned(text: str) -> float:
    match = re.search(r"params pruned:\s*([0-9]+(?:\.[0-9]+)?)%", text)
    assert match is not None, f"no 'params pruned' in {text!r}"
    return float(match.group(1))


def test_threshold_slider_in_jupyterlab(tmp_path):
    why = _why_no_browser()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    root = tmp_path / "lab"
    root.mkdir()
    _write_notebook(root / "explore.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    log_path = tmp_path / "jupyter.log"
    shot = tmp_path / "failure.png"
    with open(log_path, "w") as log:
        proc = _start_lab(root, port, token, log)
        try:
            _wait_for_server(proc, port, token)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                try:
                    _drive(page, f"http://127.0.0.1:{port}/lab/tree/explore.ipynb?token={token}")
                except Exception as err:
                    page.screenshot(path=str(shot), full_page=True)
                    log.flush()
                    tail = log_path.read_text()[-3000:]
                    raise AssertionError(f"{err}\nscreenshot: {shot}\njupyter log: {log_path}\n"
                                         f"{tail}") from err
                finally:
                    browser.close()
        finally:
            _stop(proc)


def _run_all_cells(page) -> None:
    """Run > Run All Cells, once the kernel is connected and idle.

    Clicked before the kernel is connected, JupyterLab answers with a "Select Kernel" dialog
    instead of running; accept it and click again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    idle = page.locator("#jp-main-statusbar", has_text=re.compile(r"\|\s*Idle"))
    dialog = page.locator(".jp-Dialog")
    for _ in range(3):
        idle.wait_for(timeout=WIDGET_S * 1000)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            dialog.wait_for(timeout=3000)
        except PlaywrightTimeout:
            return
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        dialog.wait_for(state="detached")
    raise AssertionError("JupyterLab kept asking for a kernel instead of running the cells")


def _drive(page, url: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    _run_all_cells(page)

    prefix = page.locator(".jp-OutputArea-output", has_text="kernel prefix:")
    prefix.wait_for(timeout=WIDGET_S * 1000)
    shown_prefix = prefix.inner_text().split("kernel prefix:", 1)[1].strip()
    assert Path(shown_prefix).resolve() == Path(sys.prefix).resolve(), (
        f"the notebook's python3 kernel runs in {shown_prefix}, not in this environment "
        f"({sys.prefix}); install it with python -m ipykernel install --sys-prefix")

    label = page.locator(".widget-html-content", has_text="params pruned:")
    label.wait_for(timeout=WIDGET_S * 1000)
    before = _pruned(label.inner_text())
    readout = page.locator(".widget-slider .widget-readout").first
    q_before = float(readout.inner_text())

    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    for _ in range(6):  # PageUp moves noUiSlider by five steps: q 0.20 -> 0.50
        handle.press("PageUp")
    page.wait_for_function(  # the slider in the page moved...
        """([q]) => parseFloat(document.querySelector('.widget-slider .widget-readout')
                                   .textContent) > q""", arg=[q_before])
    q_after = float(readout.inner_text())
    # ...and the kernel has answered for the slider's last position
    page.locator(".widget-html-content", has_text=f"q = {q_after:.2f}:").wait_for(
        timeout=CHANGE_S * 1000)
    after = _pruned(label.inner_text())
    assert after > before, f"params pruned went from {before}% to {after}% as q rose " \
                           f"from {q_before} to {q_after}"


# ----------------------------------------------------------------------------- the course website

def _site_tools():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "book.py"
    spec = importlib.util.spec_from_file_location("course_book", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _offline(page) -> list:
    """Abort every request that leaves the machine (anything but file:, data: and localhost);
    return the list the aborted addresses are appended to."""
    aborted = []

    def route(request_route):
        url = request_route.request.url
        if re.match(r"^(file:|data:|blob:|https?://(127\.0\.0\.1|localhost)[:/])", url):
            request_route.continue_()
        else:
            aborted.append(url)
            request_route.abort()

    page.route("**/*", route)
    return aborted


def test_course_website_works_offline(tmp_path):
    """`make book`'s site opened from disk with the network off: the math is typeset by the
    site's own MathJax, a solution opens from its button, figures load and search answers."""
    why = _why_no_browser()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    book = _site_tools()
    site = tmp_path / "site"
    try:
        book.build(site, "full")
    except book.BookError as err:
        if "MathJax" in str(err) and not os.environ.get("CI"):
            pytest.skip(str(err))
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        aborted = _offline(page)
        try:
            page.set_default_timeout(60_000)
            page.goto((site / "index.html").as_uri(), wait_until="load")
            page.locator("a", has_text="03 · Geometric mutual information").first.click()
            page.wait_for_load_state("load")
            assert page.url.endswith("notebooks/03_mutual_information.html"), page.url
            # MathJax ran: its containers replace the TeX, and no TeX delimiter is left
            page.locator("mjx-container").first.wait_for(timeout=60_000)
            assert page.locator("mjx-container").count() >= 20
            page.wait_for_function("""() => [...document.querySelectorAll('.math')]
                                         .every(e => e.querySelector('mjx-container'))""")
            assert "\\(" not in page.inner_text("main"), "untypeset TeX left on the page"
            # the first solution is folded, and opens from its button
            toggle = page.locator("details:has(summary:has-text('Show solution'))").first
            answer = toggle.locator(".cell_output", has_text="correct").first
            assert not answer.is_visible()
            toggle.locator("summary").click()
            answer.wait_for(state="visible")
            # a notebook's figures are decoded images (not broken links)
            page.goto((site / "notebooks" / "04_mint_mnist.html").as_uri(), wait_until="load")
            sizes = page.eval_on_selector_all(
                "main img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
            assert len(sizes) >= 4 and all(done and w > 100 for done, w in sizes), sizes
            # search answers from the site's own index
            page.goto((site / "search.html").as_uri() + "?q=Henze", wait_until="load")
            hits = page.locator("#search-results ul.search li")
            hits.first.wait_for(timeout=60_000)
            assert hits.count() >= 2
            assert not aborted, f"the site tried to reach the network: {aborted[:5]}"
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
