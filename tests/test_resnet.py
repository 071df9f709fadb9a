"""ResNet-50 from torchvision: structure found from the module graph, masks, compaction."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from mint_teach import activations, models, pipeline, pruning, train


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = models.build_model("tiny_resnet50", num_classes=5)
    with torch.no_grad():  # batch-norm statistics far from the identity, so slicing matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    return model.eval()


def test_full_resnet50_matches_torchvision():
    ours = models.build_model("resnet50", num_classes=1000)
    ref = torchvision.models.resnet50()
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    assert pruning.count_params(ours) == 25_557_032  # torchvision's published count
    ours.load_state_dict(ref.state_dict())  # torchvision's weights load unchanged
    ours.eval(), ref.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_pairs_stay_inside_bottlenecks(tiny):
    pairs = models.layer_pairs(tiny)
    assert len(pairs) == 2 * 16  # 3 + 4 + 6 + 3 bottlenecks, two pairs each
    for parent, child in pairs:
        block, p_name = parent.rsplit(".", 1)
        assert child == f"{block}.{ {'conv1': 'conv2', 'conv2': 'conv3'}[p_name] }"
    parents = {p for p, _ in pairs}
    assert not any(p.endswith("conv3") for p in parents)  # the skip path's channels stay whole
    assert "conv1" not in tiny.prunable and not any("downsample" in n for n in tiny.prunable)
    assert tiny.prunable[-1] == "fc" and tiny.activation_of["fc"] == "fc"
    assert tiny.activation_of["layer2.0.conv1"] == "layer2.0.relu1"
    assert tiny.activation_of["layer2.0.conv3"] == "layer2.0.relu3"  # after the addition


def test_only_pairs_where_the_parent_feeds_the_child(tiny):
    assert models.layer_pairs(tiny, [("layer2.1.conv1", "layer2.1.conv2")]) == \
        [("layer2.1.conv1", "layer2.1.conv2")]
    with pytest.raises(ValueError, match="does not feed"):  # across a skip connection
        models.layer_pairs(tiny, [("layer2.0.conv3", "layer2.1.conv1")])
    with pytest.raises(KeyError, match="not a prunable layer"):
        models.layer_pairs(tiny, [("conv1", "layer1.0.conv1")])


def test_shared_relu_falls_back_to_batchnorm():
    # torchvision's own bottleneck calls one ReLU module three times: a hook on it would
    # record three activations, so the last module called once (the batch norm) is used.
    found = models.find_structure(torchvision.models.resnet18(num_classes=3))
    assert found["activation_of"]["layer1.0.conv1"] == "layer1.0.bn1"
    assert ("layer1.0.conv1", "layer1.0.conv2") in found["pairs"]
    assert not any(p.endswith("conv2") for p, _ in found["pairs"])  # basic block: conv2 adds


def test_vgg_chain_through_pooling_and_flatten():
    found = models.find_structure(torchvision.models.vgg11(num_classes=3))
    pairs = found["pairs"]
    assert ("features.18", "classifier.0") in pairs  # conv -> pool -> flatten -> linear
    assert len(pairs) == 10 and found["prunable"][-1] == "classifier.6"


def test_untraceable_model_is_a_type_error():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(TypeError, match="model.prunable"):
        models.attach_structure(Branchy())


def test_activations_of_tiny_resnet(tiny):
    x = torch.randn(12, 3, 32, 32)
    data = torch.utils.data.TensorDataset(x, torch.arange(12) % 3)
    layers = ["layer1.0.conv1", "layer3.1.conv3"]
    acts, labels = activations.collect(tiny, data, layers, progress=False)
    assert acts["layer1.0.conv1"].shape == (12, tiny.layer1[0].conv1.out_channels)
    assert acts["layer3.1.conv3"].shape == (12, tiny.layer3[1].conv3.out_channels)
    assert (acts["layer1.0.conv1"] >= 0).all() and labels.shape == (12,)


def test_masks_and_compaction_keep_outputs(tiny):
    pairs = models.layer_pairs(tiny)
    groups = pipeline.pair_groups(tiny, pairs, 4)
    masks = pruning.random_masks(tiny, pairs, prune_fraction=0.7, groups=groups, seed=1,
                                 max_pair_fraction=0.9)
    pruned = pruning.apply_masks(__import__("copy").deepcopy(tiny), masks).eval()
    small = pruning.compact(pruned).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(small(x), pruned(x), atol=1e-4, rtol=1e-4)
    assert pruning.count_params(small) < pruning.count_params(tiny)
    for name, module in small.named_modules():  # block outputs keep their width
        if name.endswith("conv3"):
            assert module.out_channels == tiny.get_submodule(name).out_channels
    assert any(small.get_submodule(p).out_channels < tiny.get_submodule(p).out_channels
               for p, _ in pairs)


def test_weights_from_a_local_file(tmp_path, tiny):
    path = tmp_path / "w.pt"
    train.save_checkpoint(tiny, path)
    again = models.build_model("tiny_resnet50", num_classes=5, weights=path)
    for (k, a), b in zip(tiny.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(FileNotFoundError, match="weights file"):
        models.build_model("tiny_resnet50", weights=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="width and weights"):
        models.build_model("mlp", width=0.5)
    with pytest.raises(ValueError, match="width must be"):
        models.build_model("resnet50", width=0)


def _imagenet_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_imagenet.py"
    spec = importlib.util.spec_from_file_location("reproduce_imagenet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_published_group_counts_follow_the_job_script():
    script = _imagenet_script()
    groups = script.published_groups(models.build_model("resnet50", num_classes=1000))
    # published numbering: stem 1, layer1.0 = 2, 3, 4 (+ downsample 5), layer1.1 = 6, 7, 8 ...
    # a parent up to conv 19 gets 16 groups, to 37 32, then 64; a child switches one earlier
    assert groups[("layer1.0.conv1", "layer1.0.conv2")] == (16, 16)       # key 2
    assert groups[("layer2.2.conv1", "layer2.2.conv2")] == (32, 16)       # key 19
    assert groups[("layer3.3.conv2", "layer3.3.conv3")] == (32, 32)       # key 36
    assert groups[("layer3.4.conv1", "layer3.4.conv2")] == (64, 64)       # key 38
    assert len(groups) == 32


def test_imagenet_script_without_data_explains_and_exits_2(tmp_path, capsys):
    script = _imagenet_script()
    assert script.main(["--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no ImageNet" in err and "ROOT/val/n01440764" in err and "--synthetic" in err
