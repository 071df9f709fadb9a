"""Activations: hooks after the nonlinearity, conv maps averaged over space (section 2)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from mint_teach import activations, data, models


def test_collect_averages_conv_maps_over_space():
    torch.manual_seed(0)
    net = models.build_model("tiny_vgg").eval()
    x = torch.randn(6, 3, 32, 32)
    ds = torch.utils.data.TensorDataset(x, torch.arange(6) % 2)
    acts, labels = activations.collect(net, ds, ["features.conv1", "classifier"], progress=False)
    feat = net.features[:3](x)  # conv1 -> bn1 -> relu1
    assert torch.allclose(acts["features.conv1"], feat.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(acts["classifier"], net(x), atol=1e-5)
    assert labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_collect_removes_hooks_when_forward_raises():
    net = models.build_model("mlp", in_features=64)
    bad = torch.utils.data.TensorDataset(torch.randn(4, 1, 7, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(RuntimeError):
        activations.collect(net, bad, ["fc1", "fc2"], progress=False)
    assert all(not m._forward_hooks for m in net.modules())


def test_collect_unknown_layer_lists_valid_ones():
    net = models.build_model("mlp", in_features=64)
    with pytest.raises(KeyError, match="fc1"):
        activations.collect(net, data.load_dataset("digits"), ["conv9"], progress=False)


def test_one_balanced_sample_indexes_every_layer_without_replacement():
    # notebook 01: the pipeline's sampler draws the rows; the same rows index every layer
    labels = torch.arange(100) % 4
    acts = {"a": torch.arange(100.0)[:, None], "b": -torch.arange(100.0)[:, None] * 2}
    rows = data.class_balanced_subset(TensorDataset(acts["a"], labels), 5, seed=3).indices
    assert rows == data.balanced_indices(labels, 5, seed=3).tolist()
    sub, y = {name: a[rows] for name, a in acts.items()}, labels[rows]
    assert torch.equal(sub["b"], -2 * sub["a"])
    assert len(set(sub["a"].flatten().long().tolist())) == 20
    assert torch.bincount(y).tolist() == [5, 5, 5, 5]
    assert data.class_balanced_subset(TensorDataset(acts["a"], labels), 5, seed=3).indices == rows
    with pytest.raises(ValueError, match="class 3 has only 2"):
        data.balanced_indices(torch.tensor([0, 0, 0, 1, 1, 1, 3, 3]), 3)
