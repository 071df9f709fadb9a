"""Geometric mutual information and the dependency matrix of a layer pair (docs/method.md 4).

Read top to bottom, this module follows the method:

- ``henze_penrose``: how different two samples are, from the cross edges of their MST (4a);
- ``gmi``: unconditional geometric MI, joint sample against a shuffled sample (4a);
- ``nn_bootstrap`` and ``conditional_gmi``: conditional GMI by nearest-neighbour
  bootstrap (4b);
- ``dependency_matrix``: every (child group, parent group) conditional GMI of a layer pair,
  with the block decomposition and batched Prim of section 4d (``_block_engine``);
- ``dependency_null``, ``block_pvalues`` and ``reliability``: is D more than noise? D with
  the child rows permuted (freely, or only among rows with nearby Z: the conditional null),
  permutation p-values, and D's agreement with itself (4e);
- ``split_groups``: contiguous unit groups (section 3), from :mod:`mint_teach.groups`.

``estimator="published"`` reproduces the published implementation's statistic (crossed
bootstrap indices and its cross-edge count, sections 4c and 4e) as it runs with today's SciPy;
``"published-2020"`` is the same statistic with the count as SciPy before 1.11 stored the tree,
as the published code ran in 2020 (``_legacy_tree``). The default ``"faithful"`` is the method
as described.

Randomness: every estimator draws from its own ``torch.Generator`` seeded with ``seed``, so
the same seed gives the same value for numpy arrays and tensors, and ``conditional_gmi`` with
a seed splits the rows exactly as ``dependency_matrix`` with that seed does.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from tqdm.auto import tqdm

from ._block_engine import MODES, PUBLISHED_MODES, block_counts, nearest_unused, split_rows
from ._validation import (
    check_choice,
    check_count,
    check_device,
    check_matrix,
    check_same_rows,
    check_seed,
    check_tensor,
    derive_seed,
)
from .graphs import cross_edges, mst, pairwise_sq_dists, rescale_together
from .groups import split_groups  # section 3; mt.mi.split_groups, as notebooks 03-04 call it

__all__ = [
    "MIN_ROWS_CONDITIONAL",
    "MIN_ROWS_GMI",
    "ESTIMATORS",
    "NULLS",
    "block_pvalues",
    "conditional_gmi",
    "constant_groups",
    "dependency_matrix",
    "dependency_null",
    "gmi",
    "henze_penrose",
    "hp_from_count",
    "legacy_tree_entries",
    "nn_bootstrap",
    "published_value",
    "reliability",
    "spearman_brown",
    "split_groups",
]

MIN_ROWS_GMI = 4  # two halves of at least two rows
MIN_ROWS_CONDITIONAL = 6  # three thirds of at least two rows

_ROUNDING = 1e-5  # float32 rounding of a squared distance, relative to |a|^2 + |b|^2
_NULL_BUDGET_BYTES = 2**31  # the most memory dependency_null's result may take
# The one list of estimator names: mi, MintConfig, the command line and the benchmarks read it.
ESTIMATORS = MODES  # "faithful" (4b), "published" and "published-2020" (4c, 4e), "unconditional"


def hp_from_count(r: Any, m: int, n: int) -> Any:
    """Henze-Penrose divergence from a cross-edge count: ``1 - R (m + n) / (2 m n)`` (4a).

    ``r`` may be a number or a tensor of counts. Two samples of 50 points that the tree joins
    by 10 cross edges are far apart; 50 cross edges, as many as two samples from one
    distribution give on average, mean no divergence:

    >>> hp_from_count(10, 50, 50)
    0.8
    >>> hp_from_count(50, 50, 50)
    0.0
    """
    m, n = check_count("m", m), check_count("n", n)  # sample sizes: both samples non-empty
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
    For every row ``a`` of A in turn take the row ``b`` of B whose ``z`` is nearest to
    ``z_a`` among the rows of B no earlier ``a`` took (ties, up to rounding: the first in B's
    shuffled order) and form ``(x_a, y_b, z_a)``, a draw from p(x|z) p(y|z) p(z); no row of
    B lends its y twice (reusing one biases the estimate upwards, docs/method.md 4b). C gives
    the joint points ``(x_c, y_c, z_c)``. If ``z`` has no columns there is nothing to be
    near, so each ``a`` gets a random distinct ``b`` (a draw from p(x) p(y)).

    ``henze_penrose(*nn_bootstrap(x, y, z, seed=s))`` is ``conditional_gmi(x, y, z, seed=s)``
    computed the slow, explicit way.

    Returns
    -------
    bootstrapped : torch.Tensor, shape (len(A), dx + dy + dz)
    joint : torch.Tensor, shape (len(C), dx + dy + dz)
    """
    x, y, z = _check_xyz(x, y, z)
    generator = _generator(seed)
    a_rows, b_rows, c_rows = (rows.to(x.device) for rows in split_rows(x.shape[0], generator))
    if z.shape[1] == 0:
        match = b_rows[torch.randperm(len(b_rows), generator=generator).to(x.device)]
    else:
        centred = rescale_together(z)[0]  # no overflow or underflow in the distances
        centred = centred - centred.mean(dim=0)
        norms = (centred * centred).sum(dim=1)
        rounding = _ROUNDING * (norms[a_rows, None] + norms[None, b_rows])
        dists = pairwise_sq_dists(centred[a_rows], centred[b_rows])
        match = b_rows[nearest_unused(dists, rounding)]
    bootstrapped = torch.cat([x[a_rows], y[match], z[a_rows]], dim=1)
    joint = torch.cat([x[c_rows], y[c_rows], z[c_rows]], dim=1)
    return bootstrapped, joint


