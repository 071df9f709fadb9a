"""Tests for mint_teach.analysis: calibration (ECE, reliability bins) and FGSM / PGD robustness."""
from __future__ import annotations

import matplotlib
import pytest
import torch
from torch.utils.data import Subset

from mint_teach import analysis as A
from mint_teach import data, models, plots, train

matplotlib.use("Agg")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tensors are tiny: one thread avoids oversubscribing a busy 2-core machine (20x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits_test():
    return data.load_dataset("digits", train=False)


@pytest.fixture(scope="module")
def trained_mlp():
    torch.manual_seed(0)
    model = models.build_model("mlp", in_features=64)
    train.fit(model, data.load_dataset("digits"), epochs=5, progress=False, seed=0)
    return model.eval()


@pytest.fixture(scope="module")
def batch(digits_test):
    x, y = digits_test.batch(torch.arange(200))
    return x, y


def _pixels(x, ds):
    """Normalised inputs back to pixels in [0, 1]."""
    return x * ds.std + ds.mean


# ----------------------------------------------------------------------------- calibration

def _calibrated_two_class(n_per_level: int = 1000):
    """Predictions whose accuracy equals their confidence at every confidence level."""
    probs, labels = [], []
    for conf in (0.55, 0.65, 0.75, 0.85, 0.95):
        n_right = round(conf * n_per_level)
        probs.append(torch.tensor([[conf, 1 - conf]], dtype=torch.float64).expand(n_per_level, 2))
        labels.append(torch.cat([torch.zeros(n_right), torch.ones(n_per_level - n_right)]))
    return torch.cat(probs), torch.cat(labels).long()


def test_ece_of_perfectly_calibrated_predictions_is_zero():
    probs, labels = _calibrated_two_class()
    assert A.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0, abs=1e-9)
    bins = A.reliability_bins(probs, labels, n_bins=10)
    full = bins["counts"] > 0
    assert full.sum() == 5
    assert torch.allclose(bins["accuracy"][full], bins["confidence"][full])


def test_ece_of_overconfident_predictor_is_its_accuracy_gap():
    # always 100 % sure of its prediction, right 70 % of the time -> ECE = 1 - 0.7
    n, k = 1000, 10
    pred = torch.arange(n) % k
    labels = pred.clone()
    labels[700:] = (pred[700:] + 1) % k
    probs = torch.nn.functional.one_hot(pred, k).float()
    assert A.expected_calibration_error(probs, labels) == pytest.approx(0.3, abs=1e-9)
    bins = A.reliability_bins(probs, labels, n_bins=15)
    assert bins["counts"][-1] == n and bins["counts"][:-1].sum() == 0
    assert bins["accuracy"][-1].item() == pytest.approx(0.7)


def test_ece_weights_each_bin_by_its_share_of_items():
    # half at confidence 0.9 but 60 % right (gap 0.3), half at 0.6 and 60 % right (gap 0)
    probs = torch.tensor([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10)
    labels = torch.tensor([0] * 6 + [1] * 4 + [0] * 6 + [1] * 4)
    assert A.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.15)


def test_from_logits_equals_passing_softmax_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(300, 5, generator=g)
    labels = torch.randint(0, 5, (300,), generator=g)
    a = A.expected_calibration_error(logits, labels, from_logits=True)
    b = A.expected_calibration_error(logits.softmax(1), labels)
    assert a == pytest.approx(b, abs=1e-6) and a > 0


