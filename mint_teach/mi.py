"""Geometric mutual information and the dependency matrix of a layer pair (docs/method.md 4).

Read top to bottom, this module follows the method:

- ``henze_penrose``: how different two samples are, from the cross edges of their MST (4a);
- ``gmi``: unconditional geometric MI, joint sample against a shuffled sample (4a);
- ``nn_bootstrap`` and ``conditional_gmi``: conditional GMI by nearest-neighbour
  bootstrap (4b);
- ``dependency_matrix``: every (child group, parent group) conditional GMI of a layer pair,
  with the block decomposition and batched Prim of section 4d;
- ``split_groups``: contiguous unit groups (section 3).

Randomness: every estimator draws from its own ``torch.Generator`` seeded with ``seed``, so
the same seed gives the same value for numpy arrays and tensors, and ``conditional_gmi`` with
a seed splits the rows exactly as ``dependency_matrix`` with that seed does.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from tqdm.auto import tqdm

from ._validation import (
    check_count,
    check_device,
    check_matrix,
    check_same_rows,
    check_seed,
)
from .graphs import cross_edges, mst, padded_width, pairwise_sq_dists, prim_rows

__all__ = [
    "MIN_ROWS_CONDITIONAL",
    "MIN_ROWS_GMI",
    "conditional_gmi",
    "dependency_matrix",
    "gmi",
    "henze_penrose",
    "hp_from_count",
    "nn_bootstrap",
    "split_groups",
]

MIN_ROWS_GMI = 4  # two halves of at least two rows
MIN_ROWS_CONDITIONAL = 6  # three thirds of at least two rows

_ROUNDING = 1e-5  # float32 rounding of a squared distance, relative to |a|^2 + |b|^2
_PARTS_BUDGET_BYTES = 512 * 2**20  # memory for the child and parent parts held at once
_CPU_PRIM_ELEMENTS = 2**18  # on CPU, trees per Prim batch * points per tree (fits in cache)
_GPU_PRIM_ELEMENTS = 2**26  # on a GPU, as many trees as memory comfortably allows


def split_groups(n_units: int, n_groups: int) -> list[tuple[int, int]]:
    """Split ``n_units`` unit indices into ``n_groups`` contiguous ``(start, stop)`` runs.

    Section 3: sizes differ by at most one, the larger groups first, as
    ``numpy.array_split`` does.

    Examples
    --------
    >>> split_groups(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    n_units = check_count("n_units", n_units)
    n_groups = check_count("n_groups", n_groups, high=n_units, high_means="the number of units")
    size, extra = divmod(n_units, n_groups)
    bounds, start = [], 0
    for group in range(n_groups):
        stop = start + size + (1 if group < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def hp_from_count(r: Any, m: int, n: int) -> Any:
    """Henze-Penrose divergence from a cross-edge count: ``1 - R (m + n) / (2 m n)`` (4a).

    ``r`` may be a number or a tensor of counts.
    """
    return 1.0 - r * (m + n) / (2.0 * m * n)


def henze_penrose(a: Any, b: Any, *, device: torch.device | str | None = None) -> float:
    """Estimate the Henze-Penrose divergence between two samples from their joint MST.

    Section 4a: pool the samples, build the Euclidean MST, count the R edges that join a
    point of ``a`` to a point of ``b``. About 0 for samples from one distribution, near 1 for
    well separated ones; small negative values happen and are kept.

    Parameters
    ----------
    a : array-like, shape (m, d)
    b : array-like, shape (n, d)
    device : torch.device or str, optional
        Device for the MST of large samples; None means CUDA when available.

    Returns
    -------
    float
    """
    a = check_matrix("a", a)
    b = check_matrix("b", b).to(a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same number of features (columns); "
                         f"got a: {a.shape[1]}, b: {b.shape[1]}")
    m, n = a.shape[0], b.shape[0]
    membership = torch.cat([torch.zeros(m, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    edges = mst(torch.cat([a, b]), device=device)
    return float(hp_from_count(cross_edges(edges, membership), m, n))


def _generator(seed: Any) -> torch.Generator:
    """A CPU random generator seeded with ``seed`` (None: a fresh random seed)."""
    seed = check_seed(seed)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def gmi(x: Any, y: Any, *, seed: int | None = None,
        device: torch.device | str | None = None) -> float:
    """Estimate the geometric mutual information I_G(X; Y) of paired samples.

    Section 4a: shuffle the rows and halve them. The first half gives the joint sample
    ``(x, y)``; the second half pairs each ``x`` with the ``y`` of a random other row, a
    sample of p(x) p(y). GMI is the Henze-Penrose divergence between the two.

    Parameters
    ----------
    x : array-like, shape (rows, dx)
    y : array-like, shape (rows, dy)
        Same rows as ``x``; at least ``MIN_ROWS_GMI`` (4) of them.
    seed : int, optional
        Seed for the shuffles.
    device : torch.device or str, optional

    Returns
    -------
    float
        About 0 when X and Y are independent, approaching 1 as they become functions of
        each other.
    """
    x = check_matrix("x", x, min_rows=MIN_ROWS_GMI)
    y = check_matrix("y", y, min_rows=MIN_ROWS_GMI).to(x.device)
    n = check_same_rows(x=x, y=y)
    generator = _generator(seed)
    rows = torch.randperm(n, generator=generator).to(x.device)
    joint_rows, other_rows = rows[: n // 2], rows[n // 2:]
    shuffled = other_rows[torch.randperm(len(other_rows), generator=generator).to(x.device)]
    joint = torch.cat([x[joint_rows], y[joint_rows]], dim=1)
    independent = torch.cat([x[other_rows], y[shuffled]], dim=1)
    return henze_penrose(joint, independent, device=device)


def _split_thirds(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Shuffle ``n`` row indices and cut them into thirds A, B, C (C takes the remainder)."""
    rows = torch.randperm(n, generator=generator)
    third = n // 3
    return rows[:third], rows[third: 2 * third], rows[2 * third:]


def _check_xyz(x: Any, y: Any, z: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate the three matrices of a conditional estimate; ``z`` may have no columns."""
    x = check_matrix("x", x, min_rows=MIN_ROWS_CONDITIONAL)
    y = check_matrix("y", y, min_rows=MIN_ROWS_CONDITIONAL).to(x.device)
    if z is None:
        z = torch.zeros(x.shape[0], 0, dtype=x.dtype, device=x.device)
    z = check_matrix("z", z, min_rows=MIN_ROWS_CONDITIONAL, allow_empty_columns=True)
    check_same_rows(x=x, y=y, z=z)
    return x, y, z.to(x.device)


def nn_bootstrap(x: Any, y: Any, z: Any, *, seed: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the bootstrapped and the joint sample of the conditional GMI estimate.

    Section 4b, spelled out on points: shuffle the rows and cut them into thirds A, B, C.
    For every row ``a`` of A take the row ``b`` of B whose ``z`` is nearest to ``z_a`` (ties,
    up to rounding: the first in B's shuffled order) and form ``(x_a, y_b, z_a)``, a draw from
    p(x|z) p(y|z) p(z). C gives the joint points ``(x_c, y_c, z_c)``. If ``z`` has no
    columns there is nothing to be near, so each ``a`` gets a random distinct ``b``
    (a draw from p(x) p(y)).

    ``henze_penrose(*nn_bootstrap(x, y, z, seed=s))`` is ``conditional_gmi(x, y, z, seed=s)``
    computed the slow, explicit way.

    Returns
    -------
    bootstrapped : torch.Tensor, shape (len(A), dx + dy + dz)
    joint : torch.Tensor, shape (len(C), dx + dy + dz)
    """
    x, y, z = _check_xyz(x, y, z)
    generator = _generator(seed)
    a_rows, b_rows, c_rows = (rows.to(x.device) for rows in _split_thirds(x.shape[0], generator))
    if z.shape[1] == 0:
        match = b_rows[torch.randperm(len(b_rows), generator=generator).to(x.device)]
    else:
        centred = z - z.mean(dim=0)
        norms = (centred * centred).sum(dim=1)
        rounding = _ROUNDING * (norms[a_rows, None] + norms[None, b_rows])
        dists = pairwise_sq_dists(centred[a_rows], centred[b_rows])
        match = b_rows[_first_nearest(dists, rounding)]
    bootstrapped = torch.cat([x[a_rows], y[match], z[a_rows]], dim=1)
    joint = torch.cat([x[c_rows], y[c_rows], z[c_rows]], dim=1)
    return bootstrapped, joint


def conditional_gmi(x: Any, y: Any, z: Any, *, seed: int | None = None,
                    device: torch.device | str | None = None) -> float:
    """Estimate the conditional geometric mutual information I_G(X; Y | Z).

    Section 4b: the Henze-Penrose divergence between the nearest-neighbour bootstrapped
    sample (``nn_bootstrap``) and the joint sample, with m = |A| and n = |C|. It runs the
    same code as ``dependency_matrix`` for a single pair (x the child group, y the parent
    group, z the other parent units), so the two agree for the same seed.

    Parameters
    ----------
    x : array-like, shape (rows, dx)
    y : array-like, shape (rows, dy)
    z : array-like, shape (rows, dz), or None
        The conditioning variable. With no columns (or None) the nearest-neighbour step is
        replaced by a random matching, which estimates I_G(X; Y) on the thirds.
    seed : int, optional
        Seed for the shuffle (and the random matching when ``z`` is empty).
    device : torch.device or str, optional
        None means CUDA when available, else CPU.

    Returns
    -------
    float
        About 0 when X and Y are independent given Z.

    Notes
    -----
    Needs at least ``MIN_ROWS_CONDITIONAL`` (6) rows, two per third.
    """
    x, y, z = _check_xyz(x, y, z)
    parent = torch.cat([y, z], dim=1)  # parent group y = columns [0, dy), z = the rest
    result = _conditional_blocks(parent, x, [(0, y.shape[1])], [(0, x.shape[1])],
                                 _generator(seed), check_device(device), progress=False)
    return float(result[0, 0])


def dependency_matrix(
    parent: Any,
    child: Any,
    *,
    parent_groups: int,
    child_groups: int,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Compute D[j, i] = I_G(child group j; parent group i | other parent units) for a layer pair.

    Section 4 and 4d. The units of each layer are cut into contiguous groups
    (``split_groups``). One shuffle of the rows into thirds A, B, C serves every pair. For
    each parent group the bootstrapped points and their tree distances are assembled from
    squared-distance blocks (``P`` over all parent units, ``Py_i`` over group i, so the
    Z-distances are ``P - Py_i``); for each child group the ``Cx_j`` block. Then one batched
    Prim run per batch of pairs grows all their trees at once, each step reading a row of
    ``Cx_j`` plus a row of the parent part. Pair by pair this is exactly ``conditional_gmi``
    with ``x = child[:, group j]``, ``y = parent[:, group i]``, ``z = parent[:, other units]``
    and the same seed.

    Parameters
    ----------
    parent, child : array-like, shape (rows, parent units) and (rows, child units)
        Activations of the lower and the upper layer on the same rows (at least 6).
    parent_groups, child_groups : int
        How many groups to cut each layer into (1 up to the number of units).
    seed : int, optional
        Seed for the shuffle of the rows.
    device : torch.device or str, optional
        None means CUDA when available, else CPU.
    progress : bool
        Show a progress bar over the pairs.

    Returns
    -------
    torch.Tensor, shape (child_groups, parent_groups), float64, on the CPU

    Notes
    -----
    With ``parent_groups=1`` the only parent group is the whole layer, Z is empty and the
    nearest-neighbour step becomes a random matching (see ``conditional_gmi``). Distances
    are squared Euclidean distances (the MST is the same as for plain distances) in float32,
    after centring each unit's column.
    """
    parent = check_matrix("parent", parent, min_rows=MIN_ROWS_CONDITIONAL)
    child = check_matrix("child", child, min_rows=MIN_ROWS_CONDITIONAL).to(parent.device)
    check_same_rows(parent=parent, child=child)
    parent_groups = check_count("parent_groups", parent_groups, high=parent.shape[1],
                                high_means="the number of parent units")
    child_groups = check_count("child_groups", child_groups, high=child.shape[1],
                               high_means="the number of child units")
    generator = _generator(seed)
    device = check_device(device)
    return _conditional_blocks(parent, child, split_groups(parent.shape[1], parent_groups),
                               split_groups(child.shape[1], child_groups), generator, device,
                               progress)


# --- section 4d: the machinery shared by conditional_gmi and dependency_matrix -------------


def _conditional_blocks(
    parent: torch.Tensor,
    child: torch.Tensor,
    parent_bounds: list[tuple[int, int]],
    child_bounds: list[tuple[int, int]],
    generator: torch.Generator,
    device: torch.device,
    progress: bool,
) -> torch.Tensor:
    """Conditional GMI of every (child group, parent group) pair from one split of the rows.

    The points of every tree are, in this order, the |A| bootstrapped points and the |C|
    joint points. Point k carries the x and z of row ``z_rows[k]`` (A, then C) and the y of
    row ``y_rows[k]`` (the matched B row, then C). Squared distances add over blocks of
    units, so the tree distance matrix of pair (j, i) is the sum of two parts:

        child part j:   Cx_j at (z_rows, z_rows)
        parent part i:  Py_i at (y_rows, y_rows) + (P - Py_i) at (z_rows, z_rows)

    where ``P`` is over all parent units and ``Py_i`` over parent group i. Prim then reads
    one row of each part per step (``_cross_counts``).
    """
    a_rows, b_rows, c_rows = _split_thirds(parent.shape[0], generator)
    random_match = None
    if any(stop - start == parent.shape[1] for start, stop in parent_bounds):
        # Z is empty: no nearest neighbour to find, so match A to B at random (see docstring)
        random_match = torch.randperm(len(b_rows), generator=generator).to(device)
    # centring changes no distance but keeps float32's |a|^2 + |b|^2 - 2 a.b accurate
    parent = (parent - parent.mean(dim=0)).to(device, torch.float32)
    child = (child - child.mean(dim=0)).to(device, torch.float32)
    a_rows, b_rows, c_rows = a_rows.to(device), b_rows.to(device), c_rows.to(device)
    z_rows = torch.cat([a_rows, c_rows])
    n_boot, n_joint = len(a_rows), len(c_rows)
    points = n_boot + n_joint
    membership = torch.cat([torch.zeros(n_boot, dtype=torch.long),
                            torch.ones(n_joint, dtype=torch.long)])

    # P, all parent units, at the only rows the estimate needs
    whole_ab = pairwise_sq_dists(parent[a_rows], parent[b_rows])  # (|A|, |B|): the NN search
    whole_zz = pairwise_sq_dists(parent[z_rows])  # (points, points): the Z-distances
    whole_norms = (parent * parent).sum(dim=1)  # |row|^2, to tell rounding from distance

    def parent_part(i: int) -> torch.Tensor:
        y = parent[:, slice(*parent_bounds[i])]
        return _parent_part(y, whole_ab, whole_zz, whole_norms, a_rows, b_rows, c_rows,
                            random_match)

    def child_part(j: int) -> torch.Tensor:
        return pairwise_sq_dists(child[z_rows, slice(*child_bounds[j])])  # Cx_j

    result = torch.empty(len(child_bounds), len(parent_bounds), dtype=torch.float64)
    parent_chunk, child_chunk = _chunk_sizes(len(parent_bounds), len(child_bounds), points)
    bar = tqdm(total=result.numel(), desc="conditional GMI", unit="pair", disable=not progress)
    with _cpu_workers(device) as (run, workers):
        for p0 in range(0, len(parent_bounds), parent_chunk):
            parent_ids = range(p0, min(p0 + parent_chunk, len(parent_bounds)))
            parent_parts = _stack(run, parent_part, parent_ids, points, device)
            for c0 in range(0, len(child_bounds), child_chunk):
                child_ids = range(c0, min(c0 + child_chunk, len(child_bounds)))
                child_parts = _stack(run, child_part, child_ids, points, device)
                counts = partial(_cross_counts, child_parts, parent_parts, membership)
                batches = _pair_batches(len(child_ids), len(parent_ids), points, device, workers)
                for (j, i), r in zip(batches, run(counts, batches)):
                    result[j + c0, i + p0] = hp_from_count(r.double(), n_boot, n_joint)
                    bar.update(len(r))
    bar.close()
    return result


def _stack(run: Callable, part_of: Callable[[int], torch.Tensor], ids: range, points: int,
           device: torch.device) -> torch.Tensor:
    """Build the parts ``part_of(i)`` for ``i`` in ``ids`` into one float32 stack.

    Each task writes its part straight into its slot, so no more parts than workers exist
    outside the stack at any time. Rows are padded with zeros to ``padded_width(points)``
    columns, the width at which ``prim_rows`` runs fastest.
    """
    stack = torch.zeros(len(ids), points, padded_width(points), device=device)

    def fill(slot: int) -> None:
        stack[slot, :, :points] = part_of(ids[slot])

    for _ in run(fill, range(len(ids))):
        pass
    return stack


def _parent_part(y: torch.Tensor, whole_ab: torch.Tensor, whole_zz: torch.Tensor,
                 whole_norms: torch.Tensor, a_rows: torch.Tensor, b_rows: torch.Tensor,
                 c_rows: torch.Tensor, random_match: torch.Tensor | None) -> torch.Tensor:
    """Parent-unit part of the tree distances for one parent group ``y`` (4b, 4d).

    ``Py_i`` (distances over the group's units) is computed only at the rows needed; the
    Z-distances (other parent units) are then ``P - Py_i``. Returns ``(points, points)``.
    """
    if random_match is None:
        z_ab = whole_ab - pairwise_sq_dists(y[a_rows], y[b_rows])  # Z-distances, A to B
        # nearest B row in z; identical z rows (ReLU zeros) differ only by rounding here
        rounding = _ROUNDING * (whole_norms[a_rows, None] + whole_norms[None, b_rows])
        match = b_rows[_first_nearest(z_ab, rounding)]
    else:
        match = b_rows[random_match]
    y_rows = torch.cat([match, c_rows])  # bootstrapped points take y from their match
    z_rows = torch.cat([a_rows, c_rows])
    part = pairwise_sq_dists(y[z_rows]).neg_().add_(whole_zz).clamp_(min=0.0)  # P - Py_i
    return part.add_(pairwise_sq_dists(y[y_rows]))  # Z part + Y part


def _first_nearest(dists: torch.Tensor, rounding: torch.Tensor) -> torch.Tensor:
    """Column of the smallest distance in each row, ties going to the first column.

    Distances that are equal in exact arithmetic (rows with identical z, common with ReLU
    zeros) can come out a rounding error apart, so entries within ``rounding`` of the row's
    smallest count as ties.
    """
    tied = dists <= dists.min(dim=1, keepdim=True).values + rounding
    return tied.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximal entry


def _cross_counts(child_parts: torch.Tensor, parent_parts: torch.Tensor,
                  membership: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor]
                  ) -> torch.Tensor:
    """Friedman-Rafsky counts R of the trees of ``pairs = (js, is_)`` by batched Prim.

    Tree t joins child part ``js[t]`` and parent part ``is_[t]`` (positions in the stacks).
    """
    js, is_ = pairs
    _, points, width = child_parts.shape
    device = child_parts.device
    child_rows = child_parts.view(-1, width)  # row v of part j is child_rows[j * points + v]
    parent_rows = parent_parts.view(-1, width)
    child_offsets = js.to(device) * points
    parent_offsets = is_.to(device) * points
    row = torch.empty(len(js), width, device=device)  # buffers reused at every step
    parent_row = torch.empty_like(row)

    def row_of(v: torch.Tensor) -> torch.Tensor:
        v = v.to(device)
        torch.index_select(child_rows, 0, child_offsets + v, out=row)
        torch.index_select(parent_rows, 0, parent_offsets + v, out=parent_row)
        return row.add_(parent_row)

    return cross_edges(prim_rows(row_of, points, len(js)), membership)


def _chunk_sizes(n_parent: int, n_child: int, points: int) -> tuple[int, int]:
    """How many parent and child parts to hold at once within ``_PARTS_BUDGET_BYTES``.

    Parent parts are dearer to build (nearest neighbours, gathers), so they are built once
    each; the child parts are rebuilt for every chunk of parent parts when both do not fit.
    """
    slots = max(2, _PARTS_BUDGET_BYTES // (4 * points * padded_width(points)))
    if n_parent + n_child <= slots:
        return n_parent, n_child
    parent = min(n_parent, max(1, slots - min(n_child, slots // 2)))
    child = min(n_child, max(1, slots - parent))
    return parent, child


def _pair_batches(n_child: int, n_parent: int, points: int, device: torch.device,
                  workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut the (j, i) pairs of a chunk into Prim batches of positions ``(js, is_)``.

    A batch holds at most ``_CPU_PRIM_ELEMENTS`` (``_GPU_PRIM_ELEMENTS`` on a GPU) tree
    points; on CPU the number of batches is a multiple of ``workers`` so all cores finish
    together.
    """
    js, is_ = torch.meshgrid(torch.arange(n_child), torch.arange(n_parent), indexing="ij")
    js, is_ = js.reshape(-1), is_.reshape(-1)
    elements = _GPU_PRIM_ELEMENTS if device.type == "cuda" else _CPU_PRIM_ELEMENTS
    n_batches = math.ceil(len(js) * points / elements)
    n_batches = min(len(js), workers * math.ceil(n_batches / workers))
    size = math.ceil(len(js) / n_batches)
    return [(js[k: k + size], is_[k: k + size]) for k in range(0, len(js), size)]


@contextmanager
def _cpu_workers(device: torch.device) -> Iterator[tuple[Callable, int]]:
    """Yield ``(run, workers)``: ``run(fn, items)`` maps ``fn`` over ``items`` in order.

    On CPU the items are spread over ``torch.get_num_threads()`` Python threads, each
    running torch on one core. Prim's steps are many small operations; letting torch split
    every one of them over all cores makes the cores wait for each other at every step, and
    anything else busy on the machine then stalls them all (ten times slower on a shared
    2-core machine). Whole tasks per core avoid that. On a GPU ``run`` is plain ``map``.
    """
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers == 1:
        yield (lambda fn, items: map(fn, items)), 1
        return

    def on_one_core(fn: Callable) -> Callable:
        def task(item: Any) -> Any:
            torch.set_num_threads(1)  # applies to this worker thread only
            return fn(item)
        return task

    pool = ThreadPoolExecutor(workers)
    try:
        yield (lambda fn, items: pool.map(on_one_core(fn), items)), workers
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, drop the queued tasks
        torch.set_num_threads(workers)  # threads started later get the caller's setting back
