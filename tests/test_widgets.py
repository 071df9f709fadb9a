"""The explorers show the numbers the lower modules compute, and they change as they should."""
from __future__ import annotations

import copy
import re

import matplotlib.pyplot as plt
import pytest
import torch

from mint_teach import data, graphs, mi, models, pipeline, pruning, train, widgets


def _shown(label: str, prefix: str) -> float:
    """The number printed after ``prefix`` in a widget's HTML label."""
    match = re.search(re.escape(prefix) + r"\s*(-?[0-9]+(?:\.[0-9]+)?)", label)
    assert match is not None, f"{prefix!r} not in label {label!r}"
    return float(match.group(1))


# ----------------------------------------------------------------------------- mst_explorer

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mst_explorer_same_clouds_cross_often_far_clouds_rarely(seed):
    box = widgets.mst_explorer(30, seed=seed)
    box.slider.value = 0.0
    r_same, d_same = box.state["R"], box.state["D_HP"]
    box.slider.value = 4.0
    r_far, d_far = box.state["R"], box.state["D_HP"]
    assert r_same >= 20 and abs(d_same) < 0.35  # about half of the 59 edges cross
    assert r_far <= 3 and d_far > 0.8
    assert r_far < r_same and d_far > d_same


@pytest.mark.parametrize("separation", [0.0, 0.7, 2.5, 4.0])
def test_mst_explorer_numbers_match_an_independent_count(separation):
    n = 30
    box = widgets.mst_explorer(n, seed=3)
    box.slider.value = separation
    state = box.state
    points, membership = state["points"], state["membership"]
    assert points.shape == (2 * n, 2) and membership.tolist() == [0] * n + [1] * n

    edges = graphs.mst(points, backend="torch")  # another MST algorithm, same tree
    r = graphs.cross_edges(edges, membership)
    assert state["R"] == r
    assert state["D_HP"] == pytest.approx(1 - r * (2 * n) / (2 * n * n))
    assert state["D_HP"] == pytest.approx(mi.henze_penrose(points[:n], points[n:]))

    label = box.label.value
    assert _shown(label, "R =") == r
    assert _shown(label, "D_HP =") == pytest.approx(state["D_HP"], abs=5e-4)


def test_mst_explorer_slider_moves_cloud_b_only():
    box = widgets.mst_explorer(12, dim=3, seed=0)
    box.slider.value = 0.0
    before, picture = box.state["points"].clone(), box.image.value
    box.slider.value = 2.0
    after = box.state["points"]
    assert after.shape == (24, 3)
    assert torch.equal(after[:12], before[:12])
    shift = torch.tensor([2.0, 0.0, 0.0], dtype=after.dtype)
    assert torch.allclose(after[12:] - before[12:], shift)
    assert box.image.value != picture and box.image.value[:4] == b"\x89PNG"


def test_mst_explorer_validates():
    with pytest.raises(ValueError, match="n must"):
        widgets.mst_explorer(1)
    with pytest.raises(ValueError, match="separation"):
        widgets.mst_explorer(10, separation=5.0)
    with pytest.raises(ValueError, match="seed"):
        widgets.mst_explorer(10, seed=-1)


# ----------------------------------------------------------------------------- threshold_explorer