def test_reliability_bins_shapes_counts_and_empty_bins():
    # bins are (lo, hi]: confidence 0.5 falls in (0.25, 0.5], 0.6 and 0.65 in (0.5, 0.75]
    probs = torch.tensor([[0.95, 0.05], [0.35, 0.65], [0.5, 0.5], [0.6, 0.4]])
    bins = A.reliability_bins(probs, torch.tensor([0, 1, 1, 1]), n_bins=4)
    assert bins["edges"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bins["counts"].tolist() == [0, 1, 2, 1]
    assert torch.isnan(bins["accuracy"][0]) and torch.isnan(bins["confidence"][0])
    assert bins["confidence"][1:].tolist() == pytest.approx([0.5, 0.625, 0.95])
    assert bins["accuracy"][1:].tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_calibration_report_agrees_with_predict(trained_mlp, digits_test):
    report = A.calibration_report(trained_mlp, digits_test, n_bins=10)
    logits, labels = train.predict(trained_mlp, digits_test)
    assert report["accuracy"] == pytest.approx(train.evaluate(trained_mlp, digits_test))
    assert report["ece"] == pytest.approx(
        A.expected_calibration_error(logits, labels, n_bins=10, from_logits=True), abs=1e-9)
    assert report["mean_confidence"] == pytest.approx(logits.softmax(1).max(1).values.mean().item(),
                                                      abs=1e-6)
    assert report["n"] == len(digits_test) == int(report["bins"]["counts"].sum())
    assert 0 < report["ece"] < 1


# ----------------------------------------------------------------------------- attacks

@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("eps", [0.03, 0.1, 0.3])
def test_attacks_stay_in_the_pixel_space_budget(trained_mlp, digits_test, batch, attack, eps):
    x, y = batch
    kw = {"mean": digits_test.mean, "std": digits_test.std}
    x_adv = A.fgsm(trained_mlp, x, y, eps, **kw) if attack == "fgsm" else \
        A.pgd(trained_mlp, x, y, eps, **kw)
    p, p_adv = _pixels(x, digits_test), _pixels(x_adv, digits_test)
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (p_adv - p).abs().max() <= eps + 1e-5
    assert p_adv.min() >= -1e-5 and p_adv.max() <= 1 + 1e-5
    # the budget is used, not wasted: many pixels move by the full eps (or to a [0, 1] wall)
    assert (p_adv - p).abs().max() >= eps - 1e-5
    assert ((p_adv - p).abs() > eps / 2).float().mean() > 0.3


def test_fgsm_in_pixel_space_matches_normalised_space(trained_mlp, digits_test, batch):
    # attacking pixels directly (a model that normalises inside) gives the same pixels
    x, y = batch
    mean, std = digits_test.mean, digits_test.std

    class Normalised(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, p):
            return self.inner((p - mean) / std)

    p = _pixels(x, digits_test).clamp(0, 1)
    p_adv = A.fgsm(Normalised(trained_mlp), p, y, 0.1)
    x_adv = A.fgsm(trained_mlp, x, y, 0.1, mean=mean, std=std)
    assert torch.allclose(_pixels(x_adv, digits_test), p_adv, atol=1e-5)


def test_pgd_same_seed_same_result_other_seed_differs(trained_mlp, digits_test, batch):
    x, y = batch
    kw = {"mean": digits_test.mean, "std": digits_test.std, "steps": 3}
    a = A.pgd(trained_mlp, x, y, 0.1, seed=7, **kw)
    b = A.pgd(trained_mlp, x, y, 0.1, seed=7, **kw)
    c = A.pgd(trained_mlp, x, y, 0.1, seed=8, **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    d = A.pgd(trained_mlp, x, y, 0.1, random_start=False, seed=1, **kw)
    e = A.pgd(trained_mlp, x, y, 0.1, random_start=False, seed=2, **kw)
    assert torch.equal(d, e)


def test_attacks_leave_no_gradients_weights_or_mode_changed(digits_test, batch):
    model = models.build_model("mlp", in_features=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()                          # dropout on: the attacks must switch it off
    x, y = batch
    kw = {"mean": digits_test.mean, "std": digits_test.std}
    a1, a2 = A.fgsm(model, x, y, 0.1, **kw), A.fgsm(model, x, y, 0.1, **kw)
    p1, p2 = A.pgd(model, x, y, 0.1, **kw), A.pgd(model, x, y, 0.1, **kw)
    assert torch.equal(a1, a2) and torch.equal(p1, p2)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_eps_zero_returns_the_input(trained_mlp, digits_test, batch):
    x, y = batch
    kw = {"mean": digits_test.mean, "std": digits_test.std}
    assert torch.equal(A.fgsm(trained_mlp, x, y, 0, **kw), x)
    assert torch.equal(A.pgd(trained_mlp, x, y, 0.0, **kw), x)


# ----------------------------------------------------------------------------- reports

@pytest.fixture(scope="module")
def reports(trained_mlp, digits_test):
    eps = (0, 0.05, 0.1, 0.2)
    return {attack: A.robustness_report(trained_mlp, digits_test, eps_list=eps, attack=attack,
                                        progress=False)
            for attack in ("fgsm", "pgd")}


def test_robustness_accuracy_starts_clean_and_falls_with_eps(trained_mlp, digits_test, reports):
    clean = train.evaluate(trained_mlp, digits_test)
    assert clean > 0.85
    for r in reports.values():
        assert r["eps"] == [0.0, 0.05, 0.1, 0.2] and r["n"] == len(digits_test)
        assert r["accuracy"][0] == pytest.approx(clean) == r["clean_accuracy"]
        assert all(b <= a + 1e-9 for a, b in zip(r["accuracy"], r["accuracy"][1:]))
    assert reports["fgsm"]["accuracy"][-1] < clean - 0.3
    for f, p in zip(reports["fgsm"]["accuracy"], reports["pgd"]["accuracy"]):
        assert p <= f + 0.03                 # the stronger attack does at least as much harm
    assert reports["pgd"]["steps"] == 10 and reports["fgsm"]["steps"] == 1


def test_robustness_report_reads_stats_through_subset_and_is_seeded(trained_mlp, digits_test):
    sub = Subset(digits_test, list(range(120)))
    auto = A.robustness_report(trained_mlp, sub, eps_list=(0.1,), attack="pgd", steps=3,
                               progress=False)
    given = A.robustness_report(trained_mlp, sub, eps_list=(0.1,), attack="pgd", steps=3,
                                mean=digits_test.mean, std=digits_test.std, progress=False)
    assert auto == given and auto["n"] == 120
    m1 = A.robustness_report(trained_mlp, digits_test, eps_list=(0.1,), max_items=50, seed=3,
                             progress=False)
    m2 = A.robustness_report(trained_mlp, digits_test, eps_list=(0.1,), max_items=50, seed=3,
                             progress=False)
    assert m1 == m2 and m1["n"] == 50


def test_compare_models_and_plots(trained_mlp, digits_test):
    untrained = models.build_model("mlp", in_features=64)
    out = A.compare_models({"trained": trained_mlp, "untrained": untrained}, digits_test,
                           eps_list=(0, 0.1), max_items=60, progress=False)
    assert set(out) == {"calibration", "robustness"}
    assert list(out["calibration"]) == ["trained", "untrained"]
    assert out["calibration"]["trained"]["accuracy"] > out["calibration"]["untrained"]["accuracy"]
    assert out["robustness"]["untrained"]["n"] == 60

    fig = plots.plot_reliability(out["calibration"])  # one panel per model, bars do not overlap
    assert len(fig.axes) == len(out["calibration"])
    for ax, (name, r) in zip(fig.axes, out["calibration"].items()):
        assert len(ax.patches) == int((r["bins"]["counts"] > 0).sum())
        assert ax.get_title().startswith(f"{name}: ECE")
    fig2 = plots.plot_robustness(out["robustness"])
    lines = [ln for ln in fig2.axes[0].get_lines() if ln.get_label() != "_nolegend_"]
    assert len(lines) == 2
    assert list(lines[0].get_ydata()) == pytest.approx(  # drawn in % like every course axis
        [100 * a for a in out["robustness"]["trained"]["accuracy"]])
    import matplotlib.pyplot as plt
    plt.close(fig)
    plt.close(fig2)


# ----------------------------------------------------------------------------- bad inputs

_P = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
_L = torch.tensor([0, 1])


@pytest.mark.parametrize("call,match", [
    (lambda: A.expected_calibration_error(_P, _L, n_bins=0), "n_bins"),
    (lambda: A.reliability_bins(_P, _L, n_bins=-3), "n_bins"),
    (lambda: A.expected_calibration_error(_P[0], _L), "probs must be 2-D"),
    (lambda: A.expected_calibration_error(_P, torch.tensor([0, 1, 1])), "labels"),
    (lambda: A.expected_calibration_error(_P, torch.tensor([0, 2])), "labels"),
    (lambda: A.expected_calibration_error(2 * _P, _L), "from_logits"),
    (lambda: plots.plot_reliability({}), "reports"),
    (lambda: plots.plot_robustness([]), "reports"),
])
def test_bad_calibration_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_attack_inputs_raise(trained_mlp, digits_test, batch):
    x, y = batch
    kw = {"mean": digits_test.mean, "std": digits_test.std}
    m = trained_mlp
    cases = [
        (lambda: A.fgsm(m, x, y, -0.1, **kw), "eps"),
        (lambda: A.pgd(m, x, y, -1, **kw), "eps"),
        (lambda: A.pgd(m, x, y, 0.1, steps=0, **kw), "steps"),
        (lambda: A.pgd(m, x, y, 0.1, alpha=-0.01, **kw), "alpha"),
        (lambda: A.fgsm(m, x, y[:5], 0.1, **kw), "y"),
        (lambda: A.fgsm(m, x, y, 0.1, mean=digits_test.mean), "mean and std"),
        (lambda: A.fgsm(m, x, y, 0.1, mean=[0.1, 0.2], std=[1, 1]), "mean"),
        (lambda: A.fgsm(m, x, y, 0.1), "mean and std"),        # normalised x, no stats given
        (lambda: A.robustness_report(m, digits_test, eps_list=(0, -0.1)), r"eps_list\[1\]"),
        (lambda: A.robustness_report(m, digits_test, eps_list=()), "eps_list"),
        (lambda: A.robustness_report(m, digits_test, attack="cw"), "attack"),
        (lambda: A.robustness_report(m, digits_test, max_items=0), "max_items"),
        (lambda: A.compare_models({"a": m}, digits_test, attack="PGD"), "attack"),
        (lambda: A.compare_models({"a": m}, digits_test, n_bins=0), "n_bins"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(TypeError, match="models"):
        A.compare_models({"a": "not a model"}, digits_test)
