"""Tests for mint_teach.pruning: groups, masks, applying, accounting, compaction, baselines."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from mint_teach import groups, models
from mint_teach import pruning as P


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)


# ----------------------------------------------------------------------------- unit_groups

@pytest.mark.parametrize("n_units,n_groups", [(10, 3), (500, 20), (7, 7), (300, 10), (13, 1)])
def test_unit_groups_cover_all_units_with_sizes_within_one(n_units, n_groups):
    groups = P.unit_groups(n_units, n_groups)
    assert len(groups) == n_groups
    assert [u for g in groups for u in g] == list(range(n_units))
    sizes = [len(g) for g in groups]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("n_groups", [0, -1, 11, 2.5, True, "3"])
def test_unit_groups_rejects_bad_counts(n_groups):
    with pytest.raises(ValueError, match="n_groups"):
        P.unit_groups(10, n_groups)


# ----------------------------------------------------------------------------- masks_from_dependencies

def test_global_quantile_prunes_the_lowest_blocks_across_pairs():
    deps = {
        ("a", "b"): torch.tensor([[0.0, 1.0], [2.0, 3.0]]),
        ("b", "c"): torch.tensor([[4.0, 5.0], [6.0, 7.0]]),
    }
    # 8 values 0..7; the 0.25-quantile (linear) is 1.75 -> values 0 and 1 are pruned.
    keep = P.masks_from_dependencies(deps, prune_fraction=0.25)
    assert keep[("a", "b")].tolist() == [[False, False], [True, True]]
    assert keep[("b", "c")].all()
    assert keep[("a", "b")].dtype == torch.bool


def test_prune_fraction_zero_keeps_everything():
    deps = {("a", "b"): torch.zeros(3, 4)}
    assert P.masks_from_dependencies(deps, prune_fraction=0.0)[("a", "b")].all()


def test_cap_limits_a_pair_with_all_low_values_even_with_ties():
    deps = {
        ("a", "b"): torch.zeros(4, 5),            # 20 tied, all below every other value
        ("b", "c"): torch.arange(1.0, 101.0).reshape(10, 10),
    }
    keep = P.masks_from_dependencies(deps, prune_fraction=0.5, max_pair_fraction=0.75)
    pruned_ab = int((~keep[("a", "b")]).sum())
    assert pruned_ab == 15  # floor(0.75 * 20), not 20 despite the ties
    # The other pair still follows the global threshold: quantile 0.5 of 120 values.
    values = torch.cat([torch.zeros(20), torch.arange(1.0, 101.0)])
    delta = torch.quantile(values, 0.5)
    assert int((~keep[("b", "c")]).sum()) == int((deps[("b", "c")] <= delta).sum())


def test_cap_keeps_the_highest_values_of_a_capped_pair():
    d = torch.tensor([[0.1, 0.4, 0.2, 0.3]])
    keep = P.masks_from_dependencies({("a", "b"): d}, threshold=1.0, max_pair_fraction=0.5)
    assert keep[("a", "b")].tolist() == [[False, True, False, True]]


def test_threshold_mode_prunes_values_at_or_below_it():
    d = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    keep = P.masks_from_dependencies({("a", "b"): d}, threshold=0.3, max_pair_fraction=1.0)
    assert keep[("a", "b")].tolist() == [[False, True], [False, True]]


@pytest.mark.parametrize("kwargs,match", [
    ({}, "exactly one"),
    ({"prune_fraction": 0.5, "threshold": 0.1}, "exactly one"),
    ({"prune_fraction": 1.5}, "prune_fraction"),
    ({"prune_fraction": -0.1}, "prune_fraction"),
    ({"prune_fraction": 0.5, "max_pair_fraction": 2.0}, "max_pair_fraction"),
])
def test_masks_from_dependencies_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.masks_from_dependencies({("a", "b"): torch.rand(2, 2)}, **kwargs)


@pytest.mark.parametrize("deps", [
    {},
    {("a", "b"): torch.rand(4)},
    {("a", "b"): torch.rand(2, 2, 2)},
    {("a", "b"): torch.empty(0, 3)},
    {("a", "b"): torch.tensor([[0.1, float("nan")]])},
])
def test_masks_from_dependencies_rejects_bad_matrices(deps):
    with pytest.raises(ValueError):
        P.masks_from_dependencies(deps, prune_fraction=0.5)


def test_global_threshold_is_the_linear_quantile_of_the_pooled_values():
    g = torch.Generator().manual_seed(2)
    deps = {("a", "b"): torch.rand(4, 5, generator=g), ("b", "c"): torch.rand(3, 4, generator=g)}
    pooled = P.pooled_dependences(deps)
    assert torch.equal(pooled, torch.cat([d.flatten() for d in deps.values()]).double())
    for q in (0.0, 0.3, 0.5, 0.9, 1.0):
        assert P.global_threshold(deps, q) == pytest.approx(torch.quantile(pooled, q).item())
    delta = P.global_threshold(deps, 0.5)  # 32 distinct values: the masks cut those <= delta
    keep = P.masks_from_dependencies(deps, prune_fraction=0.5, max_pair_fraction=1.0)
    assert all(torch.equal(~keep[k], deps[k].double() <= delta) for k in deps)
    with pytest.raises(ValueError, match="prune_fraction"):
        P.global_threshold(deps, 1.5)
    with pytest.raises(ValueError, match="non-empty dict"):
        P.pooled_dependences({})


# ----------------------------------------------------------------------------- expand_block_mask

def test_expand_block_mask_linear_conv_and_flatten():
    keep = torch.tensor([[True, False], [False, True]])
    # Linear (5 rows, 4 parent units): row groups [0..2], [3..4]; parent groups [0,1], [2,3]
    full = P.expand_block_mask(keep, (5, 4), 4)
    assert full[:3, :2].all() and not full[:3, 2:].any()
    assert not full[3:, :2].any() and full[3:, 2:].all()
    # Conv: the kernel positions follow their column
    full = P.expand_block_mask(keep, (4, 4, 3, 3), 4)
    assert full.shape == (4, 4, 3, 3)
    assert full[0, 0].all() and not full[0, 3].any()
    # Flatten: 2 parent units x 3 columns each
    full = P.expand_block_mask(keep, (2, 6), 2)
    assert full[0].tolist() == [True] * 3 + [False] * 3


def test_expand_block_mask_rejects_misfits():
    with pytest.raises(ValueError, match="G_p"):
        P.expand_block_mask(torch.ones(2, 5, dtype=torch.bool), (4, 4), 4)
    with pytest.raises(ValueError, match="multiple"):
        P.expand_block_mask(torch.ones(2, 2, dtype=torch.bool), (4, 7), 4)


# ----------------------------------------------------------------------------- apply_masks

def _small_mlp(seed: int = 0) -> models.MLP:
    torch.manual_seed(seed)
    return models.MLP(in_features=12, hidden=(10, 8), num_classes=3)


def test_masked_weights_stay_zero_through_sgd_with_momentum_and_weight_decay():
    model = _small_mlp()
    masks = P.random_masks(model, prune_fraction=0.5, groups=(2, 2), seed=3)
    P.apply_masks(model, masks)
    zero_before = {n: model.get_submodule(n).weight == 0 for n in ("fc2", "fc3")}
    assert all(z.any() for z in zero_before.values())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(16, 12), torch.randint(0, 3, (16,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, zero in zero_before.items():
        weight = model.get_submodule(name).weight
        assert (weight[zero] == 0).all()
        assert (weight[~zero] != 0).all()  # the rest did train (and is not zero)


def test_prune_remove_leaves_zeros_in_the_plain_weight():
    model = _small_mlp()
    P.apply_masks(model, P.random_masks(model, prune_fraction=0.5, groups=(2, 2), seed=1))
    mask = model.fc2.weight_mask.clone()
    prune.remove(model.fc2, "weight")
    assert isinstance(model.fc2.weight, nn.Parameter)
    assert not hasattr(model.fc2, "weight_mask")
    assert (model.fc2.weight[mask == 0] == 0).all()


def test_apply_masks_combines_with_an_existing_mask():
    model = _small_mlp()
    first = torch.ones(8, 10, dtype=torch.bool)
    first[0] = False
    second = torch.ones(8, 10, dtype=torch.bool)
    second[:, 0] = False
    P.apply_masks(model, {"fc2": first})
    P.apply_masks(model, {"fc2": second})
    zero = model.fc2.weight == 0
    assert zero[0].all() and zero[:, 0].all()
    assert int(zero.sum()) == 10 + 8 - 1


def test_apply_masks_works_with_global_unstructured():
    model = _small_mlp()
    P.apply_masks(model, {("fc1", "fc2"): torch.tensor([[False, True]])})
    prune.global_unstructured([(model.fc2, "weight"), (model.fc3, "weight")],
                              pruning_method=prune.L1Unstructured, amount=0.6)
    assert (model.fc2.weight[:, :5] == 0).all()  # the MINT mask survives
    assert int((model.fc3.weight == 0).sum()) > 0


def test_apply_masks_unknown_layer_lists_valid_layers():
    model = _small_mlp()
    with pytest.raises(KeyError, match="fc1.*fc2.*fc3"):
        P.apply_masks(model, {("fc1", "nope"): torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(KeyError, match="valid layers"):
        P.apply_masks(model, {"relu1": torch.ones(10, 12)})


def test_apply_masks_shape_mismatch_names_layer_and_shapes():
    model = _small_mlp()
    with pytest.raises(ValueError, match=r"fc2.*\(2, 11\)"):  # G_p 11 > 10 parent units
        P.apply_masks(model, {("fc1", "fc2"): torch.ones(2, 11, dtype=torch.bool)})
    with pytest.raises(ValueError, match="does not feed"):  # fc3 comes after fc2
        P.apply_masks(model, {("fc3", "fc2"): torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"fc2.*\(8, 9\)"):
        P.apply_masks(model, {"fc2": torch.ones(8, 9)})


# ----------------------------------------------------------------------------- sparsity accounting

def test_sparsity_report_counts_a_hand_built_example():
    model = _small_mlp()   # fc1 10x12, fc2 8x10, fc3 3x8
    mask = torch.ones(8, 10, dtype=torch.bool)
    mask[:, :6] = False    # 48 of 80 zeroed
    P.apply_masks(model, {"fc2": mask})
    with torch.no_grad():
        model.fc3.weight[0, :2] = 0.0  # plain zeros count too
    report = P.sparsity_report(model, ["fc2", "fc3"])
    fc2 = report["layers"]["fc2"]
    assert (fc2["params"], fc2["zeros"], fc2["nonzero"]) == (80, 48, 32)
    assert fc2["pruned_pct"] == pytest.approx(60.0)
    assert fc2["memory_mb"] == pytest.approx(32 * 4 / 1e6)
    total = report["total"]
    assert (total["params"], total["zeros"]) == (104, 50)
    assert total["pruned_pct"] == pytest.approx(100 * 50 / 104)
    assert list(P.sparsity_report(model)["layers"]) == ["fc1", "fc2", "fc3"]
    text = P.format_report(report)
    assert "fc2" in text and "60.00" in text and "total" in text


def test_sparsity_report_paper_memory_definition():
    # MNIST layer 2: 96.20 % of 150,000 weights pruned -> about 0.022 MB (section 7).
    model = models.MLP()
    n_zero = round(0.962 * 150_000)
    mask = torch.ones(150_000, dtype=torch.bool)
    mask[:n_zero] = False
    P.apply_masks(model, {"fc2": mask.reshape(300, 500)})
    row = P.sparsity_report(model, ["fc2"])["total"]
    assert row["pruned_pct"] == pytest.approx(96.2)
    assert math.floor(row["memory_mb"] * 1000) == 22


def test_count_params_and_model_size():
    model = _small_mlp()
    n = 12 * 10 + 10 + 10 * 8 + 8 + 8 * 3 + 3
    assert P.count_params(model) == n
    assert P.model_size_mb(model) == pytest.approx(n * 4 / 1e6)


# ----------------------------------------------------------------------------- compact

def _kill_columns(model, pairs, seed):
    """Block masks with one child group, so each pruned block kills a parent group outright."""
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for parent, child in pairs:
        n = groups.layer_units(model, parent)
        g_p = min(4, n)
        keep = torch.rand(1, g_p, generator=g) > 0.4
        keep[0, 0] = True
        masks[(parent, child)] = keep
    return masks


def _check_compact(model, x, masks):
    _randomise_bn(model)
    P.apply_masks(model, masks)
    model.eval()
    before = P.count_params(model)
    small = P.compact(model).eval()
    with torch.no_grad():
        expected, got = model(x), small(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert P.count_params(small) < before
    assert P.count_params(model) == before  # the original is untouched
    assert hasattr(model.get_submodule(next(iter(masks))[1]), "weight_mask")  # still masked
    for name in small.prunable:
        assert not hasattr(small.get_submodule(name), "weight_mask")
        assert small.activation_of[name]
    return small


def test_compact_mlp_matches_masked_outputs():
    model = _small_mlp()
    masks = {("fc1", "fc2"): torch.tensor([[True, False, True, False, True]]),
             ("fc2", "fc3"): torch.tensor([[False, True, True, True]])}
    small = _check_compact(model, torch.randn(5, 12), masks)
    assert small.fc1.out_features == 6 and small.fc2.in_features == 6
    assert small.fc2.out_features == 6 and small.fc3.in_features == 6
    assert small.fc1.bias.shape == (6,)


def test_compact_cascades_and_keeps_one_unit():
    model = _small_mlp()
    # fc3 keeps only fc2 units 0-3; fc2 rows 4-7 become dead; fc2 itself uses no fc1 column.
    fc3 = torch.zeros(3, 8, dtype=torch.bool)
    fc3[:, :4] = True
    P.apply_masks(model, {"fc3": fc3, "fc2": torch.zeros(8, 10, dtype=torch.bool)})
    model.eval()
    small = P.compact(model)
    assert small.fc2.out_features == 4
    assert small.fc1.out_features == 1  # never zero units
    x = torch.randn(4, 12)
    torch.testing.assert_close(small.eval()(x), model(x))


def test_compact_tiny_vgg():
    torch.manual_seed(0)
    model = models.VGG(width=1 / 16)
    small = _check_compact(model, torch.randn(2, 3, 32, 32),
                           _kill_columns(model, models.layer_pairs(model), seed=1))
    assert small.classifier.in_features == small.features.conv13.out_channels
    assert small.features.bn13.num_features == small.features.conv13.out_channels


def test_compact_classroom_cnn():
    torch.manual_seed(0)
    model = models.ClassroomCNN(widths=(6, 8, 10))
    small = _check_compact(model, torch.randn(2, 3, 32, 32),
                           _kill_columns(model, models.layer_pairs(model), seed=2))
    assert small.features.conv2.out_channels < 8 or small.features.conv1.out_channels < 6


def test_compact_tiny_resnet_keeps_skip_shapes():
    torch.manual_seed(0)
    model = models.ResNetCifar(20, width=0.25)
    pairs = models.layer_pairs(model)
    masks = _kill_columns(model, pairs, seed=3)
    small = _check_compact(model, torch.randn(2, 3, 32, 32), masks)
    inner_shrunk = 0
    for s in (1, 2, 3):
        for b in range(3):
            old = model.get_submodule(f"layer{s}.{b}")
            new = small.get_submodule(f"layer{s}.{b}")
            assert new.conv2.out_channels == old.conv2.out_channels
            assert new.conv1.in_channels == old.conv1.in_channels
            assert new.conv1.out_channels == new.bn1.num_features == new.conv2.in_channels
            inner_shrunk += new.conv1.out_channels < old.conv1.out_channels
    assert inner_shrunk > 0
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_dead_units_reads_column_blocks_and_live_rows():
    w = torch.ones(3, 4, 2, 2)
    w[:, 1] = 0.0                       # parent unit 1: no outgoing weight
    w[0, 3] = 0.0                       # parent unit 3: only child row 0 is cut
    assert P.dead_units(w, 4).tolist() == [False, True, False, False]
    assert P.dead_units(w, 4, live_rows=torch.tensor([True, False, False])).tolist() == [
        False, True, False, True]
    flat = torch.ones(2, 6)
    flat[:, 2:4] = 0.0                  # a linear child of 3 conv units, 2 columns each
    assert P.dead_units(flat, 3).tolist() == [False, True, False]
    with pytest.raises(ValueError, match="multiple of parent_units = 4"):
        P.dead_units(torch.ones(2, 6), 4)
    with pytest.raises(ValueError, match="live_rows"):
        P.dead_units(flat, 3, live_rows=torch.tensor([True]))


def test_compact_rejects_unknown_models():
    with pytest.raises(TypeError, match="MLP"):
        P.compact(nn.Sequential(nn.Linear(2, 2)))


# ----------------------------------------------------------------------------- baselines

def _weight_sparsity(model, names):
    zeros = sum(int((model.get_submodule(n).weight == 0).sum()) for n in names)
    return zeros / sum(model.get_submodule(n).weight.numel() for n in names)


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_random_and_block_magnitude_masks_reach_requested_block_sparsity(fraction):
    torch.manual_seed(0)
    model = models.MLP(in_features=40, hidden=(30, 20), num_classes=10)
    pairs = models.layer_pairs(model)
    for masks in (P.random_masks(model, prune_fraction=fraction, groups=(10, 10), seed=0),
                  P.magnitude_masks(model, prune_fraction=fraction, groups=(10, 10))):
        assert set(masks) == set(pairs)
        blocks = torch.cat([m.flatten() for m in masks.values()])
        assert (~blocks).float().mean().item() == pytest.approx(fraction, abs=0.01)
        assert all(m.shape == (10, 10) for m in masks.values())
    # Within a pair all blocks have the same size here (unit counts are multiples of 10),
    # so each child layer's weight sparsity equals its pair's block sparsity.
    P.apply_masks(model, masks)
    for (parent, child), keep in masks.items():
        expected = (~keep).double().mean().item()
        assert _weight_sparsity(model, [child]) == pytest.approx(expected, abs=1e-9)


def test_block_magnitude_prunes_the_weakest_blocks():
    model = _small_mlp()
    with torch.no_grad():
        model.fc3.weight.fill_(1.0)
        model.fc3.weight[:, :4] = 0.01  # first parent group of fc3 is weak
    masks = P.magnitude_masks(model, [("fc2", "fc3")], prune_fraction=0.5, groups=(1, 2))
    assert masks[("fc2", "fc3")].tolist() == [[False, True]]


def test_unstructured_magnitude_masks_are_weight_shaped_and_global():
    torch.manual_seed(0)
    model = models.ClassroomCNN(widths=(6, 8, 10))
    masks = P.magnitude_masks(model, prune_fraction=0.4, granularity="unstructured")
    children = [c for _, c in models.layer_pairs(model)]
    assert set(masks) == set(children)
    for name, m in masks.items():
        assert m.shape == model.get_submodule(name).weight.shape
    all_w = torch.cat([model.get_submodule(n).weight.detach().abs().flatten() for n in children])
    kept = torch.cat([masks[n].flatten() for n in children])
    assert (~kept).float().mean().item() == pytest.approx(0.4, abs=0.01)
    assert all_w[~kept].max() <= all_w[kept].min()  # one global magnitude threshold
    P.apply_masks(model, masks)
    assert _weight_sparsity(model, children) == pytest.approx(0.4, abs=0.01)


def test_random_masks_are_reproducible_by_seed():
    model = _small_mlp()
    a = P.random_masks(model, prune_fraction=0.5, groups=(2, 2), seed=7)
    b = P.random_masks(model, prune_fraction=0.5, groups=(2, 2), seed=7)
    c = P.random_masks(model, prune_fraction=0.5, seed=8,
                       groups={("fc1", "fc2"): (4, 5), ("fc2", "fc3"): (3, 4)})
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert c[("fc1", "fc2")].shape == (4, 5) and c[("fc2", "fc3")].shape == (3, 4)
    d = P.random_masks(model, prune_fraction=0.5, groups=(2, 2), seed=8)
    assert any(not torch.equal(a[k], d[k]) for k in a)


def test_baseline_argument_errors():
    model = _small_mlp()
    with pytest.raises(KeyError, match="valid layers"):
        P.random_masks(model, [("fc1", "fc9")], prune_fraction=0.5, groups=(2, 2))
    with pytest.raises(ValueError, match="exceed"):
        P.random_masks(model, prune_fraction=0.5, groups=(2, 11))
    with pytest.raises(ValueError, match="groups is required"):
        P.magnitude_masks(model, prune_fraction=0.5)
    with pytest.raises(ValueError, match="granularity"):
        P.magnitude_masks(model, prune_fraction=0.5, granularity="filter", groups=(2, 2))
    with pytest.raises(KeyError, match="no entry"):
        P.random_masks(model, prune_fraction=0.5, groups={("fc1", "fc2"): (2, 2)})


def test_fraction_prunes_exactly_that_share_when_values_tie():
    """Estimates are counts, so many D values tie; q still prunes round(q * blocks) blocks."""
    deps = {("a", "b"): torch.zeros(4, 5), ("b", "c"): torch.tensor([[0.0, 1.0], [1.0, 1.0]])}
    for q, expected in [(0.25, 6), (0.5, 12), (0.8, 19)]:
        masks = P.masks_from_dependencies(deps, prune_fraction=q, max_pair_fraction=1.0)
        assert sum(int((~k).sum()) for k in masks.values()) == expected
    masks = P.masks_from_dependencies(deps, prune_fraction=0.9, max_pair_fraction=0.75)
    assert int((~masks[("a", "b")]).sum()) == 15  # the cap still holds
