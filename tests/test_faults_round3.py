"""Fault suite, third round (issue 19): unsafe writes, a rank that hangs, dead units that look
dependent, the estimator's bias, stale caches, and unclear errors on the newer surfaces.

Every bad input must give a clear error naming the argument (one line and exit status 2 on a
command line), every degenerate input a sane, documented value.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mint_teach import config, course, distributed, mi, pipeline, plots, widgets
from mint_teach._validation import SEED_MAX, check_seed, derive_seed
from mint_teach.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def _script(name: str):
    """Import a script of benchmarks/ as a module (its folder on the path, as when run)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def _run_script(args, tmp_path, env=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MINT_TEACH_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=tmp_path)


def _one_line_error(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --- 1. the atomic writer: a unique name, the user's umask -----------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_gives_the_mode_of_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        target = tmp_path / "out" / "result.json"
        config.write_atomic(target, lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_bytes() == b"{}"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temporary left


def test_write_atomic_does_not_follow_a_planted_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    folder = tmp_path / "out"
    folder.mkdir()
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # the old, predictable names
        (folder / f".result.json.{pid}.tmp").symlink_to(outside)
    config.write_atomic(folder / "result.json", lambda f: f.write(b"new"))
    assert outside.read_text() == "keep me"
    assert (folder / "result.json").read_text() == "new"


# Runs under an old SciPy without torch, so without the package: it has its own unique-name,
# umask-respecting write (mkstemp, then os.replace), checked below.
STANDALONE = {"scipy_tree_reference.py"}


def test_benchmarks_write_nothing_but_through_the_atomic_writer():
    writes = re.compile(r"\.write_text\(|\.write_bytes\(|os\.replace\(|open\([^)]*['\"][wax]")
    for path in BENCH.glob("*.py"):
        text = path.read_text()
        if path.name in STANDALONE:
            assert "mkstemp(" in text and "os.replace(tmp" in text and "_umask()" in text
            continue
        found = writes.search(text)
        assert found is None, f"{path.name} writes with {found.group(0)}"


# --- 2. torchrun's variables checked before joining; the wait bounded ------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_outside_the_world_is_refused_at_once(tmp_path):
    env = {"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    proc = _run_script(["-m", "mint_teach", "run", "--dataset", "digits", "--no-progress"],
                       tmp_path, env=env, timeout=90)  # used to hang in init_process_group
    line = _one_line_error(proc)
    assert "RANK" in line and "WORLD_SIZE=2" in line and "5" in line


@pytest.mark.parametrize("env, named", [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "2"}, "RANK"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "x"}, "LOCAL_RANK"),
    ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR"),
    ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h"}, "MASTER_PORT"),
    ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "70000"},
     "MASTER_PORT"),
])
def test_torchrun_variables_are_checked_by_name(monkeypatch, env, named):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=named):
        distributed.check_environment()
    with pytest.raises(ValueError, match=named):
        distributed.setup()
    assert not torch.distributed.is_initialized()


def test_one_process_needs_no_rendezvous(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.check_environment() == (0, 1)
    assert distributed.setup() is False


def test_a_rendezvous_that_cannot_complete_times_out_saying_what_is_missing(
        monkeypatch, capsys):
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), distributed.TIMEOUT_ENV: "2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TimeoutError, match="could not join") as caught:
        distributed.setup()  # rank 1 never comes
    assert "WORLD_SIZE=2" in str(caught.value) and distributed.TIMEOUT_ENV in str(caught.value)
    assert not torch.distributed.is_initialized()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=distributed.TIMEOUT_ENV):
        distributed.setup()


