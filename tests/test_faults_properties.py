"""Property-based tests (Hypothesis) for the trees, the estimators and the masks.

For any finite input of a valid shape: the MST is a spanning tree of n - 1 edges, both
backends agree on its length, estimates are finite, and a common rescaling of all inputs (by
a power of two, so that every rounding is the same) leaves trees, counts and estimates
unchanged; the Henze-Penrose estimate does not depend on the order of the rows within each
sample. Masks prune exactly the requested number of blocks. Few examples and a derandomized
profile keep the suite fast and the same on every run.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_teach import graphs, mi, pruning

PROFILE = settings(max_examples=15, deadline=None, derandomize=True, database=None)

seeds = st.integers(0, 2**31 - 1)
# Rescale by 2**e: beyond |e| = 511 squares overflow or underflow even in float64.
exponents = st.one_of(st.sampled_from([-1000, -600, 600, 1000]), st.integers(-1000, 1000))


def _points(seed: int, n: int, d: int, spread: float = 1.0) -> np.ndarray:
    """Continuous random points: distinct distances almost surely, so the tree is unique."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * spread


def _is_spanning_tree(edges: torch.Tensor, n: int) -> bool:
    parent = list(range(n))

    def root(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for u, v in edges.tolist():
        ru, rv = root(u), root(v)
        if ru == rv:
            return False
        parent[ru] = rv
    return len(edges) == n - 1 and len({root(u) for u in range(n)}) == 1


def _length(points: np.ndarray, edges: torch.Tensor) -> float:
    e = edges.numpy()
    return float(np.linalg.norm(points[e[:, 0]] - points[e[:, 1]], axis=1).sum())


@PROFILE
@given(seed=seeds, n=st.integers(2, 40), d=st.integers(1, 4),
       spread=st.sampled_from([1e-200, 1e-6, 1.0, 1e6, 1e200]))
def test_mst_is_a_spanning_tree_and_backends_agree(seed, n, d, spread):
    points = _points(seed, n, d, spread)
    by_nx = graphs.mst(points, backend="networkx")
    by_torch = graphs.mst(points, backend="torch", device="cpu")
    assert _is_spanning_tree(by_nx, n) and _is_spanning_tree(by_torch, n)
    unit = points / spread  # lengths in units of the spread (no overflow in numpy)
    assert np.isclose(_length(unit, by_nx), _length(unit, by_torch), rtol=1e-9)


@PROFILE
@given(seed=seeds, n=st.integers(4, 40), flip=st.booleans())
def test_cross_edges_ignores_edge_order_and_edge_direction(seed, n, flip):
    points = _points(seed, n, 2)
    edges = graphs.mst(points)
    labels = np.random.default_rng(seed + 1).integers(0, 2, n)
    shuffled = edges[torch.randperm(len(edges), generator=torch.Generator().manual_seed(seed))]
    if flip:
        shuffled = shuffled.flip(1)
    r = graphs.cross_edges(edges, labels)
    assert r == graphs.cross_edges(shuffled, labels) and 0 <= r <= n - 1


@PROFILE
@given(seed=seeds, m=st.integers(2, 30), n=st.integers(2, 30), e=exponents)
def test_henze_penrose_is_finite_and_ignores_scale_and_row_order(seed, m, n, e):
    a, b = _points(seed, m, 3), _points(seed + 1, n, 3) + 0.5
    hp = mi.henze_penrose(a, b)
    assert np.isfinite(hp) and hp <= 1.0
    assert mi.henze_penrose(a * 2.0**e, b * 2.0**e) == hp
    rng = np.random.default_rng(seed)
    assert mi.henze_penrose(a[rng.permutation(m)], b[rng.permutation(n)]) == hp


@PROFILE
@given(seed=seeds, n=st.integers(4, 60), e=exponents)
def test_gmi_is_finite_and_ignores_a_common_rescaling(seed, n, e):
    x = _points(seed, n, 2)
    y = x[:, :1] ** 2 + 0.1 * _points(seed + 1, n, 1)
    value = mi.gmi(x, y, seed=seed)
    assert np.isfinite(value) and value <= 1.0
    assert mi.gmi(x * 2.0**e, y * 2.0**e, seed=seed) == value


@PROFILE
@given(seed=seeds, n=st.integers(6, 60), e=exponents, groups=st.integers(1, 3))
def test_dependency_matrix_is_finite_and_ignores_a_common_rescaling(seed, n, e, groups):
    parent = _points(seed, n, 4)
    child = np.maximum(parent[:, :3] + 0.3 * _points(seed + 1, n, 3), 0)
    kwargs = dict(parent_groups=groups, child_groups=groups, seed=seed, device="cpu",
                  progress=False)
    d = mi.dependency_matrix(parent, child, **kwargs)
    assert d.shape == (groups, groups) and torch.isfinite(d).all() and (d <= 1).all()
    scaled = mi.dependency_matrix(parent * 2.0**e, child * 2.0**e, **kwargs)
    assert torch.equal(scaled, d)


@PROFILE
@given(seed=seeds, shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)),
                                   min_size=1, max_size=3),
       q=st.floats(0, 1), ties=st.booleans())
def test_masks_prune_exactly_the_requested_number_of_blocks(seed, shapes, q, ties):
    g = torch.Generator().manual_seed(seed)
    deps = {}
    for k, shape in enumerate(shapes):
        d = torch.rand(shape, generator=g)
        deps[(f"l{k}", f"l{k + 1}")] = (d * 3).round() / 3 if ties else d  # many equal values
    masks = pruning.masks_from_dependencies(deps, prune_fraction=q, max_pair_fraction=1.0)
    total = sum(d.numel() for d in deps.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(q * total)
    capped = pruning.masks_from_dependencies(deps, prune_fraction=q, max_pair_fraction=0.5)
    for key, keep in capped.items():
        assert int((~keep).sum()) <= int(0.5 * deps[key].numel())


@PROFILE
@given(seed=seeds, q=st.floats(0, 1))
def test_applied_masks_zero_exactly_the_masked_blocks(seed, q):
    from mint_teach import models

    torch.manual_seed(0)
    model = models.MLP(in_features=12, hidden=(8, 6), num_classes=4)
    g = torch.Generator().manual_seed(seed)
    deps = {("fc1", "fc2"): torch.rand(3, 4, generator=g)}
    keep = pruning.masks_from_dependencies(deps, prune_fraction=q, max_pair_fraction=1.0)
    pruning.apply_masks(model, keep)
    expected = pruning.expand_block_mask(keep[("fc1", "fc2")], (6, 8), 8)
    assert torch.equal(model.fc2.weight != 0, expected)
