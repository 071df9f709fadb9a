"""Distances, minimum spanning trees and the Friedman-Rafsky count (docs/method.md section 4).

Every MINT estimate is read off a Euclidean minimum spanning tree (MST): pool two samples,
join all points by the shortest tree, and count the tree edges whose ends came from different
samples. This module holds those three steps:

- ``pairwise_sq_dists``: squared Euclidean distances between rows;
- ``mst``: the tree, by networkx (small teaching cases, easy to draw) or by a dense Prim's
  algorithm in torch that runs many trees at once on CPU or GPU (``prim_rows``);
- ``cross_edges``: the Friedman-Rafsky count R;
- ``rescale_together``: one common power-of-two rescaling of the inputs, so that squared
  distances neither overflow nor underflow (a tree does not depend on the scale).

``mst_graph`` and ``draw_mst`` turn a tree into a networkx graph and a picture for notebooks.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import math

import networkx as nx
import numpy as np
import torch

from ._validation import check_choice, check_device, check_matrix, check_tensor

__all__ = [
    "ARGMIN_BLOCK",
    "cross_edges",
    "draw_mst",
    "mst",
    "mst_graph",
    "padded_width",
    "pairwise_sq_dists",
    "prim_rows",
    "rescale_together",
]

_BACKENDS = ("auto", "networkx", "torch")
_AUTO_NETWORKX_MAX_NODES = 200  # "auto" uses networkx up to this many points, torch above


def rescale_together(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Divide all ``tensors`` by one power of two that brings their largest |value| into [0.5, 1).

    Minimum spanning trees, cross-edge counts and every MINT estimate depend only on the order
    of distances, which a common rescaling keeps; but squared distances of values near 1e19
    overflow float32 (and near 1e200, float64) and those of values near 1e-25 underflow to 0,
    which silently turns every estimate into 1 or 0. Scaling by a power of two is exact in
    floating point (short of underflow), so inputs of ordinary size give bit-identical trees,
    and inputs rescaled by any power of two give the same trees as the originals.

    Parameters
    ----------
    *tensors : torch.Tensor
        Finite floating tensors, all rescaled by the same factor.

    Returns
    -------
    tuple of torch.Tensor
        The rescaled tensors (the inputs themselves when they are all zero or already in range).

    Examples
    --------
    >>> big, small = rescale_together(torch.tensor([3e300], dtype=torch.float64),
    ...                               torch.tensor([1.0], dtype=torch.float64))
    >>> 0.5 <= float(big) < 1.0, float(small) > 0
    (True, True)
    """
    peak = max((float(t.detach().abs().max()) for t in tensors if t.numel()), default=0.0)
    if peak == 0.0 or not math.isfinite(peak):
        return tensors
    exponent = math.frexp(peak)[1]  # peak = mantissa * 2**exponent, 0.5 <= mantissa < 1
    if exponent == 0:
        return tensors
    half = -exponent // 2  # two steps: 2**1074 alone would overflow a float
    return tuple(t * 2.0**half * 2.0**(-exponent - half) for t in tensors)


def pairwise_sq_dists(a: Any, b: Any | None = None) -> torch.Tensor:
    """Return the squared Euclidean distance between every row of ``a`` and every row of ``b``.

    Uses ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product), clamped at 0 against rounding; with
    ``b`` omitted the distances are within ``a`` and the diagonal is exactly 0. Squared
    distances over a concatenation of feature blocks are the sum of the blocks' squared
    distances, which is what makes section 4d of docs/method.md fast.

    Parameters
    ----------
    a : array-like, shape (n, d) or (batch, n, d)
        Points, one per row. A 1-D array is n points of one feature.
    b : array-like, shape (k, d) or (batch, k, d), optional
        Second set of points; defaults to ``a``.

    Returns
    -------
    torch.Tensor, shape (n, k) or (batch, n, k)
        Squared distances, in the dtype and on the device of ``a``.
    """
    a = check_tensor("a", a)
    if a.ndim == 1:
        a = a[:, None]
    same = b is None
    b = a if same else check_tensor("b", b).to(a.device, a.dtype)
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim not in (2, 3) or b.ndim != a.ndim or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            "a and b must be (n, d) and (k, d) arrays, or (batch, n, d) and (batch, k, d), "
            f"with the same d; got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    sq_a = (a * a).sum(-1)  # (..., n)
    sq_b = (b * b).sum(-1)  # (..., k)
    dists = (a @ b.transpose(-1, -2)).mul_(-2.0)  # -2 a.b, then add |a|^2 and |b|^2 in place
    dists.add_(sq_a[..., :, None]).add_(sq_b[..., None, :]).clamp_(min=0.0)
    if same:
        dists.diagonal(dim1=-2, dim2=-1).zero_()
    return dists


