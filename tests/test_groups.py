"""Tests for mint_teach.groups: splitting units into groups, and the groups argument (section 3)."""
from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mint_teach import groups as G
from mint_teach import mi, models, pipeline, pruning


def _mlp() -> nn.Module:
    """in-12-8-3: pairs (fc1, fc2) and (fc2, fc3), fc3 the output layer of 3 classes."""
    return models.MLP(in_features=6, hidden=(12, 8), num_classes=3)


# ----------------------------------------------------------------------------- split_groups

@pytest.mark.parametrize("n_units, n_groups", [(10, 3), (12, 4), (500, 20), (7, 7), (5, 1)])
def test_split_groups_matches_numpy_array_split(n_units, n_groups):
    bounds = G.split_groups(n_units, n_groups)
    expected = [(int(g[0]), int(g[-1]) + 1) for g in np.array_split(np.arange(n_units), n_groups)]
    assert bounds == expected


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", 11])
def test_split_groups_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="n_groups"):
        G.split_groups(10, bad)


def test_uneven_split_known_answer():
    assert G.split_groups(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert G.group_ids(10, 3).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert G.group_ids(4, 4).tolist() == [0, 1, 2, 3]


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n_units=st.integers(1, 400), data=st.data())
def test_groups_cover_every_unit_once_with_sizes_within_one(n_units, data):
    n_groups = data.draw(st.integers(1, n_units))
    bounds = G.split_groups(n_units, n_groups)
    assert [u for a, b in bounds for u in range(a, b)] == list(range(n_units))
    sizes = [b - a for a, b in bounds]
    assert len(sizes) == n_groups and max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger groups first
    ids = G.group_ids(n_units, n_groups)
    assert torch.equal(torch.bincount(ids, minlength=n_groups), torch.tensor(sizes))


def test_old_names_are_the_same_function():
    assert mi.split_groups is G.split_groups
    assert pipeline.pair_groups is G.resolve_groups
    assert pipeline.groups_per_layer is G.groups_per_layer
    assert pruning.unit_groups(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]


# ----------------------------------------------------------------------------- layer_units

def test_layer_units_of_linear_and_conv():
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(20, 7))
    assert G.layer_units(net, "0") == 5
    assert G.layer_units(net, "3") == 7
    with pytest.raises(TypeError, match="out_features"):
        G.layer_units(net, "1")
    with pytest.raises(KeyError, match="'9'"):
        G.layer_units(net, "9")


# ----------------------------------------------------------------------------- resolve_groups

def test_int_gives_the_output_layer_one_group_per_class():
    net = _mlp()
    pairs = models.layer_pairs(net)
    assert G.resolve_groups(net, pairs, 4) == {("fc1", "fc2"): (4, 4), ("fc2", "fc3"): (3, 4)}
    # more groups than units: each layer is capped at its unit count
    assert G.resolve_groups(net, pairs, 10) == {("fc1", "fc2"): (8, 10), ("fc2", "fc3"): (3, 8)}


def test_every_accepted_form_resolves_to_the_same_dict():
    net = _mlp()
    pairs = models.layer_pairs(net)
    canonical = {("fc1", "fc2"): (4, 4), ("fc2", "fc3"): (3, 4)}
    assert G.resolve_groups(net, pairs, 4) == canonical
    assert G.resolve_groups(net, pairs, {"fc2": (4, 4), "fc3": (3, 4)}) == canonical
    assert G.resolve_groups(net, pairs, canonical) == canonical
    assert G.resolve_groups(net, pairs, (3, 4)) == {pair: (3, 4) for pair in pairs}
    one = [("fc1", "fc2")]
    for form in ((4, 5), [4, 5], (np.int64(4), 5), {"fc2": (4, 5)}, {("fc1", "fc2"): (4, 5)}):
        assert G.resolve_groups(net, one, form) == {("fc1", "fc2"): (4, 5)}


