"""Figures: readable by a student, and drawing exactly the numbers they are given."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from mint_teach import plots


def test_figures_a_student_can_read():
    plots.course_style()
    assert plt.rcParams["figure.dpi"] >= 100 and plt.rcParams["font.size"] >= 10
    g = torch.Generator().manual_seed(0)
    deps = {("fc1", "fc2"): torch.rand(5, 7, generator=g) - 0.2}
    fig = plots.plot_dependencies(deps)
    heat, bar = fig.axes[0], fig.axes[1]
    assert "conditional GMI" in bar.get_ylabel()  # the colour bar says what D is
    for ticks in (heat.get_xticks(), heat.get_yticks()):
        inside = [t for t in ticks if -0.5 <= t <= 6.5]
        assert inside and all(float(t).is_integer() for t in inside), ticks  # no half groups
    plt.close(fig)

    keep = torch.ones(5, 7, dtype=torch.bool)
    keep[:, 2] = False
    fig = plots.plot_masks({("fc1", "fc2"): keep})
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "kept" in labels and any(label.startswith("cut") for label in labels)
    assert "14.3% of blocks cut" in fig.axes[0].get_title()  # 5 of 35 blocks
    plt.close(fig)

    fig = plots.plot_history({"loss": [1.0, 0.5], "train_acc": [0.5, 0.8]})
    assert len(fig.axes) == 2  # one quantity per axis, no twin axis
    assert fig.axes[0].get_ylabel() == "training loss"
    plt.close(fig)


def test_block_pvalue_map_has_whole_group_ticks():
    """Group indices are integers: a 20 x 20 map must not be ticked 0.0, 2.5, ..., 17.5."""
    p = torch.linspace(0.01, 1, 400).reshape(20, 20)
    fig = plots.plot_block_pvalues(p, title="fc1 -> fc2")
    heat, bar = fig.axes[0], fig.axes[1]
    for ticks in (heat.get_xticks(), heat.get_yticks()):
        inside = [t for t in ticks if -0.5 <= t <= 19.5]
        assert len(inside) >= 3 and all(float(t).is_integer() for t in inside), ticks
    assert heat.get_xlabel() == "parent group i" and heat.get_ylabel() == "child group j"
    assert "p-value" in bar.get_ylabel() and heat.get_title() == "fc1 -> fc2"
    assert heat.images[0].get_array().shape == (20, 20)
    plt.close(fig)
    with pytest.raises(ValueError, match="pvalues must be a 2-D"):
        plots.plot_block_pvalues(torch.zeros(3))


def _bins(counts, accuracy, confidence):
    edges = torch.linspace(0, 1, len(counts) + 1, dtype=torch.float64)
    return {"edges": edges, "counts": torch.tensor(counts),
            "accuracy": torch.tensor(accuracy, dtype=torch.float64),
            "confidence": torch.tensor(confidence, dtype=torch.float64)}


def test_reliability_and_robustness_draw_one_panel_or_curve_per_model():
    nan = float("nan")
    reports = {"original": {"bins": _bins([0, 3, 1], [nan, 0.5, 1.0], [nan, 0.6, 0.9])},
               "pruned": _bins([2, 0, 2], [0.0, nan, 1.0], [0.2, nan, 0.8])}
    fig = plots.plot_reliability(reports)
    assert len(fig.axes) == 2
    assert [len(ax.patches) for ax in fig.axes] == [2, 2]  # one bar per non-empty bin
    assert fig.axes[0].get_title() == "original: ECE 0.100"  # computed from the bins
    assert fig.axes[1].get_title() == "pruned: ECE 0.200"
    plt.close(fig)
    curves = {"original": {"eps": [0, 0.1], "accuracy": [0.9, 0.4], "attack": "fgsm"},
              "pruned": {"eps": [0, 0.1], "accuracy": [0.8, 0.2], "attack": "pgd"}}
    fig = plots.plot_robustness(curves)
    lines = [ln for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == ["original (FGSM)", "pruned (PGD)"]
    assert list(lines[1].get_ydata()) == [80.0, 20.0]  # in %, as every accuracy of the course
    assert fig.axes[0].get_ylabel() == "accuracy under attack (%)"
    plt.close(fig)
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="one axes per report"):
        plots.plot_reliability(reports, ax=ax)
    plt.close("all")