ARGMIN_BLOCK = 64  # prim_rows finds minima in blocks of this many columns (see _first_argmin)


def padded_width(n_nodes: int) -> int:
    """Row width to give ``prim_rows`` for ``n_nodes`` nodes: a multiple of ``ARGMIN_BLOCK``."""
    return -(-n_nodes // ARGMIN_BLOCK) * ARGMIN_BLOCK


def _first_argmin(dist: torch.Tensor) -> torch.Tensor:
    """Index of the smallest entry in each row of ``dist`` (the first one on ties).

    Same answer as ``dist.argmin(dim=1)``, which is slow on CPU; the minimum of each block of
    ``ARGMIN_BLOCK`` columns is fast, so find the first block holding the row's minimum, then
    the first minimum inside that block.
    """
    n_rows, width = dist.shape
    if width % ARGMIN_BLOCK:
        return dist.argmin(dim=1)
    blocks = dist.view(n_rows, width // ARGMIN_BLOCK, ARGMIN_BLOCK)
    block = blocks.amin(dim=2).argmin(dim=1)
    inside = blocks[torch.arange(n_rows, device=dist.device), block].argmin(dim=1)
    return block * ARGMIN_BLOCK + inside


def prim_rows(
    row_of: Callable[[torch.Tensor], torch.Tensor],
    n_nodes: int,
    n_trees: int,
) -> torch.Tensor:
    """Grow ``n_trees`` minimum spanning trees at once with dense Prim's algorithm.

    Prim's algorithm starts a tree at node 0 and, ``n_nodes - 1`` times, adds the outside node
    closest to the tree. It keeps, for every outside node, its distance to the tree (``dist``)
    and which tree node that distance is to. Each step therefore needs one row of the distance
    matrix: the distances from the node just added. ``row_of`` supplies that row, so a caller
    can assemble it on the fly (section 4d: the row of a MINT distance matrix is the sum of a
    child-part row and a parent-part row) and no ``(n_trees, n, n)`` tensor is ever needed.

    Every step is a handful of vectorised operations over ``(n_trees, width)``. Instead of a
    ``torch.where`` to remember each node's nearest tree node (slow on CPU), the loop keeps a
    *stamp*: the step at which that tree node was added; ``order[stamp]`` turns it back into
    the node. Ties go to the tree node added first and, for the next node, to the lowest index,
    so the result is deterministic.

    Parameters
    ----------
    row_of : callable
        ``row_of(v)`` gets a ``(n_trees,)`` long tensor, ``v[t]`` the node just added to tree
        ``t``, and returns a floating ``(n_trees, width)`` tensor whose first ``n_nodes``
        columns are the finite, non-negative distances from ``v[t]`` to every node of problem
        ``t``. Columns past ``n_nodes`` are ignored: padding ``width`` to
        ``padded_width(n_nodes)`` makes each step faster on CPU. The loop overwrites the
        returned tensor, so ``row_of`` may return the same buffer every time; the loop runs
        on that tensor's device and dtype. The first ``v`` is on the CPU (the device is not
        known yet), so ``row_of`` should move ``v`` to its own device.
    n_nodes, n_trees : int
        Nodes per tree and the number of trees (the batch).

    Returns
    -------
    torch.Tensor, shape (n_trees, n_nodes - 1, 2), long
        Edge ``k`` of tree ``t`` is ``(tree node, node added at step k + 1)``.
    """
    first = row_of(torch.zeros(n_trees, dtype=torch.long))
    device, dtype, width = first.device, first.dtype, first.shape[1]
    big = torch.finfo(dtype).max  # marks nodes already in the tree (and padding)
    trees = torch.arange(n_trees, device=device)
    order = torch.zeros(n_trees, n_nodes, dtype=torch.long, device=device)  # node added at step
    in_tree = torch.zeros(n_trees, width, dtype=dtype, device=device)  # 0 outside, big inside
    in_tree[:, 0] = big
    in_tree[:, n_nodes:] = big
    stamp = torch.zeros(n_trees, width, dtype=dtype, device=device)  # step of nearest tree node
    dist = first.clone().add_(in_tree)  # distance of every outside node to the tree
    closer = torch.empty_like(dist)  # scratch, reused every step
    for step in range(1, n_nodes):
        v = _first_argmin(dist)  # closest outside node of each tree
        order[:, step] = v
        in_tree[trees, v] = big
        dist[trees, v] = big
        row = row_of(v).add_(in_tree)  # tree nodes get "big" (or inf) and never move
        torch.sub(dist, row, out=closer).sign_().mul_(step)  # step where the new node is closer
        torch.maximum(stamp, closer, out=stamp)  # steps only grow, so max = "update if closer"
        torch.minimum(dist, row, out=dist)
    nearest = order.gather(1, stamp[:, :n_nodes].long())  # stamp -> the tree node it names
    added = order[:, 1:]
    return torch.stack((nearest.gather(1, added), added), dim=-1)


def _distance_stack(points_or_dists: Any, dists: bool) -> tuple[torch.Tensor, bool]:
    """Validate the input of ``mst``; return squared distances (batch, n, n) and "batched"."""
    name = "points_or_dists"
    value = check_tensor(name, points_or_dists)
    if dists:
        if value.ndim not in (2, 3) or value.shape[-1] != value.shape[-2]:
            raise ValueError(f"{name} must be an (n, n) or (batch, n, n) distance matrix when "
                             f"dists=True; got shape {tuple(value.shape)}")
        stack = value if value.ndim == 3 else value[None]
        if not bool(torch.isfinite(stack).all()) or bool((stack < 0).any()):
            raise ValueError(f"{name} must hold finite, non-negative distances")
        if not torch.allclose(stack, stack.transpose(1, 2)):
            raise ValueError(f"{name} must be symmetric (a distance matrix)")
        return rescale_together(stack)[0], value.ndim == 3
    if value.ndim == 3:  # a batch of point sets
        for t in range(value.shape[0]):
            check_matrix(f"{name}[{t}]", value[t], dtype=value.dtype)
        stack, batched = pairwise_sq_dists(rescale_together(value)[0]), True
    else:
        points = check_matrix(name, value, dtype=value.dtype)
        stack, batched = pairwise_sq_dists(rescale_together(points)[0])[None], False
    if not bool(torch.isfinite(stack).all()):
        raise ValueError(f"{name}: squared distances are not finite in {stack.dtype}; "
                         "pass float64 points")
    return stack, batched


def _mst_networkx(dists: torch.Tensor) -> torch.Tensor:
    """MST of one (n, n) distance matrix with networkx (Kruskal). Returns (n - 1, 2)."""
    n = dists.shape[0]
    weights = dists.detach().cpu().double().numpy()
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    rows, cols = np.triu_indices(n, k=1)
    graph.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), weights[rows, cols].tolist()))
    tree = nx.minimum_spanning_tree(graph, algorithm="kruskal")
    edges = sorted(tuple(sorted(e)) for e in tree.edges())
    return torch.tensor(edges, dtype=torch.long).reshape(n - 1, 2)