@pytest.mark.parametrize("groups, error, match", [
    (None, ValueError, "groups is required"),
    (0, ValueError, "groups must be at least 1; got 0"),
    (True, TypeError, "groups must be an integer; got True"),
    ("20", TypeError, "groups must be a positive int.*got '20'"),
    ((2, 2, 2), TypeError, r"groups must be \(G_c, G_p\).*\(2, 2, 2\)"),
    ((2, 0), ValueError, "groups G_p must be at least 1; got 0"),
    ((2, 2.5), TypeError, "groups G_p must be an integer"),
    ({"fc2": 3}, TypeError, r"groups\['fc2'\] must be \(G_c, G_p\)"),
    ({"fc2": (1, 1), ("fc2", "fc3"): (1, 1)}, TypeError, "keys must be all"),
    ({"fc2": (2, 2)}, KeyError, "no entry for child layer 'fc3'"),
    ({("fc1", "fc2"): (2, 2)}, KeyError, r"no entry for pair \('fc2', 'fc3'\)"),
    ((9, 2), ValueError, r"exceed its unit counts \(child 8, parent 12\)"),
    ({"fc2": (2, 2), "fc3": (4, 2)}, ValueError, r"\('fc2', 'fc3'\) exceed"),
])
def test_bad_groups_raise_naming_the_argument(groups, error, match):
    net = _mlp()
    with pytest.raises(error, match=match):
        G.resolve_groups(net, models.layer_pairs(net), groups)


def test_check_groups_arg_names_the_form_without_a_model():
    assert G.check_groups_arg(20) == "count"
    assert G.check_groups_arg((20, 20)) == "tuple"
    assert G.check_groups_arg({"fc2": (2, 3)}) == "by_child"
    assert G.check_groups_arg({("fc1", "fc2"): (2, 3)}) == "by_pair"


def test_mint_config_takes_int_tuple_or_dict_by_child():
    assert pipeline.MintConfig(groups=(5, 5)).groups == (5, 5)
    assert pipeline.MintConfig(groups={"fc2": (5, 5)}).groups == {"fc2": (5, 5)}
    with pytest.raises(TypeError, match="groups") as info:
        pipeline.MintConfig(groups={("fc1", "fc2"): (5, 5)})
    assert info.value.field == "groups"


def test_baselines_accept_every_form():
    net = _mlp()
    a = pruning.random_masks(net, prune_fraction=0.5, groups={"fc2": (4, 5), "fc3": (3, 4)})
    b = pruning.random_masks(net, prune_fraction=0.5,
                             groups={("fc1", "fc2"): (4, 5), ("fc2", "fc3"): (3, 4)})
    assert all(torch.equal(a[k], b[k]) for k in a)
    masks = pruning.magnitude_masks(net, prune_fraction=0.5, groups=4)
    assert masks[("fc2", "fc3")].shape == (3, 4)


# ----------------------------------------------------------------------------- groups_per_layer

def test_groups_per_layer_known_answer():
    net = models.build_model("cnn", in_channels=3, num_classes=10)
    got = G.groups_per_layer(net, units_per_group=16)
    widths = {name: G.layer_units(net, name) for name in models.prunable_layers(net)}
    for (parent, child), (g_c, g_p) in zip(models.layer_pairs(net), got.values()):
        expected = max(4, min(32, widths[parent] // 16))
        assert g_p == min(widths[parent], expected)
    last = models.prunable_layers(net)[-1]
    assert got[last] == (10, got[last][1])  # one group per class
    assert G.resolve_groups(net, models.layer_pairs(net), got) == {
        pair: got[pair[1]] for pair in models.layer_pairs(net)}


def test_groups_per_layer_rejects_bad_counts():
    with pytest.raises(ValueError, match="units_per_group"):
        G.groups_per_layer(_mlp(), units_per_group=0)


# ----------------------------------------------------------------------------- imports and docs

def test_importing_pruning_does_not_load_networkx():
    code = ("import sys, mint_teach.pruning; assert 'networkx' not in sys.modules, 'pruning'; "
            "import mint_teach as mt; assert 'networkx' not in sys.modules, 'mint_teach'; "
            "assert not {'graphs', 'mi'} & set(vars(mt)), 'lazy modules loaded'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_docstring_examples_run():
    assert doctest.testmod(G).failed == 0