def _check_estimator(estimator: Any) -> str:
    return check_choice("estimator", estimator, ESTIMATORS)


def published_value(r: Any, n_joint: int, n_rows: int) -> Any:
    """The published statistic from its cross-edge count: ``1 - min(R, n_joint) / (n_rows / 3)``.

    Section 4e. With equal samples of ``n_rows / 3`` points this is ``hp_from_count``; the
    published code also caps the count at the size of the joint sample.
    """
    if isinstance(r, torch.Tensor):
        return 1.0 - r.clamp(max=n_joint) / (n_rows / 3)
    return 1.0 - min(r, n_joint) / (n_rows / 3)


def constant_groups(matrix: torch.Tensor, bounds: list) -> torch.Tensor:
    """Which groups of units (``bounds``, from ``split_groups``) are constant over the rows.

    A group whose every unit takes one value on every row (dead ReLU units, all zero) carries
    no information; returns a bool tensor, one entry per group, on the CPU.
    """
    constant_units = (matrix == matrix[:1]).all(dim=0).cpu()
    return torch.tensor([bool(constant_units[start:stop].all()) for start, stop in bounds])


def legacy_tree_entries(dist: Any):
    """Where SciPy before 1.11 stored the edges of ``minimum_spanning_tree(dist)`` (4c).

    ``dist`` is a dense (N, N) matrix of edge weights. Returns an (edges, 2) int64 numpy array
    of (row, column) entries in CSR order, as SciPy 1.10 with NumPy 1.24 stored them: about
    half the edges at (larger, smaller) index, where SciPy >= 1.11 stores every edge at
    (smaller, larger). The published count of 2020 reads this storage
    (``estimator="published-2020"``). Computed without SciPy (``mint_teach._legacy_tree``).
    """
    from ._legacy_tree import legacy_tree_entries as entries

    return entries(dist)


