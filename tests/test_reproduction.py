"""The published statistic as a flagged mode, the permuted-child null and D's reliability.

docs/method.md sections 4c and 4e: the published code crosses its nearest-neighbour indices and
miscounts cross edges, so its score does not depend on the child layer; the right null for
"child group j depends on parent group i" is D with the child rows permuted.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from mint_teach import _block_engine, _legacy_tree, data, graphs, mi, models, pipeline, train
from mint_teach.pipeline import MintConfig


def gaussian(seed: int, rows: int, cols: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, cols))


def redundant_y(rows: int = 1500, seed: int = 0):
    """X independent of everything; Y a function of a 2-d Z, so I(X; Y | Z) = 0."""
    x, z = gaussian(seed, rows, 2), gaussian(seed + 1, rows, 2)
    y = np.stack([np.sin(2 * z[:, 0]), z[:, 1] ** 2 + z[:, 0]], axis=1)
    return x, y, z


def planted_pair(rows: int = 600, seed: int = 0):
    """Three one-unit parent groups; child group j copies parent group 2j (plus noise)."""
    rng = np.random.default_rng(seed)
    parent = rng.normal(size=(rows, 3))
    child = parent[:, [0, 2]] + 0.3 * rng.normal(size=(rows, 2))
    return parent, child


# --- the published statistic -----------------------------------------------------------------


def reference_published_count(points: np.ndarray, n_joint: int) -> int:
    """The published count the explicit way: joint points first, the installed SciPy's MST as a
    CSR matrix, compare the column of the k-th stored entry with k itself."""
    n = len(points)
    dists = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    tree = minimum_spanning_tree(csr_matrix(dists))
    assert tree.nnz == n - 1
    return sum((tree.indices[k] >= n_joint) != (k >= n_joint) for k in range(n - 1))


SCIPY_STABLE_TREE = tuple(int(v) for v in scipy.__version__.split(".")[:2]) >= (1, 11)


@pytest.mark.skipif(not SCIPY_STABLE_TREE, reason="SciPy < 1.11 stores about half the tree "
                    "edges at (larger, smaller): that is estimator='published-2020'")
@pytest.mark.parametrize("n_boot, n_joint, seed", [(20, 21, 0), (33, 33, 1), (12, 15, 2)])
def test_published_count_matches_the_sparse_matrix_reading(n_boot, n_joint, seed):
    """``estimator="published"`` is the published reading of SciPy >= 1.11's tree, which
    stores every edge at (smaller, larger) index (a stable sort since SciPy 1.11)."""
    boot, joint = gaussian(seed, n_boot, 3), gaussian(seed + 10, n_joint, 3) + 0.5
    edges = graphs.mst(np.concatenate([boot, joint]))  # this module's order: bootstrapped first
    count = _block_engine.published_count(edges[None], n_boot, n_joint)
    expected = reference_published_count(np.concatenate([joint, boot]), n_joint)
    assert int(count[0]) == expected
    # it is not the Friedman-Rafsky count of the same tree
    membership = [0] * n_boot + [1] * n_joint
    assert int(count[0]) != graphs.cross_edges(edges, membership)


# --- the count as SciPy < 1.11 stored the tree (estimator="published-2020") -------------------

REFERENCE = json.loads((Path(__file__).parent / "data" / "scipy_tree_reference.json").read_text())


def reference_cases(version: str):
    return REFERENCE["sections"][version]["cases"]


def reference_distances(points) -> np.ndarray:
    points = np.asarray(points)
    d2 = np.zeros((len(points), len(points)))
    for k in range(points.shape[1]):  # as benchmarks/scipy_tree_reference.py sums them
        diff = points[:, None, k] - points[None, :, k]
        d2 = d2 + diff * diff
    return np.sqrt(d2)


@pytest.mark.parametrize("case", range(5))
def test_legacy_tree_stores_edges_as_scipy_1_10_did(case):
    ref = reference_cases("1.10.1")[case]
    entries = _legacy_tree.legacy_tree_entries(reference_distances(ref["points"]))
    assert entries[:, 0].tolist() == ref["rows"] and entries[:, 1].tolist() == ref["cols"]
    assert _legacy_tree.published_count_of_entries(entries, ref["n_joint"]) == \
        ref["published_count"]
    # about half the edges are stored (larger, smaller), unlike SciPy >= 1.11
    larger_first = int((entries[:, 0] > entries[:, 1]).sum())
    assert 0.3 * len(entries) < larger_first < 0.7 * len(entries)


def test_legacy_argsort_orders_ties_as_numpy_1_24():
    for record in REFERENCE["sections"]["1.10.1"]["argsort"]:
        order = _legacy_tree.legacy_argsort(np.array(record["values"]))
        assert order.tolist() == record["order"]
        heap = _legacy_tree.legacy_heap_argsort(np.array(record["values"]))  # its fallback
        assert heap.tolist() == record["heapsort_order"]


def test_reference_trees_are_the_same_trees_under_both_scipy_versions():
    """The versions differ in where an edge is stored, not in which edges the tree has; the
    published count differs, and the 1.11+ count is what estimator='published' reads."""
    for old, new in zip(reference_cases("1.10.1"), reference_cases("1.17.1")):
        edges_old = {frozenset(e) for e in zip(old["rows"], old["cols"])}
        edges_new = {frozenset(e) for e in zip(new["rows"], new["cols"])}
        assert edges_old == edges_new
        assert new["stored_larger_first"] == 0
        n_boot, n_joint = new["n_boot"], new["n_joint"]
        # this module's labels put the bootstrapped points first
        relabel = lambda v: v - n_joint if v >= n_joint else v + n_boot  # noqa: E731
        edges = torch.tensor([[relabel(a), relabel(b)] for a, b in zip(new["rows"], new["cols"])])
        assert int(_block_engine.published_count(edges[None], n_boot, n_joint)[0]) == \
            new["published_count"]
    assert any(o["published_count"] != n["published_count"]
               for o, n in zip(reference_cases("1.10.1"), reference_cases("1.17.1")))


def test_published_2020_is_near_zero_on_independent_gaussians_where_published_is_not():
    """method.md 4c's case (smaller): the 2020 count was near-correct, today's is not."""
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(450, 5)), rng.normal(size=(450, 8)), rng.normal(size=(450, 60))
    new = [mi.conditional_gmi(x, y, z, seed=s, estimator="published") for s in range(2)]
    old = [mi.conditional_gmi(x, y, z, seed=s, estimator="published-2020") for s in range(2)]
    assert max(abs(v) for v in old) < 0.12
    assert min(new) > max(old) + 0.1


def test_published_2020_keeps_the_crossed_indices():
    """X independent, Y a function of a 2-d Z: the crossed indices still report dependence."""
    x, y, z = redundant_y(900)
    faithful = [mi.conditional_gmi(x, y, z, seed=s) for s in range(2)]
    old = [mi.conditional_gmi(x, y, z, seed=s, estimator="published-2020") for s in range(2)]
    assert min(old) > max(faithful) + 0.2


def test_published_value_formula():
    assert mi.published_value(10, 30, 90) == pytest.approx(1 - 10 / 30)
    assert mi.published_value(45, 30, 90) == pytest.approx(0.0)  # the count is capped
    t = mi.published_value(torch.tensor([10.0, 45.0]), 30, 90)
    assert torch.allclose(t, torch.tensor([1 - 10 / 30, 0.0], dtype=t.dtype))


def test_published_split_sizes():
    a, b, c = _block_engine.split_rows(6500, torch.Generator().manual_seed(0), "published")
    assert (len(a), len(b), len(c)) == (2166, 2167, 2167)
    assert len(set(torch.cat([a, b, c]).tolist())) == 6500


def test_published_mode_reports_dependence_where_there_is_none():
    """X independent, Y a function of a low-dimensional Z: true I(X; Y | Z) = 0."""
    x, y, z = redundant_y()
    faithful = [mi.conditional_gmi(x, y, z, seed=s) for s in range(3)]
    published = [mi.conditional_gmi(x, y, z, seed=s, estimator="published") for s in range(3)]
    assert max(faithful) < 0.1
    assert min(published) > max(faithful) + 0.2


@pytest.mark.parametrize("estimator, rows", [("published", 120), ("published-2020", 90)])
def test_published_dependency_matrix_equals_conditional_gmi_pair_by_pair(estimator, rows):
    parent, child = gaussian(0, rows, 6), gaussian(1, rows, 4)
    child[:, :2] += parent[:, :2]
    matrix = mi.dependency_matrix(parent, child, parent_groups=3, child_groups=2, seed=5,
                                  progress=False, estimator=estimator)
    for j, (c0, c1) in enumerate(mi.split_groups(4, 2)):
        for i, (p0, p1) in enumerate(mi.split_groups(6, 3)):
            others = [u for u in range(6) if not p0 <= u < p1]
            value = mi.conditional_gmi(child[:, c0:c1], parent[:, p0:p1], parent[:, others],
                                       seed=5, estimator=estimator)
            assert matrix[j, i].item() == pytest.approx(value, abs=1e-9)


def test_unconditional_variant_ignores_z():
    x, y, z = redundant_y(900)
    a = mi.conditional_gmi(x, y, z, seed=1, estimator="unconditional")
    b = mi.conditional_gmi(x, y, gaussian(9, 900, 5), seed=1, estimator="unconditional")
    assert a == b
    assert abs(a) < 0.1  # X is independent of Y


def test_estimator_is_checked():
    x, y, z = redundant_y(60)
    with pytest.raises(ValueError, match="estimator must be one of.*'published'.*got 'paper'"):
        mi.conditional_gmi(x, y, z, estimator="paper")
    with pytest.raises(ValueError, match="estimator"):
        mi.dependency_matrix(y, x, parent_groups=1, child_groups=1, estimator=None)
    # one list of names for mi, MintConfig and the command line (mi.ESTIMATORS)
    with pytest.raises(ValueError, match=r"estimator must be one of \['faithful', 'published', "
                                         r"'published-2020', 'unconditional'\]"):
        MintConfig(estimator="paper")
    assert MintConfig(estimator="unconditional").estimator == "unconditional"


# --- through the pipeline, with rows drawn as published ------------------------------------


@pytest.fixture(scope="module")
def digits_pair():
    """A digits MLP trained for a few epochs (so its layers depend on each other) and its
    (fc1, fc2) pair cut into 10 x 25 groups."""
    torch.manual_seed(0)
    model = models.build_model("mlp", in_features=64)
    train_set = data.load_dataset("digits")
    train.fit(model, train_set, epochs=3, seed=0, progress=False)
    pairs = models.layer_pairs(model, [("fc1", "fc2")])
    return model, train_set, pairs, {pairs[0]: (10, 25)}


def test_published_rows_are_two_independent_draws_with_replacement(digits_pair):
    _, train_set, _, _ = digits_pair
    parent_rows, child_rows = pipeline.published_rows(train_set, 60, seed=0)
    assert len(parent_rows) == len(child_rows) == 60 * 10
    assert parent_rows.indices != child_rows.indices
    assert len(set(parent_rows.indices)) < len(parent_rows.indices)  # with replacement
    targets = data.targets_of(parent_rows)
    assert torch.equal(torch.bincount(targets), torch.full((10,), 60))
    again, _ = pipeline.published_rows(train_set, 60, seed=0)
    assert again.indices == parent_rows.indices


def test_published_d_does_not_see_the_child_rows(digits_pair):
    """On a trained network whose child units depend on its parent units (the unconditional
    block GMI falls from well above 0 to about 0 when the child rows are permuted), the
    published D stays where it was: it does not see whether the child rows match."""
    model, train_set, pairs, groups = digits_pair
    rows = data.class_balanced_subset(train_set, 60, seed=1)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(3))
    permuted = torch.utils.data.Subset(rows.dataset, [rows.indices[k] for k in order.tolist()])
    means = {}
    for estimator in ("published", "unconditional"):
        for name, child_rows in (("paired", rows), ("permuted", permuted)):
            d = pipeline.compute_dependencies(model, rows, pairs, groups, child_rows=child_rows,
                                              seed=0, progress=False,
                                              estimator=estimator)[pairs[0]]
            assert d.shape == (10, 25)
            means[estimator, name] = d.mean().item()
    assert abs(means["published", "paired"] - means["published", "permuted"]) < 0.03
    assert means["unconditional", "paired"] > 0.3 > 0.1 > abs(means["unconditional", "permuted"])


def test_faithful_d_falls_when_the_child_rows_are_permuted():
    parent, child = planted_pair()
    d = mi.dependency_matrix(parent, child, parent_groups=3, child_groups=2, seed=0,
                             progress=False)
    null = mi.dependency_null(parent, child, parent_groups=3, child_groups=2, permutations=3,
                              seed=0, progress=False)
    assert d[0, 0] - null[:, 0, 0].max() > 0.2
    assert d[1, 2] - null[:, 1, 2].max() > 0.2


# --- the permuted-child null, p-values, reliability ------------------------------------------


def test_block_pvalues_known_answer():
    d = torch.tensor([[0.5, 0.1]])
    null = torch.tensor([[[0.2, 0.1]], [[0.6, 0.0]], [[0.1, 0.3]]])
    p = mi.block_pvalues(d, null)
    # block 0: one of three null values >= 0.5; block 1: two of three >= 0.1 (ties count)
    assert torch.allclose(p, torch.tensor([[2 / 4, 3 / 4]], dtype=torch.float64))


def test_block_pvalues_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"null must have shape \(permutations, 1, 2\)"):
        mi.block_pvalues(torch.zeros(1, 2), torch.zeros(3, 2, 1))
    with pytest.raises(ValueError, match="finite"):
        mi.block_pvalues(torch.zeros(1, 2), torch.full((3, 1, 2), float("nan")))


def test_null_shape_seed_and_arguments():
    parent, child = planted_pair(90)
    null = mi.dependency_null(parent, child, parent_groups=3, child_groups=2, permutations=2,
                              seed=4, progress=False)
    assert null.shape == (2, 2, 3) and null.dtype == torch.float64
    assert torch.equal(null, mi.dependency_null(parent, child, parent_groups=3, child_groups=2,
                                                permutations=2, seed=4, progress=False))
    assert not torch.equal(null[0], null[1])
    with pytest.raises(ValueError, match="permutations"):
        mi.dependency_null(parent, child, parent_groups=3, child_groups=2, permutations=0)


def test_pvalues_of_independent_blocks_are_spread_out():
    parent, child = gaussian(0, 300, 8), gaussian(1, 300, 8)
    d = mi.dependency_matrix(parent, child, parent_groups=4, child_groups=4, seed=0,
                             progress=False)
    null = mi.dependency_null(parent, child, parent_groups=4, child_groups=4, permutations=19,
                              seed=0, progress=False)
    p = mi.block_pvalues(d, null)
    assert 0.3 < p.mean().item() < 0.7  # uniform on {1/20, ..., 1} has mean 0.525
    assert (p < 0.05).sum().item() <= 3  # 16 blocks: about one expected by chance


def test_planted_block_has_a_small_pvalue():
    parent, child = planted_pair()
    d = mi.dependency_matrix(parent, child, parent_groups=3, child_groups=2, seed=1,
                             progress=False)
    null = mi.dependency_null(parent, child, parent_groups=3, child_groups=2, permutations=24,
                              seed=1, progress=False)
    p = mi.block_pvalues(d, null)
    assert p[0, 0] < 0.05 and p[1, 2] < 0.05
    assert p[0, 0] == pytest.approx(1 / 25)


# --- the conditional null: group i given the rest of the parent layer ---------------------------


def conditionally_independent(seed: int, rows: int = 300, planted: float = 0.0):
    """Parent = [Y (2 units), Z (2 units)]; four one-unit child groups X_j = f(Z) + noise.

    Y = g(Z) + e. With ``planted = 0`` every X_j is independent of Y given Z (but not of Y,
    nor of the parent layer); with ``planted > 0`` X_j also carries ``planted * e``, a link
    to Y beyond Z.
    """
    rng = np.random.default_rng(seed)
    z, e = rng.normal(size=(rows, 2)), rng.normal(size=(rows, 2))
    y = np.stack([np.sin(2 * z[:, 0]), z[:, 1] ** 2], axis=1) + (0.5 if planted == 0 else 1) * e
    x = (np.cos(z[:, 0]) + z[:, 1])[:, None] + 0.3 * rng.normal(size=(rows, 4))
    x = x + planted * e[:, [0, 1, 0, 1]]
    return np.concatenate([y, z], axis=1), x


def y_block_pvalues(seeds, planted: float, null: str) -> torch.Tensor:
    """p-values of the four (X_j, Y) blocks of each data set, 19 permutations."""
    out = []
    for seed in seeds:
        parent, child = conditionally_independent(seed, planted=planted)
        kwargs = dict(parent_groups=2, child_groups=4, seed=seed, progress=False)
        d = mi.dependency_matrix(parent, child, **kwargs)
        out.append(mi.block_pvalues(d, mi.dependency_null(parent, child, permutations=19,
                                                          null=null, **kwargs))[:, 0])
    return torch.cat(out)


def test_conditional_null_is_calibrated_under_conditional_independence():
    """32 blocks with I(X; Y | Z) = 0: p-values near uniform on {1/20, ..., 1} (mean 0.525)."""
    p = y_block_pvalues(range(8), 0.0, "conditional")
    assert 0.4 < p.mean().item() < 0.65
    assert (p <= 0.05).sum().item() <= 4  # about 1.6 expected by chance


def test_permuted_child_null_is_not_small_here_once_the_bootstrap_bias_is_gone():
    """The permuted-child null tests X independent of the whole parent layer, which is false
    here (X depends on Z), so it answers another question than D. With the nearest-neighbour
    bootstrap drawing each B row once (section 4b), D's bias no longer depends on the child's
    link with Z in this case, and that question's p-values are not small either (with the old
    bootstrap, which reused B rows, they were: mean 0.23 over 8 data sets). Which null is right
    is a matter of the question; here both read "no evidence"."""
    p = y_block_pvalues(range(3), 0.0, "child")
    assert p.mean().item() > 0.35


def test_conditional_null_detects_a_planted_link_given_z():
    p = y_block_pvalues(range(2), 1.0, "conditional")
    assert p.mean().item() < 0.2
    assert (p <= 0.05).sum().item() >= 2


def test_conditional_null_with_one_parent_group_is_the_permuted_child_null():
    parent, child = planted_pair(90)
    kwargs = dict(parent_groups=1, child_groups=2, permutations=3, seed=2, progress=False)
    assert torch.equal(mi.dependency_null(parent, child, null="conditional", **kwargs),
                       mi.dependency_null(parent, child, null="child", **kwargs))


def test_conditional_null_shape_seed_and_arguments():
    parent, child = conditionally_independent(0, rows=60)
    kwargs = dict(parent_groups=2, child_groups=4, permutations=3, seed=1, progress=False,
                  null="conditional")
    null = mi.dependency_null(parent, child, **kwargs)
    assert null.shape == (3, 4, 2) and null.dtype == torch.float64
    assert torch.equal(null, mi.dependency_null(parent, child, **kwargs))
    assert mi.block_pvalues(mi.dependency_matrix(parent, child, parent_groups=2, child_groups=4,
                                                 seed=1, progress=False), null).shape == (4, 2)
    with pytest.raises(ValueError, match="null must be one of.*got 'parent'"):
        mi.dependency_null(parent, child, parent_groups=2, child_groups=4, null="parent")
    with pytest.raises(ValueError, match="bin_size"):
        mi.dependency_null(parent, child, parent_groups=2, child_groups=4, null="conditional",
                           bin_size=1)


def test_z_bins_pair_rows_with_near_z_and_permutations_stay_within_bins():
    rng = np.random.default_rng(0)
    z = np.repeat(rng.normal(size=(20, 3)) * 10, 2, axis=0)  # rows 2k and 2k+1 share z
    parent = torch.tensor(np.concatenate([rng.normal(size=(40, 1)), z], axis=1))
    generator = torch.Generator().manual_seed(0)
    (members, bin_of), = mi._z_bins(parent, [(0, 1)], 2, generator)
    pairs = {frozenset(members[bin_of == b].tolist()) for b in bin_of.unique().tolist()}
    assert pairs == {frozenset({2 * k, 2 * k + 1}) for k in range(20)}
    rows = mi._permute_within((members, bin_of), 40, generator)
    assert sorted(rows.tolist()) == list(range(40))
    assert all(rows[r].item() // 2 == r // 2 for r in range(40))  # moved within its pair
    assert not torch.equal(rows, torch.arange(40))


def test_reliability_of_planted_and_of_absent_dependence():
    parent, child = planted_pair(900)
    planted = mi.reliability(parent, child, parent_groups=3, child_groups=2, seed=0,
                             progress=False)
    assert set(planted) == {"split_to_split", "disjoint_rows", "disjoint_rows_full",
                            "within_column"}
    r = planted["disjoint_rows"]
    assert planted["disjoint_rows_full"] == pytest.approx(2 * r / (1 + r))
    assert planted["disjoint_rows_full"] >= r
    assert planted["within_column"] > 0.8 and planted["disjoint_rows"] > 0.8
    absent = mi.reliability(gaussian(0, 600, 6), gaussian(1, 600, 6), parent_groups=6,
                            child_groups=6, seed=0, progress=False)
    assert abs(absent["within_column"]) < 0.5
    with pytest.raises(ValueError, match="at least 12 rows"):
        mi.reliability(parent[:10], child[:10], parent_groups=3, child_groups=2)


def test_same_share_random_masks_draw_each_pair_from_its_own_stream():
    """Two pairs of one shape and one share: a seed shared by every pair would cut the same
    blocks in both; each pair's own stream cuts different ones, reproducibly."""
    net = models.MLP(in_features=12, hidden=(12, 12, 12), num_classes=3)
    cut = torch.ones(6, 6, dtype=torch.bool)
    cut[:3] = False  # 18 of 36 blocks
    mint = {("fc1", "fc2"): cut, ("fc2", "fc3"): cut.clone()}
    a = pipeline.same_share_masks(net, mint, "random", seed=4)
    assert all(int((~k).sum()) == 18 for k in a.values())
    assert not torch.equal(a[("fc1", "fc2")], a[("fc2", "fc3")])
    b = pipeline.same_share_masks(net, mint, "random", seed=4)
    assert all(torch.equal(a[p], b[p]) for p in a)


def test_spearman_brown_known_answers():
    assert mi.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert mi.spearman_brown(0.0) == 0.0 and mi.spearman_brown(1.0) == 1.0
    assert mi.spearman_brown(0.5, factor=3) == pytest.approx(0.75)
    assert math.isnan(mi.spearman_brown(math.nan)) and math.isnan(mi.spearman_brown(-1.0))


def test_cli_takes_the_estimator():
    from mint_teach.__main__ import _parser

    assert _parser().parse_args(["run", "--estimator", "published"]).estimator == "published"
    assert _parser().parse_args(["run", "--estimator", "published-2020"]).estimator == \
        "published-2020"
    assert _parser().parse_args(["run"]).estimator == "faithful"
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["run", "--estimator", "paper"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("estimator", ["published", "published-2020"])
def test_run_mint_labels_the_published_mode(estimator):
    result = pipeline.run_mint(MintConfig(dataset="digits", groups=4, samples_per_class=40,
                                          prune_fraction=0.5, finetune_epochs=0, baselines=(),
                                          estimator=estimator, out_dir=None, progress=False,
                                          train={"epochs": 1}))
    assert [r["method"] for r in result.rows] == [f"MINT ({estimator} mode)"]
    assert result.config.estimator == estimator