def mst(
    points_or_dists: Any,
    *,
    dists: bool = False,
    backend: str = "auto",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Return the edges of the Euclidean minimum spanning tree of a point set (section 4a).

    The tree joins all points with the least total edge length. It is the same tree whether
    edges are measured by distance or squared distance (any increasing transform keeps the
    order of edge lengths), so the torch backend works on squared distances.

    Parameters
    ----------
    points_or_dists : array-like
        Points ``(n, d)`` (a 1-D array is ``n`` points of one feature) or, with
        ``dists=True``, a symmetric distance matrix ``(n, n)``. A stack ``(batch, n, d)`` of
        point sets or ``(batch, n, n)`` of distance matrices gives one tree per item.
    dists : bool
        Read the input as distances rather than points. Off by default, because a square
        array of points is legal too.
    backend : {"auto", "networkx", "torch"}
        ``"networkx"`` builds the complete graph and calls ``nx.minimum_spanning_tree``
        (clear, slow, for teaching); ``"torch"`` runs dense Prim (``prim_rows``) on ``device``,
        batched over a stack; ``"auto"`` uses networkx for one tree of at most 200 points and
        torch otherwise.
    device : torch.device or str, optional
        Device for the torch backend; None means CUDA when available, else CPU.

    Returns
    -------
    torch.Tensor, long, on the CPU
        ``(n - 1, 2)`` edges (node index pairs), or ``(batch, n - 1, 2)`` for a stack. The order
        of edges and of the two ends of an edge is not specified.

    Examples
    --------
    >>> mst([[0.0], [1.0], [3.0]]).tolist()
    [[0, 1], [1, 2]]
    """
    backend = check_choice("backend", backend, _BACKENDS)
    device = check_device(device)  # checked on every backend, used by torch's
    stack, batched = _distance_stack(points_or_dists, dists)
    n_trees, n = stack.shape[0], stack.shape[1]
    if backend == "auto":
        backend = "networkx" if not batched and n <= _AUTO_NETWORKX_MAX_NODES else "torch"
    if n == 1:
        edges = torch.zeros(n_trees, 0, 2, dtype=torch.long)
    elif backend == "networkx":
        edges = torch.stack([_mst_networkx(d) for d in stack])
    else:
        padded = torch.nn.functional.pad(stack.to(device), (0, padded_width(n) - n))
        flat = padded.reshape(n_trees * n, -1)  # row v of tree t is flat[t * n + v]
        offsets = torch.arange(n_trees, device=device) * n

        def row_of(v: torch.Tensor) -> torch.Tensor:
            return flat.index_select(0, offsets + v.to(device))

        edges = prim_rows(row_of, n, n_trees).cpu()
    return edges if batched else edges[0]


def _membership_codes(membership: Any) -> torch.Tensor:
    """Membership labels (numbers, bools or strings) as an integer tensor of codes."""
    if isinstance(membership, torch.Tensor):
        return membership.detach().cpu()
    array = np.ascontiguousarray(membership)
    if array.dtype.kind not in "biuf":
        _, codes = np.unique(array.reshape(-1), return_inverse=True)
        array = codes.reshape(array.shape)
    return torch.as_tensor(array)


def cross_edges(edges: Any, membership: Any) -> int | torch.Tensor:
    """Count the tree edges whose two ends belong to different samples (Friedman-Rafsky R).

    Section 4a. Both ends of every edge are looked up, ``membership[edges[:, 0]]`` against
    ``membership[edges[:, 1]]``. (Section 4c: the published code compared one end with the
    edge's position in a sparse matrix instead, which gives a wrong count.) The count does not
    depend on the order of the edges or of the two ends of an edge.

    Parameters
    ----------
    edges : array-like of int, shape (n - 1, 2) or (batch, n - 1, 2)
        Tree edges as node index pairs, e.g. from ``mst``.
    membership : array-like, shape (n,) or (batch, n)
        Which sample each node came from (any labels: 0/1, booleans, strings).
        A 1-D membership is shared by every tree of a batch.

    Returns
    -------
    int, or torch.Tensor of shape (batch,)
        R for one tree, or one count per tree.

    Examples
    --------
    >>> cross_edges([[0, 1], [1, 2], [2, 3]], ["a", "a", "b", "b"])
    1
    """
    if not isinstance(edges, torch.Tensor):
        edges = torch.from_numpy(np.ascontiguousarray(edges))
    edges = edges.cpu()
    codes = _membership_codes(membership)
    if edges.ndim not in (2, 3) or edges.shape[-1] != 2 or edges.is_floating_point():
        raise ValueError(f"edges must be an integer array of shape (n - 1, 2) or "
                         f"(batch, n - 1, 2); got shape {tuple(edges.shape)}")
    if codes.ndim not in (1, edges.ndim - 1):
        raise ValueError(f"membership must have shape (n,) or (batch, n); "
                         f"got shape {tuple(codes.shape)}")
    n = codes.shape[-1]
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= n):
        raise ValueError(f"edges must index nodes 0..{n - 1} of membership; "
                         f"got node indices from {int(edges.min())} to {int(edges.max())}")
    if codes.ndim == 1:
        ends = codes[edges]  # (..., n - 1, 2): the label of each end
    else:
        batch = torch.arange(codes.shape[0])[:, None, None]
        ends = codes[batch, edges]
    counts = (ends[..., 0] != ends[..., 1]).sum(-1)
    return int(counts) if edges.ndim == 2 else counts


def mst_graph(points: Any, membership: Any | None = None) -> nx.Graph:
    """Return the Euclidean MST of ``points`` as a networkx graph, ready for ``nx.draw``.

    Nodes carry ``sample`` (the membership label, 0 when none is given) and ``pos`` (the
    first two coordinates; a second coordinate of 0 for 1-D points). Edges carry ``weight``,
    the Euclidean length.

    Parameters
    ----------
    points : array-like, shape (n, d)
    membership : array-like, shape (n,), optional

    Returns
    -------
    networkx.Graph
    """
    points = check_matrix("points", points)
    n = points.shape[0]
    labels = [0] * n if membership is None else np.asarray(membership).reshape(-1).tolist()
    if len(labels) != n:
        raise ValueError(f"membership must have one label per point ({n}); got {len(labels)}")
    edges = mst(points).tolist()
    coords = points.cpu().numpy()
    graph = nx.Graph()
    for node in range(n):
        y = float(coords[node, 1]) if coords.shape[1] > 1 else 0.0
        graph.add_node(node, sample=labels[node], pos=(float(coords[node, 0]), y))
    for u, v in edges:
        graph.add_edge(u, v, weight=float(np.linalg.norm(coords[u] - coords[v])))
    return graph


def draw_mst(points: Any, membership: Any | None = None, *, ax: Any = None,
             names: Any = None) -> Any:
    """Draw the MST of 2-D points, nodes coloured by sample, crossing edges in red.

    The red edges are the ones the Friedman-Rafsky count R counts (section 4a). Uses the
    first two coordinates. A legend names each sample's colour and the two kinds of edge:
    ``names`` maps a membership label to its name (default: labels 0 and 1 are "sample A" and
    "sample B", any other label is shown as it is). Returns the matplotlib axes.

    The toolkit's other figures live in ``plots``; this one stays beside :func:`mst_graph`
    because notebook 02 builds a tree and draws it in the same step (``mt.graphs.draw_mst``),
    so the picture is met where the tree is taught.
    """
    import matplotlib.pyplot as plt  # imported here so the module works without a display
    from matplotlib.lines import Line2D

    graph = mst_graph(points, membership)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    pos = nx.get_node_attributes(graph, "pos")
    samples = nx.get_node_attributes(graph, "sample")
    kinds = sorted(set(samples.values()), key=str)
    palette = plt.get_cmap("tab10")
    colours = [palette(kinds.index(samples[node]) % 10) for node in graph.nodes]
    crossing = [(u, v) for u, v in graph.edges if samples[u] != samples[v]]
    same = [(u, v) for u, v in graph.edges if samples[u] == samples[v]]
    nx.draw_networkx_edges(graph, pos, edgelist=same, ax=ax, edge_color="0.6")
    nx.draw_networkx_edges(graph, pos, edgelist=crossing, ax=ax, edge_color="red", width=2)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=30)
    ax.set_title(f"MST: {len(crossing)} of {graph.number_of_edges()} edges cross (R)")
    if names is None:
        names = {0: "sample A", 1: "sample B"} if set(kinds) <= {0, 1} else {}
    handles = [Line2D([], [], ls="", marker="o", color=palette(k % 10),
                      label=str(names.get(kind, kind))) for k, kind in enumerate(kinds)]
    handles += [Line2D([], [], color="0.6", label="edge within a sample"),
                Line2D([], [], color="red", lw=2, label="edge across (counted in R)")]
    ax.legend(handles=handles, fontsize="small", loc="best")
    return ax