def _blocks(parent: torch.Tensor, child: torch.Tensor, parent_bounds: list, child_bounds: list,
            seed: Any, device: torch.device, progress: bool, estimator: str) -> torch.Tensor:
    """D for every (child group, parent group) pair: cross-edge counts, then the statistic.

    A constant child or parent group gets D = 0 exactly in the faithful and unconditional
    estimators: I(X; Y | Z) is 0 when X or Y is constant. The trees would not say so: with X
    constant they compare the bootstrapped (y, z) with the joint (y, z), which differ wherever
    the nearest z is not the same z, and dead units would rank as dependent. The published
    modes report what the published statistic gives for such a block (a positive value, so
    dead units keep their connections there): they exist to reproduce that code.
    """
    counts, n_boot, n_joint = block_counts(parent, child, parent_bounds, child_bounds,
                                           _generator(seed), device, progress, estimator)
    if estimator in PUBLISHED_MODES:
        values = published_value(counts, n_joint, parent.shape[0])
    else:
        values = hp_from_count(counts, n_boot, n_joint)
    if estimator not in PUBLISHED_MODES:
        values[constant_groups(child, child_bounds)] = 0.0
        values[:, constant_groups(parent, parent_bounds)] = 0.0
    return values


def conditional_gmi(x: Any, y: Any, z: Any, *, seed: int | None = None,
                    device: torch.device | str | None = None,
                    estimator: str = "faithful") -> float:
    """Estimate the conditional geometric mutual information I_G(X; Y | Z).

    Section 4b: the Henze-Penrose divergence between the nearest-neighbour bootstrapped
    sample (``nn_bootstrap``) and the joint sample, with m = |A| and n = |C|. It runs the
    same code as ``dependency_matrix`` for a single pair (x the child group, y the parent
    group, z the other parent units), so the two agree for the same seed and estimator.

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
    estimator : {"faithful", "published", "published-2020", "unconditional"}
        ``"faithful"`` (default) is section 4b. ``"published"`` reproduces the statistic of
        the published implementation (section 4e): crossed bootstrap indices, so the
        substituted y is unrelated to the point's z, and the published cross-edge count
        (``published_value``) as it reads SciPy >= 1.11's tree (every edge stored at
        (smaller, larger) index); it does not estimate I(X; Y | Z). ``"published-2020"`` is
        the same with the count read off the tree as SciPy < 1.11 stored it (section 4c), as
        the published code ran in 2020; slower (each tree is rebuilt from its full distance
        matrix). ``"unconditional"`` ignores ``z``: block GMI I_G(X; Y) on the thirds, a
        variant, not the paper's method.

    Returns
    -------
    float
        The estimate (faithful estimator): 0 exactly when X or Y is constant (dead units);
        about 0 when X, Y and Z are independent, within a few hundredths (mean over 5 seeds
        of -0.016 to +0.033 at 1,2,2 to 15,25,100 dimensions and 750 to 3,000 rows,
        ``benchmarks/estimator_bias.py``; it was +0.05 to +0.20 when rows of B could lend
        their y twice). Where X and Y both depend on Z and are independent given it, a small
        positive bias remains (about +0.05 at 5, 5, 20 dimensions and 1,500 rows), because
        the nearest z is not the same z; docs/method.md 4b.

    Notes
    -----
    Needs at least ``MIN_ROWS_CONDITIONAL`` (6) rows, two per third.
    """
    estimator = _check_estimator(estimator)
    x, y, z = _check_xyz(x, y, z)
    parent = torch.cat([y, z], dim=1)  # parent group y = columns [0, dy), z = the rest
    result = _blocks(parent, x, [(0, y.shape[1])], [(0, x.shape[1])], seed,
                     check_device(device), False, estimator)
    return float(result[0, 0])


def _check_layer_pair(parent: Any, child: Any, parent_groups: Any, child_groups: Any
                      ) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """Validate a layer pair's activations and group counts; return them and the bounds."""
    parent = check_matrix("parent", parent, min_rows=MIN_ROWS_CONDITIONAL)
    child = check_matrix("child", child, min_rows=MIN_ROWS_CONDITIONAL).to(parent.device)
    check_same_rows(parent=parent, child=child)
    parent_groups = check_count("parent_groups", parent_groups, high=parent.shape[1],
                                high_means="the number of parent units")
    child_groups = check_count("child_groups", child_groups, high=child.shape[1],
                               high_means="the number of child units")
    return (parent, child, split_groups(parent.shape[1], parent_groups),
            split_groups(child.shape[1], child_groups))


