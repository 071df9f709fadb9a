"""All layer pairs of a conv network through MINT on the CPU: tiny VGG and tiny ResNet (issue 6).

Synthetic images keep these fast and independent of staged data; the same functions run at
paper scale in benchmarks/reproduce_cifar10.py.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from mint_teach import models, pipeline, pruning, train


def _images(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 10)


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


@pytest.mark.parametrize("name", ["tiny_vgg", "tiny_resnet"])
def test_all_pairs_dependencies_masks_and_compaction(name):
    torch.manual_seed(0)
    model = _randomise_bn(models.build_model(name))
    pairs = models.layer_pairs(model)
    assert len(pairs) == len(model.prunable) - 1
    groups = pipeline.pair_groups(model, pairs, 2)
    deps = pipeline.compute_dependencies(model, _images(), pairs, groups, seed=0, progress=False)
    assert set(deps) == set(pairs)
    for pair, d in deps.items():
        assert d.shape == groups[pair]
        assert torch.isfinite(d).all()
    masks = pruning.masks_from_dependencies(deps, prune_fraction=0.5)
    pruned = pruning.apply_masks(_randomise_bn(models.build_model(name)), masks)
    pruned.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        out = pruned.eval()(x)  # residual shapes stay valid with every pair masked
    assert out.shape == (4, 10)
    children = [c for _, c in pairs]
    report = pruning.sparsity_report(pruned, layers=children)
    assert 20 < report["total"]["pruned_pct"] < 60
    small = pruning.compact(pruned)
    with torch.no_grad():
        assert torch.allclose(small.eval()(x), out, atol=1e-4)
    assert pruning.count_params(small) <= pruning.count_params(model)


def test_resnet_masks_keep_skip_connections_valid_and_compaction_shrinks_blocks():
    torch.manual_seed(1)
    model = _randomise_bn(models.build_model("tiny_resnet"))
    pairs = [(p, c) for p, c in models.layer_pairs(model) if c.endswith("conv2")]
    # kill half the block-internal channels: every conv1 -> conv2 pair loses parent group 0
    masks = {}
    for parent, child in pairs:
        keep = torch.ones(2, 2, dtype=torch.bool)
        keep[:, 0] = False
        masks[(parent, child)] = keep
    pruning.apply_masks(model, masks)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    small = pruning.compact(model).eval()
    with torch.no_grad():
        assert torch.allclose(small(x), ref, atol=1e-4)
    block = small.layer1[0]
    assert block.conv1.out_channels < model.layer1[0].conv1.out_channels
    assert block.conv2.out_channels == model.layer1[0].conv2.out_channels  # skip path intact
    assert pruning.count_params(small) < pruning.count_params(model)


def test_time_estimate_is_positive_and_grows_with_pairs():
    small = pipeline.estimate_dependency_seconds(300, {("a", "b"): (2, 2)})
    large = pipeline.estimate_dependency_seconds(300, {("a", "b"): (20, 20)})
    assert 0 < small < large


def test_classroom_cnn_learns_on_a_tiny_synthetic_task():
    """The classroom CNN's training path works on images: two colour classes separate fast."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 3, 32, 32, generator=g) * 0.5
    x[:, 0] += (2 * y - 1)[:, None, None].float()
    ds = TensorDataset(x, y)
    torch.manual_seed(0)
    net = models.ClassroomCNN(widths=(8, 16), num_classes=2)
    train.fit(net, ds, epochs=3, lr=0.05, batch_size=32, progress=False)
    assert train.evaluate(net, ds) > 0.95
