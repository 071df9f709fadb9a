"""The MST as SciPy before 1.11 stored it, for the published count of 2020 (method.md 4c).

The published code reads its cross-edge count off ``scipy.sparse.csgraph.minimum_spanning_tree``
as a CSR matrix (section 4c), so the count depends on *where* each tree edge is stored: at
(smaller, larger) index or at (larger, smaller). That storage is an accident of SciPy's
implementation, and it changed in SciPy 1.11:

- the dense distance matrix is turned into a CSR graph holding both copies of every edge,
  (i, j) and (j, i), row by row (entries within 1e-8 of zero, infinite or NaN are not edges);
- Kruskal's algorithm visits the stored entries in the order ``np.argsort(data)`` gives and
  keeps an entry when it joins two components; the other copy of the edge is dropped later;
- the kept entries stay where they were, so each tree edge is stored as whichever copy the sort
  put first.

SciPy 1.11 sorts with ``kind="stable"``: equal values keep their CSR order, the (i, j) copy with
i < j always comes first, and every edge is stored at (smaller, larger). SciPy before 1.11 used
NumPy's default introsort, which does not keep equal values in order; about half the edges come
out stored the other way round, which is what the published count read in 2020.

This module re-implements that older path without SciPy: NumPy's argsort introsort for float64
as NumPy up to 1.24 ran it (median-of-three quicksort, insertion sort below 16 elements, heapsort
past a depth of 2 log2 n; NumPy 1.25 added an AVX-512 argsort on some CPUs), and SciPy's Kruskal
over the CSR entries. ``legacy_tree_entries`` returns the stored entries in CSR order;
``tests/data/scipy_tree_reference.json`` holds what SciPy 1.10.1 with NumPy 1.24.4 stores on
seeded data (``benchmarks/scipy_tree_reference.py`` remakes it) and the tests compare.
"""
from __future__ import annotations

import numpy as np

from . import _fused_prim

_SMALL_QUICKSORT = 15  # partitions of at most 16 elements are insertion-sorted
_NULL_ATOL = 1e-8  # np.ma.masked_values(graph, 0): entries within 1e-8 of zero are not edges

_KERNELS: dict = {}


def _less(a: float, b: float) -> bool:
    """NumPy's float64 ordering: NaN sorts last."""
    return a < b or (b != b and a == a)


def _heapsort(v, tosort, start, n):  # pragma: no cover - compiled by numba
    """NumPy's argsort heapsort on ``tosort[start: start + n]`` (1-based heap indexing)."""
    for l in range(n >> 1, 0, -1):
        tmp = tosort[start + l - 1]
        i = l
        j = l << 1
        while j <= n:
            if j < n and _less(v[tosort[start + j - 1]], v[tosort[start + j]]):
                j += 1
            if _less(v[tmp], v[tosort[start + j - 1]]):
                tosort[start + i - 1] = tosort[start + j - 1]
                i = j
                j += j
            else:
                break
        tosort[start + i - 1] = tmp
    while n > 1:
        tmp = tosort[start + n - 1]
        tosort[start + n - 1] = tosort[start]
        n -= 1
        i = 1
        j = 2
        while j <= n:
            if j < n and _less(v[tosort[start + j - 1]], v[tosort[start + j]]):
                j += 1
            if _less(v[tmp], v[tosort[start + j - 1]]):
                tosort[start + i - 1] = tosort[start + j - 1]
                i = j
                j += j
            else:
                break
        tosort[start + i - 1] = tmp