def dependency_matrix(
    parent: Any,
    child: Any,
    *,
    parent_groups: int,
    child_groups: int,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    estimator: str = "faithful",
) -> torch.Tensor:
    """Compute D[j, i] = I_G(child group j; parent group i | other parent units) for a layer pair.

    Section 4 and 4d. The units of each layer are cut into contiguous groups
    (``split_groups``). One shuffle of the rows into thirds A, B, C serves every pair. For
    each parent group the bootstrapped points and their tree distances are assembled from
    squared-distance blocks (``P`` over all parent units, ``Py_i`` over group i, so the
    Z-distances are ``P - Py_i``); for each child group the ``Cx_j`` block. Then one batched
    Prim run per batch of pairs grows all their trees at once, each step reading a row of
    ``Cx_j`` plus a row of the parent part (``mint_teach._block_engine``). Pair by pair this
    is exactly ``conditional_gmi`` with ``x = child[:, group j]``, ``y = parent[:, group i]``,
    ``z = parent[:, other units]`` and the same seed and estimator.

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
    estimator : {"faithful", "published", "published-2020", "unconditional"}
        As in ``conditional_gmi``; ``"published"`` is the published implementation's
        statistic with today's SciPy, ``"published-2020"`` with SciPy < 1.11's tree storage,
        ``"unconditional"`` block GMI without Z (a variant).

    Returns
    -------
    torch.Tensor, shape (child_groups, parent_groups), float64, on the CPU
        D[j, i], the estimate for child group j and parent group i.

    Notes
    -----
    With ``parent_groups=1`` the only parent group is the whole layer, Z is empty and the
    nearest-neighbour step becomes a random matching (see ``conditional_gmi``). Distances
    are squared Euclidean distances (the MST is the same as for plain distances) in float32,
    after centring each unit's column.
    """
    estimator = _check_estimator(estimator)
    parent, child, parent_bounds, child_bounds = _check_layer_pair(parent, child, parent_groups,
                                                                   child_groups)
    return _blocks(parent, child, parent_bounds, child_bounds, seed, check_device(device),
                   progress, estimator)


# --- is D more than noise? the permuted-child null and D's reliability (section 4e) ---------


NULLS = ("child", "conditional")
_NULL_BATCH_ELEMENTS = 2**21  # child values held at once by the conditional null's copies (a
# notebook kernel stays under 1.5 GB: 19 permutations of 1,000 x 300 child values peak at about
# 1.06 GB here against 1.56 GB with 2**24, at the same speed)


