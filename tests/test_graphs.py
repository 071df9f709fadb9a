"""Tests for mint_teach.graphs: distances, MSTs and the Friedman-Rafsky count."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from mint_teach import graphs


def tree_length(edges: torch.Tensor, points: np.ndarray) -> float:
    """Total Euclidean length of a tree's edges."""
    e = np.asarray(edges)
    return float(np.linalg.norm(points[e[:, 0]] - points[e[:, 1]], axis=1).sum())


def edge_set(edges: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(sorted(e)) for e in np.asarray(edges).tolist()}


def test_pairwise_sq_dists_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    expected = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(graphs.pairwise_sq_dists(a, b).numpy(), expected, atol=1e-10)
    within = graphs.pairwise_sq_dists(a)
    assert torch.all(within.diagonal() == 0)
    assert torch.all(within >= 0)
    np.testing.assert_allclose(within.numpy(), within.numpy().T)
    batched = graphs.pairwise_sq_dists(np.stack([a, 2 * a]))
    np.testing.assert_allclose(batched[1].numpy(), 4 * within.numpy(), atol=1e-9)


def test_pairwise_sq_dists_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same d"):
        graphs.pairwise_sq_dists(np.zeros((3, 2)), np.zeros((3, 4)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_networkx_and_torch_backends_give_the_same_tree(seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(80, 3))
    membership = rng.integers(0, 2, size=80)
    by_nx = graphs.mst(points, backend="networkx")
    by_torch = graphs.mst(points, backend="torch", device="cpu")
    assert by_nx.shape == by_torch.shape == (79, 2)
    assert tree_length(by_nx, points) == pytest.approx(tree_length(by_torch, points), rel=1e-12)
    assert edge_set(by_nx) == edge_set(by_torch)  # continuous data: the MST is unique
    assert graphs.cross_edges(by_nx, membership) == graphs.cross_edges(by_torch, membership)


def test_mst_is_a_spanning_tree_of_minimum_length():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(40, 2))
    edges = graphs.mst(points, backend="torch", device="cpu")
    tree = nx.Graph(edges.tolist())
    assert tree.number_of_nodes() == 40 and nx.is_tree(tree)
    # no single edge swap makes it shorter: networkx's own tree has the same length
    complete = nx.Graph()
    for i in range(40):
        for j in range(i + 1, 40):
            complete.add_edge(i, j, weight=float(np.linalg.norm(points[i] - points[j])))
    best = nx.minimum_spanning_tree(complete).size(weight="weight")
    assert tree_length(edges, points) == pytest.approx(best)


def test_mst_of_points_on_a_line_is_the_path():
    points = np.array([[3.0], [0.0], [10.0], [1.0]])  # order on the line: 1, 3, 0, 2
    for backend in ("networkx", "torch"):
        assert edge_set(graphs.mst(points, backend=backend, device="cpu")) == {
            (1, 3), (0, 3), (0, 2)}


def test_mst_accepts_a_distance_matrix():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(30, 5))
    dists = graphs.pairwise_sq_dists(points)
    from_points = graphs.mst(points, backend="torch", device="cpu")
    for backend in ("networkx", "torch"):
        from_dists = graphs.mst(dists, dists=True, backend=backend, device="cpu")
        assert edge_set(from_dists) == edge_set(from_points)


def test_batched_prim_equals_unbatched():
    rng = np.random.default_rng(5)
    stack = graphs.pairwise_sq_dists(rng.normal(size=(4, 50, 3)))  # 4 distance matrices
    batched = graphs.mst(stack, dists=True, backend="torch", device="cpu")
    assert batched.shape == (4, 49, 2)
    for t in range(4):
        single = graphs.mst(stack[t], dists=True, backend="torch", device="cpu")
        assert torch.equal(batched[t], single)
    # a stack of point sets works the same way
    points = rng.normal(size=(3, 20, 2))
    by_points = graphs.mst(points, backend="torch", device="cpu")
    for t in range(3):
        assert edge_set(by_points[t]) == edge_set(graphs.mst(points[t], backend="networkx"))


def test_mst_with_duplicate_points_is_deterministic():
    rng = np.random.default_rng(6)
    points = np.maximum(rng.normal(size=(60, 3)), 0)  # ReLU: many exact zeros
    points[10:20] = 0.0  # ten identical rows
    first = graphs.mst(points, backend="torch", device="cpu")
    second = graphs.mst(torch.from_numpy(points), backend="torch", device="cpu")
    assert torch.equal(first, second)
    assert nx.is_tree(nx.Graph(first.tolist()))
    assert tree_length(first, points) == pytest.approx(
        tree_length(graphs.mst(points, backend="networkx"), points))


def test_mst_tiny_inputs():
    assert graphs.mst([[1.0, 2.0]]).shape == (0, 2)
    assert graphs.mst([[0.0], [1.0], [3.0]]).tolist() == [[0, 1], [1, 2]]