def _argsort(v):  # pragma: no cover - compiled by numba
    """``np.argsort(v)`` (kind "quicksort") as NumPy <= 1.24 computed it for float64."""
    num = len(v)
    tosort = np.arange(num)
    if num < 2:
        return tosort
    stack = np.empty(256, dtype=np.int64)  # pairs (pl, pr): depth at most 2 log2(num)
    depths = np.empty(128, dtype=np.int64)
    sp = 0
    dp = 0
    msb = 0
    m = num
    while m > 1:
        m >>= 1
        msb += 1
    cdepth = msb * 2
    pl = 0
    pr = num - 1
    while True:
        if cdepth < 0:
            _heapsort(v, tosort, pl, pr - pl + 1)
        else:
            while pr - pl > _SMALL_QUICKSORT:
                pm = pl + ((pr - pl) >> 1)
                if _less(v[tosort[pm]], v[tosort[pl]]):
                    tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
                if _less(v[tosort[pr]], v[tosort[pm]]):
                    tosort[pr], tosort[pm] = tosort[pm], tosort[pr]
                if _less(v[tosort[pm]], v[tosort[pl]]):
                    tosort[pm], tosort[pl] = tosort[pl], tosort[pm]
                vp = v[tosort[pm]]
                pi = pl
                pj = pr - 1
                tosort[pm], tosort[pj] = tosort[pj], tosort[pm]
                while True:
                    pi += 1
                    while _less(v[tosort[pi]], vp):
                        pi += 1
                    pj -= 1
                    while _less(vp, v[tosort[pj]]):
                        pj -= 1
                    if pi >= pj:
                        break
                    tosort[pi], tosort[pj] = tosort[pj], tosort[pi]
                pk = pr - 1
                tosort[pi], tosort[pk] = tosort[pk], tosort[pi]
                if pi - pl < pr - pi:  # the larger part waits on the stack
                    stack[sp] = pi + 1
                    stack[sp + 1] = pr
                    pr = pi - 1
                else:
                    stack[sp] = pl
                    stack[sp + 1] = pi - 1
                    pl = pi + 1
                sp += 2
                cdepth -= 1
                depths[dp] = cdepth
                dp += 1
            for pi in range(pl + 1, pr + 1):  # insertion sort
                vi = tosort[pi]
                vv = v[vi]
                pj = pi
                while pj > pl and _less(vv, v[tosort[pj - 1]]):
                    tosort[pj] = tosort[pj - 1]
                    pj -= 1
                tosort[pj] = vi
        if sp == 0:
            break
        sp -= 2
        pl = stack[sp]
        pr = stack[sp + 1]
        dp -= 1
        cdepth = depths[dp]
    return tosort


def _kruskal_entries(dist):  # pragma: no cover - compiled by numba
    """The (row, column) entries SciPy < 1.11 stores for the MST of a dense matrix, CSR order.

    ``dist`` is a float64 (N, N) matrix; entry (i, j) is an edge unless it is within 1e-8 of
    zero, infinite or NaN. Returns an (edges, 2) int64 array, rows in order and columns in
    order within a row; fewer than N - 1 edges when the graph is not connected.
    """
    n = dist.shape[0]
    count = 0
    for i in range(n):
        for j in range(n):
            w = dist[i, j]
            if not (abs(w) <= _NULL_ATOL or np.isinf(w) or np.isnan(w)):
                count += 1
    data = np.empty(count, dtype=np.float64)
    rows = np.empty(count, dtype=np.int64)
    cols = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(n):
        for j in range(n):
            w = dist[i, j]
            if not (abs(w) <= _NULL_ATOL or np.isinf(w) or np.isnan(w)):
                data[k] = w
                rows[k] = i
                cols[k] = j
                k += 1
    order = _argsort(data)
    root = np.arange(n)
    rank = np.zeros(n, dtype=np.int64)
    kept = np.zeros(count, dtype=np.bool_)
    joined = 0
    for t in range(count):
        if joined >= n - 1:
            break
        e = order[t]
        r1 = rows[e]
        while root[r1] != r1:
            r1 = root[r1]
        r2 = cols[e]
        while root[r2] != r2:
            r2 = root[r2]
        if r1 != r2:
            joined += 1
            if rank[r1] > rank[r2]:
                root[r2] = r1
            elif rank[r1] < rank[r2]:
                root[r1] = r2
            else:
                root[r2] = r1
                rank[r1] += 1
            kept[e] = True
    out = np.empty((joined, 2), dtype=np.int64)
    k = 0
    for e in range(count):  # CSR order: kept entries stay where they were stored
        if kept[e]:
            out[k, 0] = rows[e]
            out[k, 1] = cols[e]
            k += 1
    return out


def _published_counts(child_rows, parent_rows, child_offsets, parent_offsets, order,
                      n_joint):  # pragma: no cover - compiled by numba
    """Published counts (SciPy < 1.11 storage) of trees whose distances are sums of two rows.

    Tree t's distance matrix, in this module's point order (bootstrapped first), is
    ``child_rows[child_offsets[t] + v, :points] + parent_rows[parent_offsets[t] + v, :points]``
    for row v; ``order`` lists the points in the published order (joint first). The matrix is
    made exactly symmetric from its upper triangle in the published order, as a distance matrix
    computed pair by pair is.
    """
    trees = len(child_offsets)
    points = len(order)
    counts = np.empty(trees, dtype=np.int64)
    for t in range(trees):
        dist = np.zeros((points, points), dtype=np.float64)
        for a in range(points):
            va = order[a]
            for b in range(a + 1, points):
                vb = order[b]
                w = np.float64(child_rows[child_offsets[t] + va, vb]) + np.float64(
                    parent_rows[parent_offsets[t] + va, vb])
                w = np.sqrt(max(w, 0.0))
                dist[a, b] = w
                dist[b, a] = w
        entries = _kruskal_entries(dist)
        c = 0
        for k in range(len(entries)):
            if (entries[k, 1] >= n_joint) != (k >= n_joint):
                c += 1
        counts[t] = c
    return counts