def dependency_null(
    parent: Any,
    child: Any,
    *,
    parent_groups: int,
    child_groups: int,
    permutations: int = 20,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    estimator: str = "faithful",
    null: str = "child",
    bin_size: int = 2,
) -> torch.Tensor:
    """D recomputed with the child rows permuted: a null distribution for every block.

    Section 4e. Two nulls answer two questions:

    - ``null="child"`` (the permuted-child null): the child rows are permuted freely. That
      breaks every link between a child group and the *whole* parent layer and keeps
      everything else (each layer's own distribution, the estimator's bias). A small p-value
      says "child group j is not independent of the parent layer"; it does not single out
      group i, because the permutation also breaks the child's link with Z.
    - ``null="conditional"`` (a local permutation test): for block (j, i) the child rows are
      permuted only among rows with nearly the same Z, the rest of the parent layer. Rows are
      cut into bins of ``bin_size`` rows close in Z (greedy: a row in random order takes its
      ``bin_size - 1`` nearest unbinned rows), and each permutation shuffles the child rows
      within every bin. That keeps the child's link with Z and breaks only what goes beyond
      it, so a small p-value says "child group j depends on parent group i given the rest".
      It is exact when rows in a bin share Z and approximate otherwise: the farther apart
      the Z of a bin (high-dimensional Z, few rows), the more it also breaks the link with Z
      and the smaller (anti-conservative) its p-values. With one parent group Z is empty and
      it is the permuted-child null.

    Each permutation uses the same ``seed`` for the split of the rows as ``dependency_matrix``
    would, so the null is comparable with ``dependency_matrix(..., seed=seed)``; the
    permutations (and the bins) are drawn with ``seed + 1`` (wrapping past the largest seed,
    2**64 - 1).

    Parameters
    ----------
    parent, child, parent_groups, child_groups, device, estimator
        As in ``dependency_matrix``.
    permutations : int
        How many permuted copies (at least 1; the smallest p-value is 1 / (permutations + 1)).
        The null must fit in 2 GiB: at most ``2**31 / (8 * child_groups * parent_groups)``.
    seed : int, optional
        Seed of the split (and, plus one, of the permutations).
    progress : bool
        Show a progress bar over the permutations.
    null : {"child", "conditional"}
        Which null (above).
    bin_size : int
        Rows per bin of the conditional null (at least 2; 2 swaps the child rows of pairs of
        nearest rows). Ignored by the permuted-child null.

    Returns
    -------
    torch.Tensor, shape (permutations, child_groups, parent_groups), float64
        ``null[k]`` is D under the k-th permutation of the child rows; read by
        ``block_pvalues``.
    """
    estimator = _check_estimator(estimator)
    null = check_choice("null", null, NULLS)
    parent, child, parent_bounds, child_bounds = _check_layer_pair(parent, child, parent_groups,
                                                                   child_groups)
    blocks = len(child_bounds) * len(parent_bounds)
    most = max(1, _NULL_BUDGET_BYTES // (8 * blocks))
    permutations = check_count("permutations", permutations)
    if permutations > most:  # the message names the memory it would take
        raise ValueError(f"permutations must be at most {most} (a null of {blocks} float64 "
                         f"blocks per permutation within {_NULL_BUDGET_BYTES / 2**30:g} GiB); "
                         f"got {permutations}, which needs {permutations * blocks * 8 / 2**30:.3g}"
                         f" GiB")
    bin_size = check_count("bin_size", bin_size, low=2, high=parent.shape[0],
                           high_means="the number of rows")
    seed = check_seed(seed)
    shuffle = _generator(None if seed is None else derive_seed(seed, 1))
    device = check_device(device)
    out = torch.empty(permutations, len(child_bounds), len(parent_bounds), dtype=torch.float64)
    n = child.shape[0]
    if null == "child":
        for k in tqdm(range(permutations), desc="permuted-child null", disable=not progress):
            rows = torch.randperm(n, generator=shuffle).to(child.device)
            out[k] = _blocks(parent, child[rows], parent_bounds, child_bounds, seed, device,
                             False, estimator)
        return out
    bins = _z_bins(parent, parent_bounds, bin_size, shuffle)
    rows = [[_permute_within(bins[i], n, shuffle).to(child.device)
             for i in range(len(parent_bounds))] for _ in range(permutations)]
    # the permuted copies of the child enter one estimate as extra child groups: the trees of
    # different child groups never meet, so this is D of each copy, computed in fewer calls
    width = child.shape[1]
    per_call = max(1, min(permutations, _NULL_BATCH_ELEMENTS // max(1, child.numel())))
    bar = tqdm(total=permutations * len(parent_bounds), desc="conditional null",
               disable=not progress)
    for i, bounds in enumerate(parent_bounds):
        for k0 in range(0, permutations, per_call):
            ks = range(k0, min(k0 + per_call, permutations))
            copies = torch.cat([child[rows[k][i]] for k in ks], dim=1)
            copy_bounds = [(start + c * width, stop + c * width) for c in range(len(ks))
                           for start, stop in child_bounds]
            values = _blocks(parent, copies, [bounds], copy_bounds, seed, device, False,
                             estimator)[:, 0]
            out[k0: k0 + len(ks), :, i] = values.view(len(ks), len(child_bounds))
            bar.update(len(ks))
    bar.close()
    return out


def _z_bins(parent: torch.Tensor, parent_bounds: list, bin_size: int,
            generator: torch.Generator) -> list:
    """For each parent group i, the rows cut into bins close in Z (the other parent units).

    Returns one entry per group: None when Z is empty (the group is the whole layer), else
    ``(members, bin_of)``: every row once, bin by bin, and the bin number of each position.
    Squared Z-distances are ``P - Py_i`` (section 4d), after the same common rescaling and
    centring as the estimate.
    """
    scaled = rescale_together(parent)[0].to(torch.float64).cpu()
    scaled = scaled - scaled.mean(dim=0)
    whole = pairwise_sq_dists(scaled)
    n = parent.shape[0]
    out = []
    for start, stop in parent_bounds:
        if stop - start == parent.shape[1]:
            out.append(None)
            continue
        z = (whole - pairwise_sq_dists(scaled[:, start:stop])).clamp_(min=0.0)
        z.fill_diagonal_(0.0)
        free = torch.ones(n, dtype=torch.bool)
        bins = []
        for row in torch.randperm(n, generator=generator).tolist():
            if not free[row]:
                continue
            free[row] = False
            left = int(free.sum())
            if left == 0:
                bins.append(torch.tensor([row]))
                break
            take = min(bin_size - 1, left)
            if left - take < bin_size and left - take > 0 and take == bin_size - 1:
                take = left  # no bin of fewer than bin_size rows is left over: the last grows
            d = z[row].masked_fill(~free, math.inf)
            near = d.topk(take, largest=False).indices
            free[near] = False
            bins.append(torch.cat([torch.tensor([row]), near]))
        out.append((torch.cat(bins), torch.cat([torch.full((len(b),), float(k))
                                                for k, b in enumerate(bins)])))
    return out


def _permute_within(bins: tuple | None, n: int, generator: torch.Generator) -> torch.Tensor:
    """A row permutation that moves rows only within their bin (any row anywhere if None)."""
    if bins is None:
        return torch.randperm(n, generator=generator)
    members, bin_of = bins
    keys = bin_of + torch.rand(len(members), generator=generator, dtype=torch.float64)
    rows = torch.arange(n)
    rows[members] = members[keys.argsort()]  # sorted keys stay bin by bin, shuffled within
    return rows


def block_pvalues(D: Any, null: Any) -> torch.Tensor:
    """Permutation p-value of every block: ``(1 + #{null[k] >= D}) / (1 + permutations)``.

    Parameters
    ----------
    D : array-like, shape (child_groups, parent_groups)
        The dependency matrix.
    null : array-like, shape (permutations, child_groups, parent_groups)
        From ``dependency_null`` with the same settings (either null: the permuted-child
        null asks "child j independent of the parent layer?", the conditional null "child j
        independent of parent group i given the rest of the layer?").

    Returns
    -------
    torch.Tensor, shape (child_groups, parent_groups), float64
        p[j, i] in [1 / (permutations + 1), 1]; small where block (j, i) depends more than
        the permuted children do. The +1 counts D itself, so no p-value is 0.
    """
    D = check_matrix("D", D).detach().cpu().to(torch.float64)
    null = check_tensor("null", null).detach().cpu().to(torch.float64)
    if null.ndim != 3 or tuple(null.shape[1:]) != tuple(D.shape) or null.shape[0] < 1:
        raise ValueError(f"null must have shape (permutations, {D.shape[0]}, {D.shape[1]}) "
                         f"to match D; got {tuple(null.shape)}")
    if not torch.isfinite(null).all():
        raise ValueError("null must be finite; it has NaN or infinite entries")
    exceed = (null >= D[None]).sum(dim=0).to(torch.float64)
    return (1.0 + exceed) / (1.0 + null.shape[0])


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two equally shaped tensors (NaN when either is constant)."""
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    scale = (a.norm() * b.norm()).item()
    return float((a @ b).item() / scale) if scale > 0 else math.nan


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """Reliability of a measure ``factor`` times as long as one with reliability ``r``.

    ``factor * r / (1 + (factor - 1) * r)``; with the default 2 it steps a split-half
    correlation up to the whole. NaN stays NaN (and so does a denominator of 0).

    >>> round(spearman_brown(0.24), 3)
    0.387
    """
    denominator = 1.0 + (factor - 1.0) * r
    if math.isnan(r) or denominator == 0:
        return math.nan
    return factor * r / denominator


def reliability(
    parent: Any,
    child: Any,
    *,
    parent_groups: int,
    child_groups: int,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    estimator: str = "faithful",
) -> dict[str, float]:
    """How well D agrees with itself: three correlations between two estimates of D.

    Returns
    -------
    dict
        ``split_to_split``: D from two splits of the same rows (seeds ``seed`` and
        ``seed + 1``); ``disjoint_rows``: D from two disjoint random halves of the rows;
        ``disjoint_rows_full``: that correlation stepped up to all the rows by the
        Spearman-Brown formula ``2 r / (1 + r)`` (each half has half the rows, so the split-half
        figure understates the reliability of D on all of them; NaN when r is NaN or -1);
        ``within_column``: the same two halves after removing each column's mean (each
        parent group's mean over child groups), which is what is left to tell child groups
        apart. Pearson correlations in [-1, 1]; a D that measures child-parent dependence
        has ``within_column`` well above 0.

    Blocks of a constant child or parent group (dead units) have D = 0 by definition, not
    by estimate, so they are left out of the correlations: a layer with some dead child
    groups would otherwise look reliable for the zeros alone. A correlation with nothing
    to correlate is NaN, with a ``RuntimeWarning`` that says why: every child (or parent)
    group is constant, or what is left is constant (e.g. one child group leaves nothing
    within a column).

    Parameters are as in ``dependency_matrix``; each half needs at least 6 rows.
    """
    estimator = _check_estimator(estimator)
    parent, child, parent_bounds, child_bounds = _check_layer_pair(parent, child, parent_groups,
                                                                   child_groups)
    if parent.shape[0] < 2 * MIN_ROWS_CONDITIONAL:
        raise ValueError(f"reliability needs at least {2 * MIN_ROWS_CONDITIONAL} rows (two "
                         f"halves of {MIN_ROWS_CONDITIONAL}); got {parent.shape[0]}")
    seed = check_seed(seed)
    device = check_device(device)
    rows = torch.randperm(parent.shape[0], generator=_generator(seed)).to(parent.device)
    halves = rows[: len(rows) // 2], rows[len(rows) // 2:]
    jobs = [(slice(None), seed), (slice(None), None if seed is None else derive_seed(seed, 1)),
            (halves[0], seed), (halves[1], seed)]
    d = [_blocks(parent[r], child[r], parent_bounds, child_bounds, s, device, False, estimator)
         for r, s in tqdm(jobs, desc="reliability", disable=not progress)]
    # blocks fixed at 0 by a constant group on any of the row sets are not estimates
    dead_child = torch.zeros(len(child_bounds), dtype=torch.bool)
    dead_parent = torch.zeros(len(parent_bounds), dtype=torch.bool)
    for r in (halves[0], halves[1]):  # a group constant on all rows is constant on each half
        dead_child |= constant_groups(child[r], child_bounds)
        dead_parent |= constant_groups(parent[r], parent_bounds)
    d = [m[~dead_child][:, ~dead_parent] for m in d]
    why = (f"all {len(child_bounds)} child groups are constant on the rows (dead units: D "
           f"is 0 by definition)" if bool(dead_child.all()) else
           f"all {len(parent_bounds)} parent groups are constant on the rows (dead units: D "
           f"is 0 by definition)" if bool(dead_parent.all()) else None)
    result = {}
    for name, a, b in (("split_to_split", d[0], d[1]), ("disjoint_rows", d[2], d[3]),
                       ("within_column", d[2] - d[2].mean(dim=0), d[3] - d[3].mean(dim=0))):
        result[name] = _correlation(a, b) if why is None else math.nan
        if math.isnan(result[name]):
            warnings.warn(f"reliability: {name} is NaN: " + (why or (
                f"D is constant on the {a.numel()} estimated block(s) of one of its two "
                f"estimates (one child group leaves nothing within a column)")),
                RuntimeWarning, stacklevel=2)
    # the disjoint halves use half the rows each: Spearman-Brown's figure for all of them
    result["disjoint_rows_full"] = spearman_brown(result["disjoint_rows"])
    return {k: result[k] for k in ("split_to_split", "disjoint_rows", "disjoint_rows_full",
                                   "within_column")}