def test_mst_rejects_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        graphs.mst(np.zeros((4, 2)), backend="scipy")
    with pytest.raises(ValueError, match="points_or_dists"):
        graphs.mst(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="points_or_dists"):
        graphs.mst(np.zeros((3, 4)), dists=True)  # not square
    with pytest.raises(ValueError, match="symmetric"):
        graphs.mst(np.array([[0.0, 1.0], [2.0, 0.0]]), dists=True)
    with pytest.raises(ValueError, match="points_or_dists"):
        graphs.mst(np.zeros((2, 3, 4, 5)))


def test_cross_edges_on_a_path():
    path = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    labels = [0, 0, 1, 1, 0, 1]  # changes between 1-2, 3-4 and 4-5
    assert graphs.cross_edges(path, labels) == 3
    assert graphs.cross_edges(path, ["a", "a", "b", "b", "a", "b"]) == 3
    assert graphs.cross_edges(path, [True] * 6) == 0


def test_cross_edges_reads_both_ends_of_every_edge():
    """Section 4c: the published code compared an edge's end with the edge's *position*.

    A star with centre 4: every edge joins node 4 to a leaf. The right count compares the
    centre's label with each leaf's. Comparing each leaf with the node numbered like the
    edge's position (the defect) gives another number, so this test tells them apart.
    """
    star = np.array([[4, 0], [4, 1], [4, 2], [4, 3], [4, 5]])
    labels = np.array([1, 0, 1, 0, 0, 0])  # centre 4 is 0; leaves 0 and 2 are 1
    assert graphs.cross_edges(star, labels) == 2
    defect = sum(labels[star[k, 1]] != labels[k] for k in range(len(star)))
    assert defect != 2
    # a correct count does not care how the edges are listed
    rng = np.random.default_rng(0)
    shuffled = star[rng.permutation(len(star))][:, ::-1]
    assert graphs.cross_edges(shuffled, labels) == 2


def test_cross_edges_batched():
    rng = np.random.default_rng(7)
    stack = graphs.pairwise_sq_dists(rng.normal(size=(3, 25, 2)))
    edges = graphs.mst(stack, dists=True, backend="torch", device="cpu")
    shared = rng.integers(0, 2, size=25)
    per_tree = rng.integers(0, 2, size=(3, 25))
    counts = graphs.cross_edges(edges, shared)
    assert counts.shape == (3,)
    assert counts.tolist() == [graphs.cross_edges(edges[t], shared) for t in range(3)]
    assert graphs.cross_edges(edges, per_tree).tolist() == [
        graphs.cross_edges(edges[t], per_tree[t]) for t in range(3)]


def test_cross_edges_rejects_bad_edges():
    with pytest.raises(ValueError, match="edges"):
        graphs.cross_edges([[0, 1, 2]], [0, 1, 0])
    with pytest.raises(ValueError, match="edges"):
        graphs.cross_edges([[0, 7]], [0, 1])


def test_mst_graph_carries_sample_pos_and_weight():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
    graph = graphs.mst_graph(points, membership=["joint", "joint", "boot", "boot"])
    assert nx.is_tree(graph) and graph.number_of_nodes() == 4
    assert graph.nodes[2]["sample"] == "boot"
    assert graph.nodes[3]["pos"] == (5.0, 2.0)
    assert graph.edges[1, 2]["weight"] == pytest.approx(4.0)
    assert sum(w for _, _, w in graph.edges(data="weight")) == pytest.approx(7.0)


def test_draw_mst_returns_axes():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    rng = np.random.default_rng(8)
    ax = graphs.draw_mst(rng.normal(size=(20, 2)), membership=[0] * 10 + [1] * 10)
    assert "edges cross" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["sample A", "sample B"]  # the two colours are named
    assert any("counted in R" in text for text in legend)
    ax = graphs.draw_mst(rng.normal(size=(6, 2)), membership=["x", "x", "x", "y", "y", "y"],
                         names={"x": "joint", "y": "product"})
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["joint", "product"]


def test_blockwise_argmin_matches_argmin_including_ties():
    rng = np.random.default_rng(9)
    dist = torch.from_numpy(rng.integers(0, 5, size=(40, 3 * graphs.ARGMIN_BLOCK))).float()
    assert torch.equal(graphs._first_argmin(dist), dist.argmin(dim=1))  # first of equal minima
    odd = dist[:, :100]  # not a whole number of blocks: falls back to argmin
    assert torch.equal(graphs._first_argmin(odd), odd.argmin(dim=1))


def test_prim_rows_ignores_padding_columns():
    rng = np.random.default_rng(10)
    dists = graphs.pairwise_sq_dists(rng.normal(size=(2, 30, 2))).float()
    padded = torch.nn.functional.pad(dists, (0, graphs.padded_width(30) - 30))  # zeros
    flat = padded.reshape(60, -1)
    edges = graphs.prim_rows(lambda v: flat.index_select(0, torch.arange(2) * 30 + v), 30, 2)
    for t in range(2):
        assert edge_set(edges[t]) == edge_set(graphs.mst(dists[t], dists=True,
                                                         backend="networkx"))
