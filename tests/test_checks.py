"""The exercise checkers: a right answer passes, a wrong one fails and says what is off."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mint_teach import checks, graphs, mi, models, pruning


def verdict(capsys) -> str:
    """The one line a check printed."""
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0, out
    return out


def passes(capsys, result) -> str:
    line = verdict(capsys)
    assert result is True
    assert line.startswith(checks.CORRECT), line
    return line


def fails(capsys, result, *fragments: str) -> str:
    line = verdict(capsys)
    assert result is False
    assert line.startswith(checks.NOT_YET), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def test_none_answer_is_a_reminder_for_every_check(capsys):
    net = models.build_model("mlp", in_features=4)
    calls = [
        lambda: checks.check_sparsity(net, "fc2", None),
        lambda: checks.check_conv_average(torch.zeros(2, 3, 4, 4), None),
        lambda: checks.check_per_class([0, 1], 1, None),
        lambda: checks.check_cross_edges([[0, 1]], [0, 1], None),
        lambda: checks.check_hp(3, 4, 4, None),
        lambda: checks.check_gaussian_mi(0.5, None),
        lambda: checks.check_groups(10, 3, None),
        lambda: checks.check_threshold({("a", "b"): torch.rand(2, 2)}, 0.5, None),
        lambda: checks.check_dead_units(net, "fc1", "fc2", None),
        lambda: checks.check_ece(torch.tensor([[0.9, 0.1]]), torch.tensor([0]), None),
    ]
    for call in calls:
        fails(capsys, call(), "still None")


# ----------------------------------------------------------------------------- sparsity (00)

@pytest.fixture
def masked_mlp():
    torch.manual_seed(0)
    net = models.build_model("mlp", in_features=20)
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[:, :3] = False  # 75 % of fc2's blocks
    pruning.apply_masks(net, {("fc1", "fc2"): keep})
    return net


def test_sparsity_right_answer(capsys, masked_mlp):
    w = masked_mlp.fc2.weight
    answer = 100 * (w == 0).sum().item() / w.numel()
    passes(capsys, checks.check_sparsity(masked_mlp, "fc2", answer))
    passes(capsys, checks.check_sparsity(masked_mlp, ["fc2"], torch.tensor(answer)))


def test_sparsity_common_slips(capsys, masked_mlp):
    w = masked_mlp.fc2.weight
    pct = 100 * (w == 0).sum().item() / w.numel()
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", pct / 100), "fraction", "percent")
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", 100 - pct), "kept")
    zeros_b = (w == 0).sum().item()
    with_bias = 100 * zeros_b / (w.numel() + masked_mlp.fc2.bias.numel())
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", with_bias), "biases")
    everything = pruning.sparsity_report(masked_mlp)["total"]["pruned_pct"]
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", everything), "all prunable layers")
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", 12.0), "12.00", f"{pct:.2f}")
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", "lots"), "expected a percentage")


# ----------------------------------------------------------------------------- conv average (01)

def test_conv_average(capsys):
    maps = torch.rand(5, 3, 4, 6)
    passes(capsys, checks.check_conv_average(maps, maps.mean(dim=(2, 3))))
    passes(capsys, checks.check_conv_average(maps.numpy(), maps.mean(dim=(2, 3)).numpy()))
    fails(capsys, checks.check_conv_average(maps, maps.sum(dim=(2, 3))), "summed", "24")
    fails(capsys, checks.check_conv_average(maps, maps.amax(dim=(2, 3))), "max pooling")
    fails(capsys, checks.check_conv_average(maps, maps.mean(dim=1)), "channels")
    fails(capsys, checks.check_conv_average(maps, maps), "spatial axes")
    fails(capsys, checks.check_conv_average(maps, maps.mean(dim=(0, 2, 3))), "images")
    fails(capsys, checks.check_conv_average(maps, maps.mean(dim=(2, 3)) + 0.1),
          "values differ")


def test_per_class(capsys):
    labels = torch.arange(40) % 4
    rows = torch.cat([torch.nonzero(labels == c).flatten()[:3] for c in range(4)])
    passes(capsys, checks.check_per_class(labels, 3, rows))
    passes(capsys, checks.check_per_class(labels.numpy(), 3, rows.tolist()))
    repeated = rows.clone()
    repeated[1] = repeated[0]
    fails(capsys, checks.check_per_class(labels, 3, repeated), "without replacement",
          f"row {int(rows[0])}")
    fails(capsys, checks.check_per_class(labels, 3, rows[:-1]), "exactly 3", "class 3: 2")
    fails(capsys, checks.check_per_class(labels, 3, rows.float()), "integer")
    fails(capsys, checks.check_per_class(labels, 3, [0, 99]), "0..39")


# ----------------------------------------------------------------------------- graphs (02, 03)

def test_cross_edges(capsys):
    edges = [[0, 1], [1, 2], [2, 3], [3, 4]]
    membership = ["a", "b", "b", "a", "a"]  # edges 0-1 and 2-3 cross
    assert graphs.cross_edges(edges, membership) == 2
    passes(capsys, checks.check_cross_edges(edges, membership, 2))
    passes(capsys, checks.check_cross_edges(torch.tensor(edges), membership, torch.tensor(2)))
    fails(capsys, checks.check_cross_edges(edges, membership, 4), "every edge")
    fails(capsys, checks.check_cross_edges([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]],
                                           [0, 1, 1, 1, 1, 1], 4), "*within* a sample")
    fails(capsys, checks.check_cross_edges([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]],
                                           [0, 1, 1, 1, 1, 1], 2), "twice")
    fails(capsys, checks.check_cross_edges(edges, membership, 3), "*both* ends", "R = 2")


def test_hp(capsys):
    r, m, n = 7, 10, 12
    right = 1 - r * (m + n) / (2 * m * n)
    assert right == pytest.approx(float(mi.hp_from_count(r, m, n)))
    passes(capsys, checks.check_hp(r, m, n, right))
    passes(capsys, checks.check_hp(r, m, n, np.float32(right)))
    fails(capsys, checks.check_hp(r, m, n, 1 - right), "'1 -'")
    fails(capsys, checks.check_hp(r, m, n, 1 - r * (m + n) / (m * n)), "factor 2")
    fails(capsys, checks.check_hp(r, m, n, 0.5), "1 - R (m + n) / (2 m n)", f"{right:.4f}")
    # a negative divergence is kept raw, not clipped
    fails(capsys, checks.check_hp(12, 10, 10, 0.0), "raw value")
    passes(capsys, checks.check_hp(12, 10, 10, -0.2))


def test_gaussian_mi(capsys):
    rho = 0.8
    right = -0.5 * math.log(1 - rho ** 2)
    passes(capsys, checks.check_gaussian_mi(rho, right))
    passes(capsys, checks.check_gaussian_mi(rho, torch.tensor(right)))
    fails(capsys, checks.check_gaussian_mi(rho, right / math.log(2)), "bits")
    fails(capsys, checks.check_gaussian_mi(rho, -right), "minus sign")
    fails(capsys, checks.check_gaussian_mi(rho, -0.5 * math.log(1 - rho)), "square")
    fails(capsys, checks.check_gaussian_mi(rho, rho), "correlation itself")
    fails(capsys, checks.check_gaussian_mi(rho, 2.0), f"{right:.4f}")
    fails(capsys, checks.check_gaussian_mi(rho, [1, 2]), "expected a number")
    with pytest.raises(ValueError, match="rho"):
        checks.check_gaussian_mi(1.0, 0.3)


# ----------------------------------------------------------------------------- groups, threshold (04)

def test_groups(capsys):
    passes(capsys, checks.check_groups(10, 3, [range(4), range(4, 7), range(7, 10)]))
    passes(capsys, checks.check_groups(10, 3, [(0, 4), (4, 7), (7, 10)]))
    passes(capsys, checks.check_groups(10, 3, [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    passes(capsys, checks.check_groups(3, 3, mi.split_groups(3, 3)))
    passes(capsys, checks.check_groups(500, 20, pruning.unit_groups(500, 20)))
    fails(capsys, checks.check_groups(10, 3, [range(3), range(3, 6), range(6, 10)]),
          "larger groups first")
    fails(capsys, checks.check_groups(10, 3, [range(2), range(2, 4), range(4, 10)]),
          "at most one")
    fails(capsys, checks.check_groups(10, 3, [range(5), range(5, 10)]), "expected 3 groups")
    fails(capsys, checks.check_groups(10, 3, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]),
          "contiguous")
    fails(capsys, checks.check_groups(10, 3, [range(4), range(4, 7), range(7, 9)]),
          "cover")
    fails(capsys, checks.check_groups(10, 3, "0-3, 4-6, 7-9"), "list of groups")


def test_threshold(capsys):
    g = torch.Generator().manual_seed(0)
    deps = {("fc1", "fc2"): torch.rand(20, 20, generator=g),
            ("fc2", "fc3"): torch.rand(10, 20, generator=g) * 0.5}
    values = torch.cat([d.flatten() for d in deps.values()]).double()
    q = 0.9
    right = torch.quantile(values, q).item()
    passes(capsys, checks.check_threshold(deps, q, right))
    passes(capsys, checks.check_threshold(deps, q, np.quantile(values.numpy(), q)))
    fails(capsys, checks.check_threshold(deps, q, torch.quantile(deps[("fc1", "fc2")].double(),
                                                                 q).item()),
          "global threshold", "('fc1', 'fc2')")
    fails(capsys, checks.check_threshold(deps, q, torch.quantile(values, 1 - q).item()),
          "(1 - q)")
    fails(capsys, checks.check_threshold(deps, q, values.mean().item()), "mean")
    lower = float(np.quantile(values.numpy(), q, method="lower"))
    fails(capsys, checks.check_threshold(deps, q, lower), "linear interpolation")
    fails(capsys, checks.check_threshold(deps, q, 5.0), "quantile of all 600")


def test_threshold_agrees_with_the_masks():
    g = torch.Generator().manual_seed(1)
    deps = {("a", "b"): torch.rand(6, 7, generator=g), ("b", "c"): torch.rand(5, 6, generator=g)}
    q = 0.4
    delta = float(np.quantile(torch.cat([d.flatten() for d in deps.values()]).numpy(), q))
    direct = pruning.masks_from_dependencies(deps, threshold=delta, max_pair_fraction=1.0)
    by_q = pruning.masks_from_dependencies(deps, prune_fraction=q, max_pair_fraction=1.0)
    assert all(torch.equal(direct[k], by_q[k]) for k in deps)


# ----------------------------------------------------------------------------- dead units (05)

def test_dead_units(capsys):
    net = nn.Sequential()
    net.add_module("a", nn.Linear(3, 6))
    net.add_module("b", nn.Linear(6, 4))
    with torch.no_grad():
        net.b.weight.fill_(1.0)
        net.b.weight[:, [1, 4]] = 0.0  # parent units 1 and 4 are dead
        net.b.weight[2, :] = 0.0  # child unit 2 has no input left (not a dead parent)
    passes(capsys, checks.check_dead_units(net, "a", "b", 2))
    passes(capsys, checks.check_dead_units(net, "a", "b", [4, 1]))
    passes(capsys, checks.check_dead_units(net, "a", "b", torch.tensor(2)))
    fails(capsys, checks.check_dead_units(net, "a", "b", 4), "still alive")
    fails(capsys, checks.check_dead_units(net, "a", "b", 1), "rows", "column block")
    fails(capsys, checks.check_dead_units(net, "a", "b", 5), "columns of b.weight")
    fails(capsys, checks.check_dead_units(net, "a", "b", [1, 2]), "1 dead units missing",
          "[4]", "[2]")
    with torch.no_grad():
        net.b.weight.fill_(1.0)
    assert "none of the 6 units" in passes(capsys, checks.check_dead_units(net, "a", "b", 0))


def test_dead_units_of_a_conv_pair_agree_with_compact(capsys):
    torch.manual_seed(0)
    net = models.build_model("cnn", in_channels=1)
    keep = torch.ones(8, 8, dtype=torch.bool)
    keep[:, 2] = False  # parent group 2 of conv1 (channels 8..11) loses every connection
    pruning.apply_masks(net, {("features.conv1", "features.conv2"): keep})
    small = pruning.compact(net)
    removed = net.features.conv1.out_channels - small.features.conv1.out_channels
    assert removed == 4
    passes(capsys, checks.check_dead_units(net, "features.conv1", "features.conv2", removed))
    passes(capsys, checks.check_dead_units(net, "features.conv1", "features.conv2",
                                           [8, 9, 10, 11]))


# ----------------------------------------------------------------------------- ECE (06)

def test_ece(capsys):
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(400, 5, generator=g)
    probs = logits.softmax(dim=1)
    conf, pred = probs.max(dim=1)
    # under-confident at low confidence (always right), over-confident above (always wrong),
    # so the bins' gaps have both signs and no shortcut gives the same number
    labels = torch.where(conf < 0.55, pred, (pred + 1) % 5)
    # by hand: 15 equal-width bins on (0, 1], weighted gaps
    which = torch.clamp(torch.ceil(conf * 15).long() - 1, 0, 14)
    right = 0.0
    for b in range(15):
        inside = which == b
        if inside.any():
            gap = (pred[inside] == labels[inside]).double().mean() - conf[inside].double().mean()
            right += inside.double().mean().item() * abs(gap.item())
    passes(capsys, checks.check_ece(probs, labels, right))
    passes(capsys, checks.check_ece(probs.numpy(), labels.numpy(), right))
    fails(capsys, checks.check_ece(probs, labels, 100 * right), "percentage")
    overall = abs(conf.double().mean().item() - (pred == labels).double().mean().item())
    fails(capsys, checks.check_ece(probs, labels, overall), "overall gap")
    from mint_teach import analysis

    bins = analysis.reliability_bins(probs, labels, 15)
    keep = bins["counts"] > 0
    unweighted = (bins["accuracy"] - bins["confidence"]).abs()[keep].mean().item()
    fails(capsys, checks.check_ece(probs, labels, unweighted), "weight each bin")
    ten = analysis.expected_calibration_error(probs, labels, 10)
    fails(capsys, checks.check_ece(probs, labels, ten), "10 bins")
    fails(capsys, checks.check_ece(probs, labels, 0.9), f"{right:.4f}")


# ----------------------------------------------------------------------------- slips of issue 13

def test_hp_names_both_slips_when_they_coincide(capsys):
    # R = 2, m = n = 6: dropping the factor 2 and dropping the "1 -" both give 1/3
    line = fails(capsys, checks.check_hp(2, 6, 6, 1 - 2 * 12 / 36), "factor 2", "'1 -'")
    assert "several slips" in line


def test_hp_with_impossible_sizes_is_a_message(capsys):
    fails(capsys, checks.check_hp(3, 0, 5, 0.5), "m, n >= 1", "m = 0")
    fails(capsys, checks.check_hp(20, 5, 5, 0.5), "R <= m + n - 1")
    fails(capsys, checks.check_hp(2.5, 6, 6, 0.5), "whole number")
    fails(capsys, checks.check_hp("two", 6, 6, 0.5), "the count R")


def test_rounded_answers_ask_for_more_digits(capsys):
    fails(capsys, checks.check_hp(2, 6, 6, 0.67), "rounded to 2 decimals", "more digits")
    fails(capsys, checks.check_hp(2, 6, 6, 0.667), "rounded to 3 decimals")
    fails(capsys, checks.check_gaussian_mi(0.8, 0.51), "rounded to 2 decimals")
    fails(capsys, checks.check_hp(2, 6, 6, 0.6), "0.6667")  # not a rounding of 0.6667


def test_cross_edges_recognises_the_published_count(capsys):
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import cdist

    toy = np.array([[2.0], [0.0], [4.5], [1.0], [3.0]])  # notebook 03's toy tree
    labels = np.array([1, 0, 1, 0, 1])
    tree = minimum_spanning_tree(cdist(toy, toy))
    edges = np.column_stack(tree.nonzero())
    published = sum(labels[k] != labels[tree.indices[k]] for k in range(len(tree.indices)))
    assert published == len(edges) == 4  # the defect's count equals the number of edges here
    fails(capsys, checks.check_cross_edges(edges, labels, 4), "published code", "section 4c")
    passes(capsys, checks.check_cross_edges(edges, labels, 1))
    fails(capsys, checks.check_cross_edges(edges, labels, 1.5), "whole number")
    passes(capsys, checks.check_cross_edges(edges, labels, 1.0))


def test_weight_orig_gets_a_hint(capsys, masked_mlp):
    orig = masked_mlp.fc2.weight_orig
    share = 100 * (orig == 0).sum().item() / orig.numel()
    fails(capsys, checks.check_sparsity(masked_mlp, "fc2", share), "weight_orig", "weight_mask")


def test_sparsity_rounded_to_one_decimal(capsys, masked_mlp):
    pct = pruning.sparsity_report(masked_mlp, ["fc2"])["total"]["pruned_pct"]
    rough = round(pct, 1)
    if abs(rough - pct) > 0.01:  # a rounding the tolerance does not already accept
        fails(capsys, checks.check_sparsity(masked_mlp, "fc2", rough), "more digits")


def test_dead_units_reads_floats_as_counts(capsys):
    net = nn.Sequential()
    net.add_module("a", nn.Linear(3, 6))
    net.add_module("b", nn.Linear(6, 4))
    with torch.no_grad():
        net.b.weight.fill_(1.0)
        net.b.weight[:, [1, 4]] = 0.0
    passes(capsys, checks.check_dead_units(net, "a", "b", 2.0))
    passes(capsys, checks.check_dead_units(net, "a", "b", np.float32(2)))
    fails(capsys, checks.check_dead_units(net, "a", "b", 8.0), "you gave 8")
    fails(capsys, checks.check_dead_units(net, "a", "b", 2.5), "whole number")
    fails(capsys, checks.check_dead_units(net, "a", "b", [1.5, 4]), "whole numbers")
    fails(capsys, checks.check_dead_units(net, "a", "b", ["1", "4"]), "whole numbers")


def test_dead_units_from_weight_orig_get_a_hint(capsys):
    torch.manual_seed(0)
    net = models.build_model("mlp", in_features=20)
    keep = torch.ones(20, 20, dtype=torch.bool)
    keep[:, 3] = False  # parent group 3 of fc1 loses every connection into fc2
    pruning.apply_masks(net, {("fc1", "fc2"): keep})
    assert hasattr(net.fc2, "weight_orig")
    fails(capsys, checks.check_dead_units(net, "fc1", "fc2", 0), "weight_orig")


def test_groups_rejects_strings_none_and_fractions(capsys):
    fails(capsys, checks.check_groups(10, 3, [None, range(4, 7), range(7, 10)]), "group 0")
    fails(capsys, checks.check_groups(10, 3, ["0-3", "4-6", "7-9"]), "group 0")
    fails(capsys, checks.check_groups(10, 3, [[0, 1, 2, 3.5], [4, 5, 6], [7, 8, 9]]),
          "whole numbers")
    fails(capsys, checks.check_groups(10, 3, [(0, 4.7), (4, 7), (7, 10)]), "whole numbers")
    passes(capsys, checks.check_groups(10, 3, [[0.0, 1.0, 2.0, 3.0], [4, 5, 6], [7, 8, 9]]))
    fails(capsys, checks.check_groups(10, 0, [range(10)]), "n_groups")
    fails(capsys, checks.check_groups("ten", 3, [range(10)]), "n_units")


ODD_ANSWERS = [None, "abc", b"x", [1, "a"], {}, {"a": 1}, object(), float("nan"), float("inf"),
               [], (), True, -1, 10 ** 300, 1e300, np.array([[1, 2]]), torch.tensor([]),
               torch.tensor([1.0, 2.0]), [[0, 1], [2]], range(3), {1, 2}, 1 + 2j]


@pytest.mark.parametrize("answer", ODD_ANSWERS, ids=lambda a: type(a).__name__)
def test_every_check_answers_any_input_with_a_message(capsys, answer):
    net = models.build_model("mlp", in_features=4)
    g = torch.Generator().manual_seed(0)
    calls = [
        lambda: checks.check_sparsity(net, "fc2", answer),
        lambda: checks.check_conv_average(torch.rand(2, 3, 4, 4, generator=g), answer),
        lambda: checks.check_per_class([0, 1, 0, 1], 1, answer),
        lambda: checks.check_cross_edges([[0, 1], [1, 2]], [0, 1, 1], answer),
        lambda: checks.check_hp(3, 4, 4, answer),
        lambda: checks.check_gaussian_mi(0.5, answer),
        lambda: checks.check_groups(10, 3, answer),
        lambda: checks.check_threshold({("a", "b"): torch.rand(2, 2, generator=g)}, 0.5, answer),
        lambda: checks.check_dead_units(net, "fc1", "fc2", answer),
        lambda: checks.check_ece(torch.tensor([[0.9, 0.1]]), torch.tensor([0]), answer),
        lambda: checks.check_block_pvalues(torch.rand(2, 2, generator=g),
                                           torch.rand(4, 2, 2, generator=g), answer),
    ]
    for call in calls:
        result = call()
        assert result in (True, False)
        line = verdict(capsys)
        assert line.startswith((checks.CORRECT, checks.NOT_YET)), line


# ----------------------------------------------------------------------------- block p-values (07)

def test_block_pvalues(capsys):
    g = torch.Generator().manual_seed(0)
    D = torch.rand(3, 4, generator=g)
    null = torch.rand(9, 3, 4, generator=g)
    null[0, 0, 0] = D[0, 0]  # a tie: >= and > differ
    right = mi.block_pvalues(D, null)
    passes(capsys, checks.check_block_pvalues(D, null, right))
    passes(capsys, checks.check_block_pvalues(D.numpy(), null.numpy(), right.numpy()))
    exceed = (null >= D[None]).sum(dim=0).double()
    fails(capsys, checks.check_block_pvalues(D, null, exceed / 9), "add one")
    strict = (null > D[None]).sum(dim=0).double()
    fails(capsys, checks.check_block_pvalues(D, null, (1 + strict) / 10), ">=")
    fails(capsys, checks.check_block_pvalues(D, null, 1 - right), "below")
    fails(capsys, checks.check_block_pvalues(D, null, right[:2]), "shape (3, 4)")
    fails(capsys, checks.check_block_pvalues(D, null, right + 0.01), "differ")
    fails(capsys, checks.check_block_pvalues(D, null, "p"), "expected a tensor")