def test_the_runs_own_flags_are_checked_before_any_process_group(monkeypatch, capsys):
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)

    def joined(*args, **kwargs):
        raise AssertionError("a process group was started before the flags were checked")

    monkeypatch.setattr(torch.distributed, "init_process_group", joined)
    assert cli_main(["run", "--dataset", "digits", "--groups", "0", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "--groups" in err and len(err.strip().splitlines()) == 1


# --- 3. a constant (dead) group has D = 0 ------------------------------------------------------


def _relu_layer_pair(rows=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(rows, 3, generator=g)
    parent = torch.relu(torch.cat([base, base + 0.3 * torch.randn(rows, 3, generator=g)], 1)
                        @ torch.randn(6, 6, generator=g))
    child = torch.relu(parent @ torch.randn(6, 8, generator=g) + torch.randn(rows, 8,
                                                                                generator=g))
    return parent, child


EXACT = [e for e in mi.ESTIMATORS if not e.startswith("published")]


@pytest.mark.parametrize("estimator", EXACT)
def test_a_dead_child_layer_has_no_dependence(estimator):
    parent, _ = _relu_layer_pair()
    dead = torch.zeros(parent.shape[0], 8)  # all-zero ReLU units
    d = mi.dependency_matrix(parent, dead, parent_groups=3, child_groups=4, seed=0,
                             progress=False, estimator=estimator, device="cpu")
    assert torch.equal(d, torch.zeros(4, 3, dtype=torch.float64))
    x = np.full((parent.shape[0], 2), 3.5)  # any constant, not only 0
    for seed in range(3):
        assert mi.conditional_gmi(x, parent[:, :2], parent[:, 2:], seed=seed,
                                  estimator=estimator, device="cpu") == 0.0


@pytest.mark.parametrize("estimator", [e for e in mi.ESTIMATORS if e.startswith("published")])
def test_published_modes_report_the_published_value_for_dead_units(estimator):
    """Documented: the published statistic does not see that a group is dead (its value is
    positive), and the published modes reproduce it as it is."""
    parent, _ = _relu_layer_pair()
    dead = torch.zeros(parent.shape[0], 8)
    d = mi.dependency_matrix(parent, dead, parent_groups=3, child_groups=4, seed=0,
                             progress=False, estimator=estimator, device="cpu")
    assert bool((d > 0).all())


@pytest.mark.parametrize("estimator", EXACT)
def test_dead_groups_get_zero_and_the_others_their_estimate(estimator):
    parent, child = _relu_layer_pair()
    child[:, 2:4] = 0.0  # child group 1 dead
    parent[:, 4:6] = 1.0  # parent group 2 constant
    kw = dict(parent_groups=3, child_groups=4, seed=3, progress=False, estimator=estimator,
              device="cpu")
    d = mi.dependency_matrix(parent, child, **kw)
    assert torch.equal(d[1], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(d[:, 2], torch.zeros(4, dtype=torch.float64))
    # a live block is estimated as before: pair by pair, conditional_gmi gives the same
    expected = mi.conditional_gmi(child[:, 0:2], parent[:, 0:2], parent[:, 2:], seed=3,
                                  estimator=estimator, device="cpu")
    assert d[0, 0].item() == pytest.approx(expected, abs=1e-12)
    assert bool((d[[0, 2, 3]][:, [0, 1]] != 0).any())


def test_reliability_of_a_dead_layer_is_nan_with_a_reason():
    parent, _ = _relu_layer_pair()
    with pytest.warns(RuntimeWarning, match="constant"):
        rel = mi.reliability(parent, torch.zeros(parent.shape[0], 8), parent_groups=3,
                             child_groups=4, seed=0, progress=False, device="cpu")
    assert all(math.isnan(v) for v in rel.values())


def test_reliability_leaves_dead_child_groups_out():
    parent, child = _relu_layer_pair(rows=300)
    kw = dict(parent_groups=3, seed=1, progress=False, device="cpu")
    with_dead = torch.cat([child[:, :6], torch.zeros(300, 2)], dim=1)  # a fourth, dead group
    live_only = mi.reliability(parent, child[:, :6], child_groups=3, **kw)
    assert mi.reliability(parent, with_dead, child_groups=4, **kw) == live_only


# --- 4. the bias on independent data ----------------------------------------------------------


def test_independent_gaussians_give_about_zero():
    """Issue 19's case: X, Y, Z independent (1, 2, 2 dimensions), 1,500 rows. Reusing B rows
    gave 0.084 / 0.112 / 0.134 for seeds 0-2; each B row lent once gives about 0."""
    values = []
    for s in range(3):
        rng = np.random.default_rng(s)
        x, y, z = rng.normal(size=(1500, 1)), rng.normal(size=(1500, 2)), rng.normal(size=(1500, 2))
        values.append(mi.conditional_gmi(x, y, z, seed=s, device="cpu"))
    assert abs(np.mean(values)) < 0.04 and max(abs(v) for v in values) < 0.07, values


def test_each_row_of_b_lends_its_y_once():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(90, 1)), rng.normal(size=(90, 2)), rng.normal(size=(90, 3))
    bootstrapped, _ = mi.nn_bootstrap(x, y, z, seed=0)
    borrowed = {tuple(row) for row in bootstrapped[:, 1:3].tolist()}
    assert len(borrowed) == 30  # 30 rows of A, 30 distinct y from the 30 rows of B


# --- 5. the synthetic ImageNet tree and the cached baseline -----------------------------------


def test_an_interrupted_synthetic_tree_is_never_reused(tmp_path, monkeypatch):
    script = _script("reproduce_imagenet")
    real = script.data.synthetic_image_tree

    def interrupted(root, **kwargs):
        (Path(root) / "train").mkdir(parents=True)
        (Path(root) / "train" / "partial.JPEG").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(script.data, "synthetic_image_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        script.synthetic_tree(tmp_path, seed=0)
    assert list(tmp_path.iterdir()) == []  # no tree, no temporary folder
    monkeypatch.setattr(script.data, "synthetic_image_tree", real)
    old = os.umask(0o022)
    try:
        root = script.synthetic_tree(tmp_path, seed=0)
    finally:
        os.umask(old)
    settings = script.SYNTHETIC
    images = list(root.rglob("*.JPEG"))
    assert len(images) == settings["classes"] * (settings["train_per_class"]
                                                 + settings["val_per_class"])
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == [root.name]
    assert script.synthetic_tree(tmp_path, seed=1) != root  # named by its settings


def test_the_cached_baseline_is_keyed_by_everything_that_shaped_it(tmp_path):
    script = _script("reproduce_imagenet")
    parser = script._parser()
    base = ["--synthetic", "--model", "tiny_resnet50"]
    path = {}
    for name, extra in {"default": [], "size": ["--image-size", "48"],
                        "batch": ["--batch-size", "8"], "seed": ["--seed", "1"],
                        "same": []}.items():
        args = parser.parse_args(base + extra)
        path[name] = script.baseline_path(args, tmp_path / "tree", 4, 6, tmp_path)
    assert path["same"] == path["default"]
    assert len({path[k] for k in ("default", "size", "batch", "seed")}) == 4
    other_tree = script.baseline_path(parser.parse_args(base), tmp_path / "other", 4, 6, tmp_path)
    assert other_tree != path["default"]


# --- 6. widgets and banners refuse what they cannot show ---------------------------------------


def test_threshold_explorer_refuses_non_finite_dependencies():
    from mint_teach import models
    from torch.utils.data import TensorDataset

    model = models.build_model("mlp", in_features=64, num_classes=10)
    data = TensorDataset(torch.randn(20, 1, 8, 8), torch.arange(20) % 10)
    for bad in (-math.inf, math.inf, math.nan):
        d = torch.rand(4, 4, dtype=torch.float64)
        d[1, 2] = bad
        deps = {("fc1", "fc2"): d}
        with pytest.raises(ValueError, match=r"dependencies\[\('fc1', 'fc2'\)\]"):
            widgets.threshold_explorer(model, deps, data, mode="delta")


@pytest.mark.parametrize("bad", [None, "2", [1.0], True])
def test_mst_explorer_takes_a_number_for_separation(bad):
    with pytest.raises(TypeError, match="separation"):
        widgets.mst_explorer(separation=bad)


@pytest.mark.parametrize("bad", [None, 3, b"text"])
def test_banner_needs_text(bad):
    with pytest.raises(TypeError, match="text"):
        course.banner(bad)


# --- 7. clear errors: the null's size, seeds, p-values, plots ---------------------------------


def test_dependency_null_is_bounded_by_memory():
    parent, child = _relu_layer_pair(rows=60)
    with pytest.raises(ValueError, match="permutations") as caught:
        mi.dependency_null(parent, child, parent_groups=3, child_groups=4,
                           permutations=10**12, seed=0, progress=False)
    assert "GiB" in str(caught.value)


def test_the_largest_seed_works_everywhere_and_larger_ones_are_refused():
    parent, child = _relu_layer_pair(rows=60)
    kw = dict(parent_groups=3, child_groups=4, seed=SEED_MAX, progress=False, device="cpu")
    d = mi.dependency_matrix(parent, child, **kw)
    null = mi.dependency_null(parent, child, permutations=2, **kw)
    assert null.shape == (2, 4, 3) and torch.isfinite(null).all()
    rel = mi.reliability(parent, child, **kw)
    assert set(rel) == {"split_to_split", "disjoint_rows", "disjoint_rows_full", "within_column"}
    assert torch.isfinite(d).all()
    assert derive_seed(SEED_MAX, 1) == 0 and derive_seed(7, 1) == 8
    for bad in (SEED_MAX + 1, -1, 2**70):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)
        with pytest.raises(ValueError, match="seed"):
            mi.dependency_matrix(parent, child, parent_groups=3, child_groups=4, seed=bad,
                                 progress=False)


def test_block_pvalues_with_a_null_of_strings_names_the_null():
    with pytest.raises(TypeError, match="null"):
        mi.block_pvalues(np.zeros((2, 2)), np.full((3, 2, 2), "a"))


@pytest.mark.parametrize("call, named", [
    (lambda: plots.plot_dependencies({}), "dependencies"),
    (lambda: plots.plot_masks({}), "masks"),
    (lambda: plots.plot_masks({("a", "b"): torch.full((2, 2), math.nan)}), "masks"),
    (lambda: plots.plot_masks({("a", "b"): torch.zeros(0, 3)}), "masks"),
    (lambda: plots.plot_dependencies({("a", "b"): [[0.1, math.nan]]}), "dependencies"),
    (lambda: plots.plot_history({}), "loss"),
    (lambda: plots.plot_history({"loss": []}), "loss"),
])
def test_plots_refuse_what_they_cannot_draw(call, named):
    with pytest.raises(ValueError, match=named):
        call()


# --- 8. every benchmark script: bad arguments up front, one line, exit 2 -----------------------


@pytest.mark.parametrize("flag", [["--fractions", "1.5"], ["--samples-per-class", "0"],
                                  ["--batch-size", "0"], ["--max-pair-fraction", "2"],
                                  ["--image-size", "0"], ["--seed", "-1"]])
def test_reproduce_imagenet_refuses_bad_flags_before_any_work(flag, tmp_path, capsys,
                                                              monkeypatch):
    script = _script("reproduce_imagenet")

    def work(*args, **kwargs):
        raise AssertionError("work started before the flags were checked")

    monkeypatch.setattr(script, "_root", work)
    monkeypatch.setattr(script.distributed, "setup", work)
    with pytest.raises(SystemExit) as stop:
        script.main(["--synthetic", "--out", str(tmp_path / "o"), *flag])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and flag[0] in err and len(err.strip().splitlines()) == 1


def test_reproduce_imagenet_refuses_an_out_it_cannot_write(tmp_path, capsys):
    script = _script("reproduce_imagenet")
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker, blocker / "below"):
        with pytest.raises(SystemExit) as stop:
            script.main(["--synthetic", "--out", str(out)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "--out" in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == ""


@pytest.mark.parametrize("script, looked", [("reproduce_mnist.py", "MNIST"),
                                            ("reproduce_cifar10.py", "cifar")])
def test_reproductions_without_data_say_where_they_looked(script, looked, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    proc = _run_script([str(BENCH / script), "--offline", "--root", str(empty)], tmp_path)
    line = _one_line_error(proc)
    assert str(empty) in line and looked in line and "Stage it" in line


def test_reproduce_cifar10_refuses_an_out_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _run_script([str(BENCH / "reproduce_cifar10.py"), "--out", str(blocker)], tmp_path)
    assert "--out" in _one_line_error(proc)


@pytest.mark.parametrize("args, flag", [
    (["dependency_speed.py", "--threads", "-1"], "--threads"),
    (["reproduce_mnist.py", "--seeds", "0"], "--seeds"),
    (["estimator_bias.py", "--rows", "3"], "--rows"),
])
def test_other_scripts_refuse_bad_flags_in_one_line(args, flag, tmp_path):
    proc = _run_script([str(BENCH / args[0]), *args[1:]], tmp_path)
    assert flag in _one_line_error(proc)


def test_one_seed_prints_no_spread_rather_than_nan():
    seed_stats = _script("seed_stats")
    assert "nan" not in seed_stats.spread([98.5])
    assert seed_stats.spread([98.5]) == "98.50% (n = 1, no spread)"
    assert seed_stats.spread([98.0, 98.2]) == "98.10 +- 0.14%"


# --- 9. one list of estimator names ------------------------------------------------------------


def test_every_surface_takes_every_estimator_of_mi():
    assert pipeline.ESTIMATORS is mi.ESTIMATORS
    assert "unconditional" in mi.ESTIMATORS
    for name in mi.ESTIMATORS:
        assert pipeline.MintConfig(dataset="digits", estimator=name).estimator == name
    from mint_teach.__main__ import _parser

    for name in mi.ESTIMATORS:
        assert _parser().parse_args(["run", "--estimator", name]).estimator == name
    with pytest.raises(ValueError, match="estimator"):
        pipeline.MintConfig(dataset="digits", estimator="bogus")
