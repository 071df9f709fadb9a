"""Tests for mint_teach.mi: Henze-Penrose, GMI, conditional GMI and the dependency matrix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mint_teach import _block_engine, _fused_prim, graphs, mi


def gaussian(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# --- Henze-Penrose and unconditional GMI ----------------------------------------------------


def test_hp_from_count():
    assert mi.hp_from_count(0, 10, 10) == 1.0  # no crossing edge: fully separated
    assert mi.hp_from_count(10, 10, 10) == 0.0  # 2mn/(m+n) crossings: the same distribution


def test_henze_penrose_same_and_separated_distributions():
    a, b = gaussian(0, 500, 3), gaussian(1, 500, 3)
    assert abs(mi.henze_penrose(a, b)) < 0.1
    assert mi.henze_penrose(a, b + 10.0) > 0.95
    assert mi.henze_penrose(a, b + 1.0) < mi.henze_penrose(a, b + 2.0)


def test_henze_penrose_rejects_mismatched_features():
    with pytest.raises(ValueError, match="features"):
        mi.henze_penrose(np.zeros((5, 2)), np.zeros((5, 3)))


def test_gmi_of_independent_variables_is_near_zero():
    assert abs(mi.gmi(gaussian(0, 1000, 3), gaussian(1, 1000, 2), seed=0)) < 0.1


def test_gmi_grows_with_correlation():
    a, noise = gaussian(0, 2000), gaussian(1, 2000)
    values = [mi.gmi(a, rho * a + np.sqrt(1 - rho**2) * noise, seed=0)
              for rho in (0.0, 0.5, 0.9, 0.99)]
    assert values == sorted(values) and values[-1] - values[0] > 0.5
    assert abs(values[0]) < 0.1


# --- conditional GMI ------------------------------------------------------------------------


def test_conditional_gmi_of_independent_mnist_shapes_is_near_zero():
    """Section 4c's check: X 15-d, Y 25-d, Z 475-d, all independent, 1,000 rows.

    The published count gives 0.27 to 0.35 here. A correct count is near 0. (Letting several
    A rows take the y of one B row, the nearest in 475 dimensions for many of them, adds
    about +0.2 here; the bootstrap takes each B row once, docs/method.md 4b.)
    """
    x, y, z = gaussian(0, 1000, 15), gaussian(1, 1000, 25), gaussian(2, 1000, 475)
    values = [mi.conditional_gmi(x, y, z, seed=s) for s in range(3)]
    assert abs(np.mean(values)) < 0.15
    assert max(abs(v) for v in values) < 0.2
    assert abs(mi.conditional_gmi(x, y, None, seed=0)) < 0.1


def test_common_cause_is_explained_away_by_z():
    """X and Y both follow Z: dependent on their own, (nearly) independent given Z."""
    unconditional, conditional = [], []
    for s in range(2):
        z = gaussian(10 + s, 1500)
        x = z + 0.2 * gaussian(20 + s, 1500)
        y = z + 0.2 * gaussian(30 + s, 1500)
        unconditional.append(mi.gmi(x, y, seed=s))
        conditional.append(mi.conditional_gmi(x, y, z, seed=s))
    assert min(unconditional) > 0.3
    assert np.mean(conditional) < 0.12
    assert max(conditional) < min(unconditional) / 3


def test_conditional_gmi_detects_what_y_adds_beyond_z():
    z, y = gaussian(0, 1500), gaussian(1, 1500)
    x = z + y + 0.2 * gaussian(2, 1500)
    assert mi.conditional_gmi(x, y, z, seed=0) > 0.3


def test_nn_bootstrap_spelled_out_equals_conditional_gmi():
    x, y, z = gaussian(0, 150, 2), gaussian(1, 150, 3), gaussian(2, 150, 4)
    y = y + x[:, :1]  # some dependence, so the value is not trivially 0
    for seed in (0, 1):
        bootstrapped, joint = mi.nn_bootstrap(x, y, z, seed=seed)
        assert bootstrapped.shape == (50, 9) and joint.shape == (50, 9)
        assert mi.henze_penrose(bootstrapped, joint) == pytest.approx(
            mi.conditional_gmi(x, y, z, seed=seed), abs=1e-12)
    # without z the bootstrap pairs A with B at random; the same identity holds
    assert mi.henze_penrose(*mi.nn_bootstrap(x, y, None, seed=3)) == pytest.approx(
        mi.conditional_gmi(x, y, np.zeros((150, 0)), seed=3), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nn_bootstrap_takes_y_from_the_nearest_free_z(seed):
    x = np.arange(30.0)
    y = 100 + np.arange(30.0)
    z = np.arange(30.0)  # nearest z of a row in A is the closest row of B by index
    bootstrapped, joint = mi.nn_bootstrap(x, y, z, seed=seed)
    x_a, y_b, z_a = bootstrapped.T
    assert torch.equal(x_a, z_a)
    rows_a_and_c = set(joint[:, 0].tolist()) | set(x_a.tolist())  # x is the row number
    free = set(range(30)) - rows_a_and_c  # the rows of B
    for xa, yb in zip(x_a.tolist(), y_b.tolist()):  # in A's order, each takes a free row
        row = yb - 100  # the row y came from
        assert row in free
        assert abs(row - xa) == min(abs(b - xa) for b in free)
        free.remove(row)
    assert not free  # |A| = |B|: every row of B lends its y exactly once


def test_nn_bootstrap_ties_go_to_the_first_free_row_of_b():
    x, y = gaussian(0, 60), gaussian(1, 60)
    z = np.zeros((60, 2))  # every row of B is equally near every row of A
    bootstrapped, joint = mi.nn_bootstrap(x, y, z, seed=4)
    y_b = bootstrapped[:, 1]
    a, b, _ = _block_engine.split_rows(60, torch.Generator().manual_seed(4))
    assert torch.equal(y_b, torch.from_numpy(y)[b])  # row k of A takes row k of B
    assert not set(y_b.tolist()) & set(joint[:, 1].tolist())
    # the block computation of dependency_matrix applies the same rule
    assert mi.conditional_gmi(x, y, z, seed=4) == pytest.approx(
        mi.henze_penrose(bootstrapped, joint), abs=1e-12)


@pytest.mark.parametrize("estimator", ["gmi", "conditional_gmi"])
def test_same_seed_same_value_for_numpy_and_torch(estimator):
    x, y, z = gaussian(0, 90, 2), gaussian(1, 90, 2), gaussian(2, 90, 3)
    y = y + x
    args = (x, y) if estimator == "gmi" else (x, y, z)
    fn = getattr(mi, estimator)
    first = fn(*args, seed=7)
    assert fn(*args, seed=7) == first
    assert fn(*(torch.from_numpy(a) for a in args), seed=7) == first
    assert len({fn(*args, seed=s) for s in range(6)}) > 1  # the seed matters


# --- dependency matrix ----------------------------------------------------------------------


def pair_by_pair(parent, child, parent_groups, child_groups, seed):
    """The dependency matrix the slow way: one conditional_gmi per (child, parent) group."""
    parent_bounds = mi.split_groups(parent.shape[1], parent_groups)
    child_bounds = mi.split_groups(child.shape[1], child_groups)
    out = np.empty((child_groups, parent_groups))
    for j, (c0, c1) in enumerate(child_bounds):
        for i, (p0, p1) in enumerate(parent_bounds):
            others = [u for u in range(parent.shape[1]) if not p0 <= u < p1]
            out[j, i] = mi.conditional_gmi(child[:, c0:c1], parent[:, p0:p1],
                                           parent[:, others], seed=seed)
    return out


def layer_pair(rows: int, parent_units: int, child_units: int, seed: int = 0,
               relu: bool = True):
    """Parent activations and child activations that depend on a few parent units each."""
    parent = gaussian(seed, rows, parent_units)
    mixing = gaussian(seed + 1, parent_units, child_units) * (
        np.random.default_rng(seed + 2).random((parent_units, child_units)) < 0.3)
    child = parent @ mixing + 0.3 * gaussian(seed + 3, rows, child_units)
    if relu:  # exact zeros, hence duplicated rows and tied distances
        return np.maximum(parent, 0.0), np.maximum(child, 0.0)
    return parent, child


@pytest.mark.parametrize("parent_units, parent_groups, child_units, child_groups",
                         [(12, 4, 6, 3), (13, 5, 7, 2), (6, 1, 4, 2), (5, 5, 3, 3)])
def test_dependency_matrix_equals_conditional_gmi_pair_by_pair(
        parent_units, parent_groups, child_units, child_groups):
    parent, child = layer_pair(120, parent_units, child_units, relu=False)
    matrix = mi.dependency_matrix(parent, child, parent_groups=parent_groups,
                                  child_groups=child_groups, seed=11, progress=False)
    assert matrix.shape == (child_groups, parent_groups)
    assert matrix.dtype == torch.float64
    expected = pair_by_pair(parent, child, parent_groups, child_groups, seed=11)
    np.testing.assert_allclose(matrix.numpy(), expected, atol=1e-9)


def test_dependency_matrix_agrees_with_conditional_gmi_on_relu_data():
    """With exact zeros, tied tree edges may be broken differently by rounding, because
    conditional_gmi sees the parent units in another column order. Each such tie moves R by
    one edge (0.025 here), so allow a single one."""
    parent, child = layer_pair(120, 5, 3, seed=1)
    matrix = mi.dependency_matrix(parent, child, parent_groups=5, child_groups=3, seed=11,
                                  progress=False)
    difference = np.abs(matrix.numpy() - pair_by_pair(parent, child, 5, 3, seed=11))
    assert difference.max() <= 0.05 and difference.mean() <= 0.01


def test_dependency_matrix_chunked_equals_unchunked(monkeypatch):
    parent, child = layer_pair(90, 10, 8, seed=4)
    whole = mi.dependency_matrix(parent, child, parent_groups=5, child_groups=4, seed=2,
                                 progress=False)
    points = 30 + 30  # |A| + |C| for 90 rows; each part is points x 64 float32
    monkeypatch.setattr(_block_engine, "_PARTS_BUDGET_BYTES", 3 * 4 * points * 64)  # 3 parts at once
    monkeypatch.setattr(_block_engine, "_CPU_PRIM_ELEMENTS", 2 * points)  # 2 trees per Prim batch
    assert _block_engine._chunk_sizes(5, 4, points) == (2, 1)
    chunked = mi.dependency_matrix(parent, child, parent_groups=5, child_groups=4, seed=2,
                                   progress=False)
    assert torch.equal(whole, chunked)


def test_dependency_matrix_finds_the_planted_dependence():
    rng = np.random.default_rng(0)
    parent = rng.normal(size=(600, 3))  # 3 groups of one unit
    child = parent[:, [0, 2]] + 0.3 * rng.normal(size=(600, 2))  # child j copies parent 2j
    matrix = mi.dependency_matrix(parent, child, parent_groups=3, child_groups=2, seed=0,
                                  progress=False)
    assert matrix.argmax(dim=1).tolist() == [0, 2]
    planted = torch.stack([matrix[0, 0], matrix[1, 2]])
    others = torch.stack([matrix[0, 1], matrix[0, 2], matrix[1, 0], matrix[1, 1]])
    assert planted.min() > 0.3
    assert planted.min() > others.max() + 0.1


def test_dependency_matrix_with_duplicate_rows_is_deterministic():
    parent, child = layer_pair(90, 8, 4, seed=5)
    parent[:30] = 0.0  # a third of the images switch every parent unit off
    child[:30] = 0.0
    first = mi.dependency_matrix(parent, child, parent_groups=4, child_groups=2, seed=0,
                                 progress=False)
    again = mi.dependency_matrix(torch.from_numpy(parent).float(), child, parent_groups=4,
                                 child_groups=2, seed=0, progress=False)
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)


def test_dependency_matrix_leaves_torch_threads_alone():
    parent, child = layer_pair(60, 4, 2)
    before = torch.get_num_threads()
    mi.dependency_matrix(parent, child, parent_groups=2, child_groups=2, seed=0, progress=False)
    assert torch.get_num_threads() == before


def test_dependency_matrix_progress_bar(capsys):
    parent, child = layer_pair(60, 4, 2)
    mi.dependency_matrix(parent, child, parent_groups=2, child_groups=2, seed=0, progress=True)
    assert "pair" in capsys.readouterr().err
    mi.dependency_matrix(parent, child, parent_groups=2, child_groups=2, seed=0, progress=False)
    assert capsys.readouterr().err == ""


needs_numba = pytest.mark.skipif(not _fused_prim.AVAILABLE, reason="numba is not installed")


@needs_numba
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("estimator", ["faithful", "published", "unconditional"])
def test_compiled_engine_equals_torch_engine(monkeypatch, estimator, relu):
    """The compiled Prim (distances made on the fly) and the batched-torch Prim (stored
    parts) grow the same trees, ties included, so D is identical."""
    parent, child = layer_pair(150, 12, 9, seed=3, relu=relu)
    kwargs = dict(parent_groups=4, child_groups=3, seed=1, progress=False, estimator=estimator)
    monkeypatch.setattr(_block_engine, "_FUSED_MIN_ELEMENTS", 0)
    compiled = mi.dependency_matrix(parent, child, **kwargs)
    monkeypatch.setattr(_block_engine, "_USE_FUSED", False)
    assert torch.equal(compiled, mi.dependency_matrix(parent, child, **kwargs))


@needs_numba
def test_compiled_prim_grows_the_minimum_spanning_tree():
    rng = np.random.default_rng(0)
    n = 80
    parent = rng.normal(size=(n, 6)).astype(np.float32)
    child = rng.normal(size=(n, 3)).astype(np.float32)
    y_other = rng.normal(size=(n, 2)).astype(np.float32)
    # points: child group, a parent group taken at other rows (y), the rest of the parent (z)
    zz = graphs.pairwise_sq_dists(torch.from_numpy(parent)).numpy()
    yz = np.ascontiguousarray(parent[:, :2].T[None])
    parents = _fused_prim.tree_parents(zz, yz, np.ascontiguousarray(y_other.T[None]),
                                       np.ascontiguousarray(child.T[None]), np.array([0]),
                                       np.array([0]), threads=1)
    points = np.concatenate([child, y_other, parent[:, 2:]], axis=1)
    expected = {tuple(sorted(e)) for e in graphs.mst(points).tolist()}
    assert {tuple(sorted((int(parents[0, u]), u))) for u in range(1, n)} == expected


# --- bad input ------------------------------------------------------------------------------


def test_estimators_reject_bad_matrices():
    x, y, z = gaussian(0, 30, 2), gaussian(1, 30, 2), gaussian(2, 30, 2)
    with pytest.raises(ValueError, match="x.*y.*same number of rows"):
        mi.gmi(x, y[:29])
    with pytest.raises(ValueError, match=r"z has 28"):
        mi.conditional_gmi(x, y, z[:28])
    nan = x.copy()
    nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="x must contain only finite"):
        mi.conditional_gmi(nan, y, z)
    inf = y.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="y must contain only finite"):
        mi.gmi(x, inf)
    with pytest.raises(ValueError, match=r"z must be a 2-D array .* got shape \(30, 2, 1\)"):
        mi.conditional_gmi(x, y, z[:, :, None])
    with pytest.raises(ValueError, match="x must have at least 4 rows; got 3"):
        mi.gmi(x[:3], y[:3])
    with pytest.raises(ValueError, match="x must have at least 6 rows; got 5"):
        mi.conditional_gmi(x[:5], y[:5], z[:5])
    with pytest.raises(ValueError, match="y must be a numeric array"):
        mi.gmi(x, np.array([["a", "b"]] * 30))
    with pytest.raises(ValueError, match="seed"):
        mi.gmi(x, y, seed=-1)
    with pytest.raises(ValueError, match="device"):
        mi.conditional_gmi(x, y, z, device="abacus")


def test_dependency_matrix_rejects_bad_arguments():
    parent, child = layer_pair(30, 6, 4)
    with pytest.raises(ValueError, match="parent.*child.*same number of rows"):
        mi.dependency_matrix(parent, child[:20], parent_groups=2, child_groups=2)
    with pytest.raises(ValueError, match="parent must be a 2-D array"):
        mi.dependency_matrix(parent[None], child, parent_groups=2, child_groups=2)
    with pytest.raises(ValueError, match="parent must have at least 6 rows; got 4"):
        mi.dependency_matrix(parent[:4], child[:4], parent_groups=2, child_groups=2)
    for bad in (0, -2, 1.5, True, None):
        with pytest.raises(ValueError, match="parent_groups"):
            mi.dependency_matrix(parent, child, parent_groups=bad, child_groups=2)
    with pytest.raises(ValueError, match=r"child_groups must be at least 1 and at most 4 "
                                         r"\(the number of child units\); got 5"):
        mi.dependency_matrix(parent, child, parent_groups=2, child_groups=5)
    assert mi.dependency_matrix(parent, child, parent_groups=np.int64(2), child_groups=4,
                                progress=False).shape == (4, 2)