@pytest.fixture(scope="module")
def digits():
    """A digits MLP trained here (no cache involved) and its dependency matrices."""
    train_set = data.load_dataset("digits", train=True)
    test_set = data.load_dataset("digits", train=False)
    model = models.build_model("mlp", in_features=64, num_classes=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small MLP: one thread is faster on a busy two-core machine
    try:
        train.fit(model, train_set, epochs=10, lr=0.05, seed=0, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    pairs = models.layer_pairs(model)
    rows = data.class_balanced_subset(train_set, 60, seed=0)
    deps = pipeline.compute_dependencies(model, rows, pairs, pipeline.pair_groups(model, pairs, 10),
                                         seed=0, device="cpu", progress=False)
    return model, deps, test_set


def _independent(model, deps, test_set, **how):
    masks = pruning.masks_from_dependencies(deps, **how)
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    children = [child for _, child in deps]
    pct = pruning.sparsity_report(pruned, layers=children)["total"]["pruned_pct"]
    return masks, pct, train.evaluate(pruned, test_set, device="cpu")


def test_threshold_explorer_more_fraction_prunes_more(digits):
    model, deps, test_set = digits
    box = widgets.threshold_explorer(model, deps, test_set, device="cpu")
    shown = {}
    for q in (0.2, 0.6):
        box.slider.value = q
        label = box.label.value
        shown[q] = _shown(label, "params pruned:")
        assert shown[q] == pytest.approx(box.state["pruned_pct"], abs=0.005)
        assert _shown(label, "accuracy before fine-tuning:") == pytest.approx(
            100 * box.state["accuracy"], abs=0.005)
        assert f"all {len(test_set)} items" in label
    assert shown[0.6] > shown[0.2] + 10
    box.slider.value = 0.0
    assert box.state["pruned_pct"] == 0.0 and box.state["blocks_pruned"] == 0
    assert box.state["accuracy"] == box.state["baseline_accuracy"]


@pytest.mark.parametrize("q", [0.2, 0.6, 0.95])
def test_threshold_explorer_matches_an_independently_pruned_model(digits, q):
    model, deps, test_set = digits
    box = widgets.threshold_explorer(model, deps, test_set, value=q, device="cpu")
    masks, pct, acc = _independent(model, deps, test_set, prune_fraction=q)
    assert box.state["masks"].keys() == masks.keys()
    assert all(torch.equal(box.state["masks"][k], masks[k]) for k in masks)
    assert box.state["pruned_pct"] == pytest.approx(pct)
    assert box.state["accuracy"] == pytest.approx(acc)
    # per-pair cap 0.75: no pair loses more than three quarters of its blocks
    assert all((~keep).float().mean() <= 0.75 for keep in box.state["masks"].values())


def test_threshold_explorer_delta_mode(digits):
    model, deps, test_set = digits
    values = torch.cat([d.flatten() for d in deps.values()])
    box = widgets.threshold_explorer(model, deps, test_set, mode="delta", device="cpu")
    assert box.slider.min < float(values.min())
    assert box.slider.max == pytest.approx(float(values.max()))
    box.slider.value = box.slider.min  # below every D: nothing pruned
    assert box.state["pruned_pct"] == 0.0
    assert _shown(box.label.value, "params pruned:") == 0.0
    delta = float(values.median())
    box.slider.value = delta
    _, pct, acc = _independent(model, deps, test_set, threshold=box.slider.value)
    assert box.state["pruned_pct"] == pytest.approx(pct) and pct > 0
    assert box.state["accuracy"] == pytest.approx(acc)


def test_threshold_explorer_leaves_model_and_figures_alone(digits):
    model, deps, test_set = digits
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    figures = plt.get_fignums()
    box = widgets.threshold_explorer(model, deps, test_set, eval_items=100, seed=1, device="cpu")
    first = box.image.value
    box.slider.value = 0.9
    assert box.image.value != first and box.image.value[:4] == b"\x89PNG"
    assert plt.get_fignums() == figures  # every figure drawn was closed
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert box.state["eval_items"] == 100 and "subset of 100" in box.label.value


def test_threshold_explorer_validates(digits):
    model, deps, test_set = digits
    with pytest.raises(ValueError, match="mode"):
        widgets.threshold_explorer(model, deps, test_set, mode="quantile")
    with pytest.raises(ValueError, match="dependencies"):
        widgets.threshold_explorer(model, {}, test_set)
    with pytest.raises(ValueError, match="value"):
        widgets.threshold_explorer(model, deps, test_set, value=1.5)
    with pytest.raises(KeyError, match="fc9"):
        widgets.threshold_explorer(model, {("fc1", "fc9"): torch.zeros(2, 2)}, test_set)
