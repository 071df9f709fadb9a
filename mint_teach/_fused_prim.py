"""Prim's algorithm over distances made on the fly, compiled with numba, for the CPU.

The batched Prim of ``_block_engine`` reads, at every step of every tree, a stored row of the
child part and a stored row of the parent part. At 6,500 rows each part is 75 MB, so those
reads come from main memory, and memory traffic, not arithmetic, sets the pace. Here only the
Z-distances over all parent units (``P`` at the tree's points, shared by every pair) are stored;
the group terms are recomputed for each row from the groups' coordinates, which are few (a
child group of 3 units, a parent group of 2 at the paper's 250 x 100 groups) and stay in cache:

    row_v[u] = max(P[v, u] - |yz_v - yz_u|^2, 0) + |yy_v - yy_u|^2 + |x_v - x_u|^2

where ``yz`` is the parent group at the points' own rows (the Y-part of P, taken out to leave
Z), ``yy`` the parent group at the rows the points take their y from, and ``x`` the child
group. One tree is grown per thread, start to end, with the same tie rules as
``graphs.prim_rows`` (the earliest tree node, then the lowest node index).
"""
from __future__ import annotations

import numpy as np

from importlib.util import find_spec

# numba is imported only when a kernel is first compiled: importing it (and LLVM) costs about
# 100 MB, which a notebook that never grows a paper-size tree should not pay.
AVAILABLE = find_spec("numba") is not None  # else the torch path of _block_engine is used
numba = None  # the module, once _load_numba has run


def _load_numba() -> None:
    global numba
    if numba is None:
        import numba as module

        numba = module


_KERNELS: dict = {}


def _update_source(dz: int, dy: int, dx: int) -> str:
    """Source of one Prim step's pass over the nodes, written out for these group widths.

    Each unit's coordinate of the node just added is a local scalar and each unit's term a
    line of its own, so the pass over the nodes has no inner loop and vectorises.
    """
    def terms(array: str, acc: str, width: int) -> list[str]:
        sign = "-" if acc == "z" else "+"
        return [f"        t = {array}{k} - {array}[{k}, u]\n        {acc} {sign}= t * t"
                for k in range(width)]

    head = [f"    {a}{k} = {a}[{k}, v]" for a, w in (("yz", dz), ("yy", dy), ("x", dx))
            for k in range(w)]
    body = (["        z = zrow[u]", *terms("yz", "z", dz), "        d = max(z, zero)"] if dz
            else ["        d = zero"])
    body += ["        s = zero", *terms("yy", "s", dy), "        c = zero", *terms("x", "c", dx)]
    return "\n".join([
        "def update(zrow, yz, yy, x, v, blocked, dist, parent_out):",
        "    zero = np.float32(0.0)",
        "    nv = np.int32(v)",
        *head,
        "    for u in range(dist.shape[0]):",
        *body,
        "        d = (d + s) + c + blocked[u]",  # the Z part, the Y part, the child part
        "        closer = d < dist[u]",
        "        dist[u] = d if closer else dist[u]",
        "        parent_out[u] = nv if closer else parent_out[u]",
    ]) + "\n"


def _kernel(dz: int, dy: int, dx: int):
    """The compiled tree grower for groups of ``dz`` (0: no Z), ``dy`` and ``dx`` units.

    One kernel is compiled per combination of widths (a second or two) and kept. It is long
    because it writes out one loop nest for the compiler: split into calls, the inner Prim step
    would no longer be compiled as one loop with its distances made on the fly.
    """
    _load_numba()
    key = (dz, dy, dx)
    if key in _KERNELS:
        return _KERNELS[key]
    namespace = {"np": np}
    exec(_update_source(dz, dy, dx), namespace)  # noqa: S102 - our own template, no input
    update = numba.njit(boundscheck=False, nogil=True)(namespace["update"])

    @numba.njit(fastmath={"nnan", "nsz"}, inline="always")
    def nearest(dist):
        """The index of the smallest entry, the lowest index on ties.

        Eight running minima (so the pass vectorises), then the first 64-block holding the
        minimum, then the first index inside it.
        """
        m = len(dist)
        inf = np.float32(np.inf)
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = inf
        n8 = m - m % 8
        for u in range(0, n8, 8):
            a0 = min(a0, dist[u])
            a1 = min(a1, dist[u + 1])
            a2 = min(a2, dist[u + 2])
            a3 = min(a3, dist[u + 3])
            a4 = min(a4, dist[u + 4])
            a5 = min(a5, dist[u + 5])
            a6 = min(a6, dist[u + 6])
            a7 = min(a7, dist[u + 7])
        best = min(min(min(a0, a1), min(a2, a3)), min(min(a4, a5), min(a6, a7)))
        for u in range(n8, m):
            best = min(best, dist[u])
        for start in range(0, m, 64):
            stop = min(start + 64, m)
            hits = 0
            for u in range(start, stop):
                hits += dist[u] == best
            if hits:
                for u in range(start, stop):
                    if dist[u] == best:
                        return u
        return 0

    @numba.njit(boundscheck=False, nogil=True)
    def one_tree(zz, yz, yy, x, parent_out):
        """Grow one MST from node 0; ``parent_out[u]`` is u's neighbour towards node 0."""
        m = x.shape[1]
        inf = np.float32(np.inf)
        dist = np.full(m, inf, dtype=np.float32)  # distance of each outside node to the tree
        blocked = np.zeros(m, dtype=np.float32)  # inf once a node is in the tree
        parent_out[0] = 0
        v = 0
        for _ in range(1, m):
            blocked[v] = inf
            update(zz[v] if dz else zz[0], yz, yy, x, v, blocked, dist, parent_out)
            v = nearest(dist)
            dist[v] = inf  # leaves the candidates; blocked at the next step

    @numba.njit(parallel=True, nogil=True)
    def grow_many(zz, yz, yy, x, js, is_, parents):
        for t in numba.prange(len(js)):
            one_tree(zz, yz[is_[t]], yy[is_[t]], x[js[t]], parents[t])

    _KERNELS[key] = grow_many
    return grow_many


def tree_parents(zz: np.ndarray | None, yz: np.ndarray, yy: np.ndarray, x: np.ndarray,
                 js: np.ndarray, is_: np.ndarray, threads: int) -> np.ndarray:
    """MST of every tree ``(js[t], is_[t])``: ``parents[t, u]`` is u's neighbour towards node 0.

    ``zz`` (points, points) are the squared distances over all parent units at the points'
    rows, None to leave Z out; ``yz`` and ``yy`` (parent groups, units, points) the parent
    groups' coordinates at the points' rows and at their y rows; ``x`` (child groups, units,
    points) the child groups'. Groups narrower than the widest are padded with zero units.
    All float32, C-contiguous. Returns int64 (trees, points); ``parents[t, 0] = 0``.
    """
    _load_numba()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    dz = yz.shape[1] if zz is not None else 0
    if zz is None:
        zz = np.zeros((1, 1), dtype=np.float32)
    parents = np.zeros((len(js), x.shape[2]), dtype=np.int32)
    grow = _kernel(dz, yy.shape[1], x.shape[1])
    grow(zz, yz, yy, x, js.astype(np.int64), is_.astype(np.int64), parents)
    return parents
