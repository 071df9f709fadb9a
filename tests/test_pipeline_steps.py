"""The pipeline's steps one at a time: same-share baselines, fine-tuning settings, compaction."""
from __future__ import annotations

import pytest
import torch

from mint_teach import data, models, pipeline, pruning, train


def _net(seed: int = 0) -> models.MLP:
    torch.manual_seed(seed)
    return models.MLP(in_features=12, hidden=(10, 8), num_classes=3)


def _mint(net, cut: dict) -> dict:
    """Block masks with a given number of blocks cut per pair (first blocks in reading order)."""
    out = {}
    for pair, (shape, n) in cut.items():
        keep = torch.ones(shape, dtype=torch.bool)
        keep.view(-1)[:n] = False
        out[pair] = keep
    return out


@pytest.mark.parametrize("method", ["random", "magnitude"])
def test_block_baselines_cut_as_many_blocks_per_pair_as_mint(method):
    net = _net()
    mint = _mint(net, {("fc1", "fc2"): ((4, 5), 7), ("fc2", "fc3"): ((3, 4), 2)})
    out = pipeline.same_share_masks(net, mint, method, seed=3)
    assert set(out) == set(mint)
    for pair, keep in mint.items():
        assert out[pair].shape == keep.shape
        assert int((~out[pair]).sum()) == int((~keep).sum())


def test_magnitude_baseline_cuts_the_blocks_of_smallest_weights():
    net = _net()
    with torch.no_grad():
        net.fc2.weight.fill_(1.0)
        net.fc2.weight[4:6, 0:2] = 0.01  # child group 2, parent group 0 of a 5 x 5 split
        net.fc2.weight[0:2, 8:10] = 0.02  # child group 0, parent group 4
    mint = _mint(net, {("fc1", "fc2"): ((4, 5), 2)})
    keep = pipeline.same_share_masks(net, mint, "magnitude")[("fc1", "fc2")]
    assert sorted(map(tuple, torch.nonzero(~keep).tolist())) == [(0, 4), (2, 0)]


def test_random_baseline_is_seeded():
    net = _net()
    mint = _mint(net, {("fc1", "fc2"): ((4, 5), 9)})
    a = pipeline.same_share_masks(net, mint, "random", seed=1)[("fc1", "fc2")]
    b = pipeline.same_share_masks(net, mint, "random", seed=1)[("fc1", "fc2")]
    c = pipeline.same_share_masks(net, mint, "random", seed=2)[("fc1", "fc2")]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unstructured_baseline_cuts_the_same_share_of_weights():
    net = _net()
    mint = _mint(net, {("fc1", "fc2"): ((4, 5), 7), ("fc2", "fc3"): ((3, 4), 2)})
    out = pipeline.same_share_masks(net, mint, "unstructured")
    assert set(out) == {"fc2", "fc3"}
    mint_net = pruning.apply_masks(_net(), mint)
    same = pruning.apply_masks(_net(), out)
    a = pruning.sparsity_report(mint_net, ["fc2", "fc3"])["total"]["zeros"]
    b = pruning.sparsity_report(same, ["fc2", "fc3"])["total"]["zeros"]
    assert a == b and a > 0


def test_same_share_masks_rejects_bad_input():
    net = _net()
    mint = _mint(net, {("fc1", "fc2"): ((4, 5), 7)})
    with pytest.raises(ValueError, match="method.*random.*'gradient'"):
        pipeline.same_share_masks(net, mint, "gradient")
    with pytest.raises(TypeError, match="masks"):
        pipeline.same_share_masks(net, {}, "random")


def _digits_pair():
    train_set = data.class_balanced_subset(data.load_dataset("digits"), 20, seed=0)
    test_set = data.load_dataset("digits", train=False)
    torch.manual_seed(0)
    net = models.build_model("mlp", in_features=64)
    train.fit(net, train_set, epochs=1, progress=False)
    masks = pruning.masks_from_dependencies({("fc1", "fc2"): torch.rand(10, 10)},
                                            prune_fraction=0.5)
    return net, masks, train_set, test_set


def test_prune_and_finetune_uses_weight_decay_and_keeps_a_checkpoint(tmp_path):
    net, masks, train_set, test_set = _digits_pair()
    ft = dict(epochs=2, lr=0.05, layers=["fc2"], progress=False)
    state = tmp_path / "ft.state.pt"
    strong = pipeline.prune_and_finetune(net, masks, train_set, test_set, **ft,
                                         weight_decay=0.5, checkpoint=state)
    saved = torch.load(state, weights_only=False)
    assert saved["epoch"] == 2 and saved["settings"]["weight_decay"] == 0.5
    none = pipeline.prune_and_finetune(net, masks, train_set, test_set, **ft, weight_decay=0.0)
    assert none["model"].fc1.weight.norm() > strong["model"].fc1.weight.norm()
    # a rerun with the same checkpoint resumes after the last epoch: the same weights
    again = pipeline.prune_and_finetune(net, masks, train_set, test_set, **ft,
                                        weight_decay=0.5, checkpoint=state)
    assert torch.equal(again["model"].fc1.weight, strong["model"].fc1.weight)


def test_summarise_compaction_matches_the_pruned_network():
    net, masks, train_set, test_set = _digits_pair()
    pruned = pruning.apply_masks(net, {("fc1", "fc2"): torch.zeros(10, 10, dtype=torch.bool)
                                       .index_fill_(1, torch.tensor([0]), True)})
    small, info = pipeline.summarise_compaction(_digits_pair()[0], pruned, test_set)
    assert info["params_after"] == pruning.count_params(small) < info["params_before"]
    assert small.fc1.out_features < pruned.fc1.out_features
    assert info["acc_after"] == pytest.approx(train.evaluate(pruned, test_set), abs=1e-6)
    assert info["ms_before"] > 0 and info["ms_after"] > 0


def test_inference_time_is_a_positive_median():
    net = _net()
    assert pruning.inference_time(net, torch.randn(4, 12), repeats=3) > 0
    with pytest.raises(ValueError, match="repeats"):
        pruning.inference_time(net, torch.randn(4, 12), repeats=0)