def _kernel(name: str):
    """The numba-compiled kernel ``name`` (compiled on first use, then kept)."""
    if name not in _KERNELS:
        _fused_prim._load_numba()
        jit = _fused_prim.numba.njit(nogil=True, cache=False)
        less = jit(_less)
        heap = _fused_prim.numba.njit(nogil=True)(_bind(_heapsort, _less=less))
        argsort = jit(_bind(_argsort, _less=less, _heapsort=heap))
        kruskal = jit(_bind(_kruskal_entries, _argsort=argsort))
        counts = jit(_bind(_published_counts, _kruskal_entries=kruskal))
        heap_argsort = jit(_bind(_heap_argsort, _heapsort=heap))
        _KERNELS.update(argsort=argsort, kruskal=kruskal, counts=counts, heap=heap_argsort)
    return _KERNELS[name]


def _bind(function, **names):
    """``function`` with the global ``names`` replaced (numba resolves globals at compile time)."""
    import types

    scope = dict(function.__globals__)
    scope.update(names)
    return types.FunctionType(function.__code__, scope, function.__name__,
                              function.__defaults__, function.__closure__)


def _heap_argsort(v):  # pragma: no cover - compiled by numba
    """``np.argsort(v, kind="heapsort")`` as NumPy <= 1.24 computed it (the introsort's
    fallback past its depth limit)."""
    tosort = np.arange(len(v))
    _heapsort(v, tosort, 0, len(v))
    return tosort


def legacy_heap_argsort(values) -> np.ndarray:
    """The heapsort the introsort falls back on, alone (for the tests)."""
    return _kernel("heap")(np.ascontiguousarray(values, dtype=np.float64))


def legacy_argsort(values) -> np.ndarray:
    """``np.argsort(values)`` for float64 as NumPy <= 1.24 ordered it (introsort, unstable)."""
    return _kernel("argsort")(np.ascontiguousarray(values, dtype=np.float64))


def legacy_tree_entries(dist) -> np.ndarray:
    """Entries ``(row, column)`` that SciPy < 1.11 stores for ``minimum_spanning_tree(dist)``.

    ``dist`` is a dense (N, N) matrix of edge weights (0 means no edge). Returns an (edges, 2)
    int64 array in CSR order: this is ``tree.nonzero()`` of SciPy 1.10's result, row by row.
    """
    dist = np.ascontiguousarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be a square matrix; got shape {dist.shape}")
    return _kernel("kruskal")(dist)


def published_count_of_entries(entries, n_joint: int) -> int:
    """The published reading of stored tree entries: ``sum(indices[k] >= n_joint != k >= n_joint)``.

    ``entries`` as ``legacy_tree_entries`` returns them, with the joint points labelled
    ``0 .. n_joint - 1`` (section 4c).
    """
    entries = np.asarray(entries)
    k = np.arange(len(entries))
    return int(((entries[:, 1] >= n_joint) != (k >= n_joint)).sum())


def published_counts_2020(child_rows, parent_rows, child_offsets, parent_offsets, n_boot: int,
                          n_joint: int) -> np.ndarray:
    """Counts of a batch of trees read as SciPy < 1.11 stored them (``_block_engine``'s layout).

    ``child_rows`` and ``parent_rows`` are float32 (rows, width) stacks of squared-distance rows,
    ``child_offsets[t] + v`` (and ``parent_offsets[t] + v``) the row of point v of tree t. Points
    are bootstrapped first in these rows; the published code orders them joint first.
    """
    order = np.concatenate([np.arange(n_boot, n_boot + n_joint), np.arange(n_boot)])
    return _kernel("counts")(child_rows, parent_rows, np.asarray(child_offsets, np.int64),
                             np.asarray(parent_offsets, np.int64), order.astype(np.int64),
                             n_joint)
