"""Cross-edge counts of every (child group, parent group) tree of a layer pair, in batches.

This is the machinery of docs/method.md section 4d behind ``mi.conditional_gmi`` and
``mi.dependency_matrix``: one split of the rows serves every pair, the tree distances are
assembled from squared-distance blocks, and batched Prim grows many trees at once. It returns
Friedman-Rafsky counts; ``mi`` turns them into the statistic.

Three ways of forming the points (the estimators of ``mi.ESTIMATORS``):

- ``"faithful"``: section 4b. Rows are cut into thirds A, B, C; every row of A, in turn, takes
  the y of the row of B whose z is nearest to its own among the rows of B not yet taken.
- ``"published"``: the published implementation (section 4e). The first two thirds are halved
  into A and B; the z of B's k-th row is looked up among A's rows, and the index found (a row
  of A) is used to pick a row of B's y, so the substituted y is unrelated to the point's z.
  The count is the published one (section 4c), read off the tree as a sparse matrix with every
  edge stored at (smaller, larger) index, as SciPy >= 1.11 stores it.
- ``"published-2020"``: the same points; the count as SciPy before 1.11 stored the tree (about
  half the edges at (larger, smaller)), which is what the published code read in 2020
  (``_legacy_tree``). Each tree is rebuilt from its full distance matrix the way SciPy 1.10 did.
- ``"unconditional"``: Z is left out; A takes the y of a random row of B, so the count
  estimates the unconditional GMI I_G(X; Y) on the thirds. A variant, not the paper's method.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import _fused_prim, _legacy_tree
from .graphs import cross_edges, padded_width, pairwise_sq_dists, prim_rows, rescale_together

MODES = ("faithful", "published", "published-2020", "unconditional")
PUBLISHED_MODES = ("published", "published-2020")  # crossed indices, published split and count

_ROUNDING = 1e-5  # float32 rounding of a squared distance, relative to |a|^2 + |b|^2
_PARTS_BUDGET_BYTES = 512 * 2**20  # memory for the child and parent parts held at once
_CPU_PRIM_ELEMENTS = 2**18  # on CPU, trees per Prim batch * points per tree (fits in cache)
_GPU_PRIM_ELEMENTS = 2**26  # on a GPU, as many trees as memory comfortably allows
_USE_FUSED = True  # on CPU, use _fused_prim when numba is installed (tests switch it off)
_FUSED_MIN_ELEMENTS = 2**32  # ... for problems of at least this many pairs * points^2 (below
# that the torch path finishes within seconds, less than compiling a kernel takes)
_FUSED_BATCH_ELEMENTS = 2**20  # trees per compiled-Prim call * points (for the progress bar)


def split_rows(n: int, generator: torch.Generator, mode: str = "faithful"
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle ``n`` row indices and cut them into A, B, C.

    Faithful and unconditional: thirds (C takes the remainder). Published: the first
    ``2n // 3`` shuffled rows are halved into A and B (B takes the odd one), C is the rest.
    """
    rows = torch.randperm(n, generator=generator)
    if mode in PUBLISHED_MODES:
        train = 2 * n // 3
        return rows[: train // 2], rows[train // 2: train], rows[train:]
    third = n // 3
    return rows[:third], rows[third: 2 * third], rows[2 * third:]


def first_nearest(dists: torch.Tensor, rounding: torch.Tensor) -> torch.Tensor:
    """Column of the smallest distance in each row, ties going to the first column.

    Distances that are equal in exact arithmetic (rows with identical z, common with ReLU
    zeros) can come out a rounding error apart, so entries within ``rounding`` of the row's
    smallest count as ties.
    """
    tied = dists <= dists.min(dim=1, keepdim=True).values + rounding
    return tied.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximal entry


def nearest_unused(dists: torch.Tensor, rounding: torch.Tensor) -> torch.Tensor:
    """For each row in turn, the nearest column no earlier row has taken (ties: first column).

    The faithful bootstrap's matching (section 4b): row k of A takes the row of B nearest in
    z among those rows 0..k-1 left free, so no B row lends its y twice. Entries within
    ``rounding`` of the smallest free one count as ties, as in ``first_nearest``. Reusing a B
    row puts two bootstrapped points with one y and nearby z side by side, which the tree
    joins, a bias of about +0.1 to +0.25 on independent data (docs/method.md 4b). Needs at
    least as many columns as rows; returns the column of each row, on ``dists``' device.
    """
    n_rows, n_columns = dists.shape
    if n_rows > n_columns:
        raise ValueError(f"nearest_unused needs at least as many columns as rows; got "
                         f"{n_rows} rows and {n_columns} columns")
    d = dists.detach().cpu().numpy().astype(np.float64)  # exact for float32 input
    slack = rounding.detach().cpu().numpy().astype(np.float64)
    taken = np.zeros(n_columns)  # +inf once a column is taken
    out = np.empty(n_rows, dtype=np.int64)
    for k in range(n_rows):
        row = d[k] + taken
        column = int(np.argmax(row <= row.min() + slack[k]))  # the first of the ties
        out[k] = column
        taken[column] = np.inf
    return torch.from_numpy(out).to(dists.device)


def published_count(edges: torch.Tensor, n_boot: int, n_joint: int) -> torch.Tensor:
    """The published cross-edge count of trees over (bootstrapped, joint) points.

    The published code puts the joint points first (labels ``0 .. n_joint - 1``) and the
    bootstrapped points after them, stores the tree as a sparse matrix with each edge at
    (smaller label, larger label), rows in order, and counts the positions ``k`` of the
    stored entries for which the column ``indices[k]`` and ``k`` itself fall on different
    sides of ``n_joint`` (section 4c). ``edges`` are in this module's labels (bootstrapped
    first), shape ``(trees, points - 1, 2)``; returns one count per tree.
    """
    labels = torch.where(edges < n_boot, edges + n_joint, edges - n_boot)
    low, high = labels.min(dim=-1).values, labels.max(dim=-1).values
    order = (low * (n_boot + n_joint) + high).argsort(dim=-1)  # row-major sparse order
    columns = high.gather(-1, order)
    position = torch.arange(columns.shape[-1])
    return ((columns >= n_joint) != (position >= n_joint)).sum(-1)


def block_counts(
    parent: torch.Tensor,
    child: torch.Tensor,
    parent_bounds: list[tuple[int, int]],
    child_bounds: list[tuple[int, int]],
    generator: torch.Generator,
    device: torch.device,
    progress: bool,
    mode: str = "faithful",
) -> tuple[torch.Tensor, int, int]:
    """Cross-edge counts of every (child group, parent group) pair from one split of the rows.

    Returns ``(counts, n_boot, n_joint)``: a float64 ``(len(child_bounds), len(parent_bounds))``
    tensor of counts (the published count in published mode) and the sizes of the two samples.

    The points of every tree are, in this order, the |A| bootstrapped points and the |C|
    joint points. Point k carries the x and z of row ``z_rows[k]`` (A, then C) and the y of
    row ``y_rows[k]`` (the matched B row, then C). Squared distances add over blocks of
    units, so the tree distance matrix of pair (j, i) is the sum of two parts:

        child part j:   Cx_j at (z_rows, z_rows)
        parent part i:  Py_i at (y_rows, y_rows) + (P - Py_i) at (z_rows, z_rows)

    where ``P`` is over all parent units and ``Py_i`` over parent group i (the Z term is
    left out in unconditional mode). Prim then reads one row of each part per step.

    About 60 lines, kept in one piece on purpose: ``parent_part`` and ``child_part`` are
    closures over the rows and the Z-distances prepared here, shared by both engines.
    """
    a_rows, b_rows, c_rows = split_rows(parent.shape[0], generator, mode)
    random_match = None
    if mode == "unconditional" or any(stop - start == parent.shape[1]
                                      for start, stop in parent_bounds):
        # Z is empty or ignored: no nearest neighbour to find, so match A to B at random
        random_match = torch.randperm(len(b_rows), generator=generator)[: len(a_rows)]
        random_match = random_match.to(device)
    parent, child = rescale_together(parent, child)  # a tree does not depend on the scale
    # centring changes no distance but keeps float32's |a|^2 + |b|^2 - 2 a.b accurate
    parent = (parent - parent.mean(dim=0)).to(device, torch.float32)
    child = (child - child.mean(dim=0)).to(device, torch.float32)
    a_rows, b_rows, c_rows = a_rows.to(device), b_rows.to(device), c_rows.to(device)
    z_rows = torch.cat([a_rows, c_rows])
    n_boot, n_joint = len(a_rows), len(c_rows)
    points = n_boot + n_joint

    # P, all parent units, at the only rows the estimate needs
    whole = None
    if mode != "unconditional":
        whole = (pairwise_sq_dists(parent[a_rows], parent[b_rows]),  # (|A|, |B|): NN search
                 pairwise_sq_dists(parent[z_rows]),  # (points, points): the Z-distances
                 (parent * parent).sum(dim=1))  # |row|^2, to tell rounding from distance

    def parent_part(i: int) -> torch.Tensor:
        y = parent[:, slice(*parent_bounds[i])]
        return _parent_part(y, whole, (a_rows, b_rows, c_rows), random_match, mode)

    def child_part(j: int) -> torch.Tensor:
        return pairwise_sq_dists(child[z_rows, slice(*child_bounds[j])])  # Cx_j

    legacy = None
    if mode == "published-2020":  # SciPy < 1.11's tree, rebuilt from each distance matrix
        legacy = partial(_legacy_counts, n_boot=n_boot, n_joint=n_joint)
        count = None
    elif mode == "published":
        count = partial(published_count, n_boot=n_boot, n_joint=n_joint)
    else:
        membership = torch.cat([torch.zeros(n_boot, dtype=torch.long),
                                torch.ones(n_joint, dtype=torch.long)])
        count = partial(cross_edges, membership=membership)
    counts = torch.empty(len(child_bounds), len(parent_bounds), dtype=torch.float64)
    if legacy is None and _fused(device, counts.numel() * points**2):
        matches = [_match(parent[:, slice(*b)], whole, (a_rows, b_rows, c_rows), random_match,
                          mode) for b in parent_bounds]
        coords = _group_coordinates(parent, child, parent_bounds, child_bounds, matches,
                                    z_rows, c_rows)
        _fill_counts_fused(counts, None if whole is None else whole[1], coords, count, progress)
    else:
        _fill_counts(counts, parent_part, child_part, points, count, device, progress, legacy)
    return counts, n_boot, n_joint


def _fused(device: torch.device, elements: int) -> bool:
    """Whether to grow the trees with ``_fused_prim`` (compiled, CPU) instead of torch."""
    return (device.type == "cpu" and _fused_prim.AVAILABLE and _USE_FUSED
            and elements >= _FUSED_MIN_ELEMENTS)


def _group_coordinates(parent: torch.Tensor, child: torch.Tensor, parent_bounds: list,
                       child_bounds: list, matches: list, z_rows: torch.Tensor,
                       c_rows: torch.Tensor) -> tuple:
    """Every group's coordinates at the tree points, as ``_fused_prim.tree_parents`` wants.

    Returns float32 numpy arrays ``yz`` and ``yy`` (parent groups, widest group, points): the
    parent group at the points' own rows and at the rows they take y from, and ``x`` (child
    groups, widest group, points); narrower groups are padded with zero units.
    """
    def stacked(matrix: torch.Tensor, bounds: list, rows_of: Callable[[int], torch.Tensor]):
        width = max(stop - start for start, stop in bounds)
        out = torch.zeros(len(bounds), width, len(z_rows))
        for g, (start, stop) in enumerate(bounds):
            out[g, : stop - start] = matrix[rows_of(g), start:stop].T.cpu()
        return out.numpy()

    yz = stacked(parent, parent_bounds, lambda i: z_rows)
    yy = stacked(parent, parent_bounds, lambda i: torch.cat([matches[i], c_rows]))
    return yz, yy, stacked(child, child_bounds, lambda j: z_rows)


def _fill_counts_fused(counts: torch.Tensor, whole_zz: torch.Tensor | None, coords: tuple,
                       count: Callable, progress: bool) -> None:
    """Write the count of tree (j, i) into ``counts[j, i]`` with the compiled Prim (CPU)."""
    yz, yy, x = coords
    zz = None if whole_zz is None else whole_zz.contiguous().numpy()
    points = x.shape[2]
    js, is_ = (g.reshape(-1) for g in torch.meshgrid(torch.arange(counts.shape[0]),
                                                     torch.arange(counts.shape[1]),
                                                     indexing="ij"))
    threads = torch.get_num_threads()
    batch = max(threads, _FUSED_BATCH_ELEMENTS // points // threads * threads)
    added = torch.arange(1, points).expand(batch, -1)
    bar = tqdm(total=counts.numel(), desc="conditional GMI", unit="pair", disable=not progress)
    for k in range(0, len(js), batch):
        j, i = js[k: k + batch], is_[k: k + batch]
        parents = torch.from_numpy(_fused_prim.tree_parents(zz, yz, yy, x, j.numpy(), i.numpy(),
                                                            threads))
        edges = torch.stack([parents[:, 1:].long(), added[: len(j)]], dim=-1)
        counts[j, i] = count(edges).double()
        bar.update(len(j))
    bar.close()


def _fill_counts(counts: torch.Tensor, parent_part: Callable, child_part: Callable,
                 points: int, count: Callable, device: torch.device, progress: bool,
                 legacy: Callable | None = None) -> None:
    """Write the count of tree (j, i) into ``counts[j, i]``, chunk by chunk of parts.

    ``legacy``, when given, counts a batch of trees from the parts itself
    (``_legacy_counts``) instead of growing them by Prim and applying ``count``.
    """
    n_child, n_parent = counts.shape
    parent_chunk, child_chunk = _chunk_sizes(n_parent, n_child, points)
    bar = tqdm(total=counts.numel(), desc="conditional GMI", unit="pair", disable=not progress)
    with _cpu_workers(device) as (run, workers):
        for p0 in range(0, n_parent, parent_chunk):
            parent_ids = range(p0, min(p0 + parent_chunk, n_parent))
            parent_parts = _stack(run, parent_part, parent_ids, points, device)
            for c0 in range(0, n_child, child_chunk):
                child_ids = range(c0, min(c0 + child_chunk, n_child))
                child_parts = _stack(run, child_part, child_ids, points, device)
                tree_counts = (partial(_tree_counts, child_parts, parent_parts, count)
                               if legacy is None else partial(legacy, child_parts, parent_parts))
                batches = _pair_batches(len(child_ids), len(parent_ids), points, device, workers)
                for (j, i), r in zip(batches, run(tree_counts, batches)):
                    counts[j + c0, i + p0] = r.double()
                    bar.update(len(r))
    bar.close()


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


def _match(y: torch.Tensor, whole: tuple | None, rows: tuple, random_match: Any,
           mode: str) -> torch.Tensor:
    """The B row each bootstrapped point takes its y from, for parent group ``y`` (4b, 4e)."""
    a_rows, b_rows, _ = rows
    if random_match is not None:
        return b_rows[random_match]
    whole_ab, _, whole_norms = whole
    z_ab = whole_ab - pairwise_sq_dists(y[a_rows], y[b_rows])  # Z-distances, A to B
    # identical z rows (ReLU zeros) differ only by rounding here
    rounding = _ROUNDING * (whole_norms[a_rows, None] + whole_norms[None, b_rows])
    if mode in PUBLISHED_MODES:  # B's k-th z is looked up in A; the index found picks B's y
        return b_rows[first_nearest(z_ab.T[: len(a_rows)], rounding.T[: len(a_rows)])]
    return b_rows[nearest_unused(z_ab, rounding)]  # the free row of B nearest in z


def _parent_part(y: torch.Tensor, whole: tuple | None, rows: tuple, random_match: Any,
                 mode: str) -> torch.Tensor:
    """Parent-unit part of the tree distances for one parent group ``y`` (4b, 4d).

    ``Py_i`` (distances over the group's units) is computed only at the rows needed; the
    Z-distances (other parent units) are then ``P - Py_i``. Returns ``(points, points)``.
    """
    a_rows, _, c_rows = rows
    y_rows = torch.cat([_match(y, whole, rows, random_match, mode), c_rows])
    part = pairwise_sq_dists(y[y_rows])  # Y part: bootstrapped points take y from their match
    if mode == "unconditional":
        return part
    z_rows = torch.cat([a_rows, c_rows])
    z_part = pairwise_sq_dists(y[z_rows]).neg_().add_(whole[1]).clamp_(min=0.0)  # P - Py_i
    return part.add_(z_part)


def _tree_counts(child_parts: torch.Tensor, parent_parts: torch.Tensor, count: Callable,
                 pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Counts of the trees of ``pairs = (js, is_)`` by batched Prim.

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

    return count(prim_rows(row_of, points, len(js)).cpu())


def _legacy_counts(child_parts: torch.Tensor, parent_parts: torch.Tensor,
                   pairs: tuple[torch.Tensor, torch.Tensor], n_boot: int, n_joint: int
                   ) -> torch.Tensor:
    """Published counts of the trees of ``pairs`` with SciPy < 1.11's storage (4c, 2020).

    Each tree's distance matrix (child part plus parent part) goes through SciPy 1.10's path
    (``_legacy_tree``): CSR entries, NumPy's unstable argsort, Kruskal, the published reading.
    """
    js, is_ = pairs
    _, points, width = child_parts.shape
    child_rows = child_parts.view(-1, width).cpu().numpy()
    parent_rows = parent_parts.view(-1, width).cpu().numpy()
    counts = _legacy_tree.published_counts_2020(child_rows, parent_rows, (js * points).numpy(),
                                                (is_ * points).numpy(), n_boot, n_joint)
    return torch.from_numpy(counts)


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
