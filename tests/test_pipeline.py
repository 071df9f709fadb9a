"""The pipeline and the CLI, end to end on digits (sections 5, 6, 7)."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from mint_teach import data, models, pipeline, pruning, train


def test_config_rejects_bad_input():
    with pytest.raises(ValueError, match="prune_fraction"):
        pipeline.MintConfig(prune_fraction=1.5)
    with pytest.raises(ValueError, match="prune_fraction"):
        pipeline.MintConfig(prune_fraction=[0.5, -0.1])
    with pytest.raises(ValueError, match="dataset"):
        pipeline.MintConfig(dataset="imagenet")
    with pytest.raises(ValueError, match="model"):
        pipeline.MintConfig(model="alexnet")


def test_unknown_layer_pair_is_a_keyerror_listing_valid_layers():
    net = models.build_model("mlp", in_features=64)
    with pytest.raises(KeyError, match=r"\['fc1', 'fc2', 'fc3'\]"):
        models.layer_pairs(net, [("fc1", "fc9")])


def test_output_pair_gets_one_child_group_per_class():
    net = models.build_model("mlp", in_features=64)
    groups = pipeline.pair_groups(net, models.layer_pairs(net), 20)
    assert groups == {("fc1", "fc2"): (20, 20), ("fc2", "fc3"): (10, 20)}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = pipeline.MintConfig(dataset="digits", groups=10, samples_per_class=60,
                              prune_fraction=[0.5, 0.8], finetune_epochs=2,
                              baselines=("magnitude", "unstructured"), out_dir=str(out),
                              quick=True, progress=False, reuse_checkpoint=False)
    return pipeline.run_mint(cfg), out


def test_run_mint_on_digits_end_to_end(digits_run):
    result, out = digits_run
    assert result.baseline_acc > 0.9
    assert set(result.dependencies) == {("fc1", "fc2"), ("fc2", "fc3")}
    assert result.dependencies[("fc1", "fc2")].shape == (10, 10)
    mint = [r for r in result.rows if r["method"] == "MINT"]
    assert [r["fraction"] for r in mint] == [0.5, 0.8]
    assert mint[0]["pruned_pct"] < mint[1]["pruned_pct"]
    for r in mint:  # the per-pair cap (0.75) holds even at q = 0.8
        assert 0 < r["pruned_pct"] <= 75.0 + 1.0
    for r in result.rows:  # fine-tuning with the masks fixed recovers accuracy
        assert r["acc"] >= r["acc_before_ft"] - 0.01
        assert r["acc_recalibrated"] is None  # the MLP has no batch norm
    methods = {r["method"] for r in result.rows}
    assert methods == {"MINT", "magnitude (blocks)", "magnitude (unstructured)"}
    # magnitude at the same granularity prunes the same share of weights, within a group's size
    for q in (0.5, 0.8):
        a = next(r for r in result.rows if r["method"] == "MINT" and r["fraction"] == q)
        b = next(r for r in result.rows if r["method"] == "magnitude (blocks)" and r["fraction"] == q)
        assert abs(a["pruned_pct"] - b["pruned_pct"]) < 3.0
    saved = json.loads((out / "digits-mlp" / "result.json").read_text())
    assert saved["baseline_acc"] == pytest.approx(result.baseline_acc)
    assert (out / "digits-mlp" / "dependencies.png").stat().st_size > 1000


def test_pruned_model_keeps_zeros_and_compact_model_matches(digits_run):
    result, _ = digits_run
    pruned = result.pruned_model.eval()
    weight = pruned.fc2.weight
    mask = pruned.fc2.weight_mask
    assert torch.count_nonzero(weight[mask == 0]) == 0
    x = data.load_dataset("digits", train=False).batch(torch.arange(64))[0]
    with torch.no_grad():
        assert torch.allclose(result.compact_model.eval()(x), pruned(x), atol=1e-5)
    assert result.compact["acc_after"] == pytest.approx(
        train.evaluate(pruned, data.load_dataset("digits", train=False)), abs=1e-6)


def test_checkpoint_is_reused_when_the_recipe_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    cfg = pipeline.MintConfig(dataset="digits", train={"epochs": 2}, progress=False)
    tr, te = data.load_dataset("digits"), data.load_dataset("digits", train=False)
    m1, acc1, reused1 = pipeline.train_baseline(cfg, tr, te)
    m2, acc2, reused2 = pipeline.train_baseline(cfg, tr, te)
    assert (reused1, reused2) == (False, True)
    assert acc1 == acc2
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    other = pipeline.MintConfig(dataset="digits", train={"epochs": 3}, progress=False)
    assert pipeline.train_baseline(other, tr, te)[2] is False


def test_cli_run_reports_errors_clearly(capsys):
    from mint_teach.__main__ import main

    assert main(["run", "--dataset", "digits", "--pairs", "fc1:fc7", "--no-progress",
                 "--out", ""]) == 2
    assert "fc7" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--pairs", "fc1-fc2"])


def test_prune_and_finetune_reports_accuracy_with_batchnorm_recalibrated():
    train_set, test_set = data.load_dataset("digits"), data.load_dataset("digits", train=False)
    torch.manual_seed(0)
    net = models.ClassroomCNN(widths=(8, 16), pools=1, in_channels=1)
    train.fit(net, train_set, epochs=2, progress=False)
    masks = {"features.conv2": (torch.rand(16, 8, 3, 3) > 0.6).float()}
    out = pipeline.prune_and_finetune(net, masks, train_set, test_set, epochs=0, lr=0.1,
                                      layers=["features.conv2"], progress=False)
    probe = train.recalibrate_batchnorm(pruning.apply_masks(copy.deepcopy(net), masks), train_set)
    assert out["acc_recalibrated"] == pytest.approx(train.evaluate(probe, test_set))
    assert out["acc"] == pytest.approx(out["acc_before_ft"])  # no fine-tuning: BN left as it was
    assert out["acc_recalibrated"] != pytest.approx(out["acc_before_ft"])
