"""Beyond accuracy: calibration and adversarial robustness of original vs pruned networks.

docs/method.md section 8. Two questions a student can ask of any network here:

- *Calibration*: when the network says "90 % sure", is it right 90 % of the time? Measured by
  the expected calibration error (ECE) over confidence bins (drawn as a reliability diagram
  by ``plots.plot_reliability``).
- *Robustness*: how fast does accuracy fall when every input is nudged by at most ``eps`` per
  pixel in the direction that hurts most? Measured with FGSM (one step) and PGD (many steps).

Datasets in this toolkit return *normalised* inputs ``(pixel - mean) / std``, but ``eps`` is
always given in pixel units, where images live in [0, 1]. The attacks therefore take the
dataset's ``mean`` and ``std``, un-normalise, perturb and clip in pixel space, and normalise
again before the network sees the result.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ._validation import check_choice, check_count, check_number
from .config import resolve_device
from .data import make_loader
from .train import predict

__all__ = [
    "ATTACKS",
    "calibration_report",
    "compare_models",
    "ece_from_bins",
    "expected_calibration_error",
    "fgsm",
    "pgd",
    "reliability_bins",
    "robustness_report",
]

ATTACKS = ("fgsm", "pgd")


# ----------------------------------------------------------------------------- checks

def _check_eps(name: str, value) -> float:
    """A perturbation size: a finite number >= 0 in pixel units (images in [0, 1])."""
    eps = check_number(name, value, low=0.0)
    if not math.isfinite(eps):
        raise ValueError(f"{name} must be a finite number >= 0 (pixel units, images in [0, 1]); "
                         f"got {value!r}")
    return eps


def _check_predictions(probs, labels, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities (N, K) and labels (N,) as tensors, or a ValueError naming what is wrong."""
    probs = torch.as_tensor(probs).detach().cpu()
    labels = torch.as_tensor(labels).detach().cpu()
    if probs.ndim != 2:
        raise ValueError(f"probs must be 2-D (items x classes); got shape {tuple(probs.shape)}")
    if not probs.is_floating_point():
        raise ValueError(f"probs must be floating point; got dtype {probs.dtype}")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must be 1-D with one label per row of probs "
                         f"({probs.shape[0]}); got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}")
    if probs.shape[0] == 0:
        raise ValueError("probs must have at least one row; got 0")
    if not torch.isfinite(probs).all():
        raise ValueError("probs must be finite; got NaN or inf")
    k = probs.shape[1]
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes; "
                         f"got values from {labels.min().item()} to {labels.max().item()}")
    probs = probs.double()
    if from_logits:
        return probs.softmax(dim=1), labels.long()
    sums = probs.sum(dim=1)
    bad = ((sums - 1).abs() > 1e-3) | (probs < -1e-6).any(dim=1)
    if bad.any():
        row = int(torch.nonzero(bad)[0])
        raise ValueError(f"probs rows must be probabilities summing to 1 (pass softmax "
                         f"probabilities, or logits with from_logits=True); row {row} sums to "
                         f"{sums[row].item():.4g} with minimum {probs[row].min().item():.4g}")
    return probs, labels.long()


# ----------------------------------------------------------------------------- calibration

def reliability_bins(probs, labels, n_bins: int = 15, *, from_logits: bool = False) -> dict:
    """Split predictions into equal-width confidence bins; give each bin's confidence and accuracy.

    Section 8. The confidence of a prediction is its largest probability; bin ``b`` holds the
    predictions with confidence in ``(edges[b], edges[b + 1]]`` (the first bin also holds 0).

    Parameters
    ----------
    probs : (N, K) softmax probabilities, rows summing to 1 (or logits with ``from_logits=True``).
    labels : (N,) true class indices.
    n_bins : number of equal-width bins on [0, 1].
    from_logits : treat ``probs`` as logits and apply a softmax first.

    Returns
    -------
    dict with ``edges`` (n_bins + 1,), ``confidence`` and ``accuracy`` (n_bins,) means per bin
    (NaN for empty bins), and ``counts`` (n_bins,) items per bin. All CPU tensors.
    """
    n_bins = check_count("n_bins", n_bins)
    probs, labels = _check_predictions(probs, labels, from_logits)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1])          # (N,) bin index in [0, n_bins - 1]
    counts = torch.bincount(which, minlength=n_bins)
    conf_sum = torch.bincount(which, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(which, weights=correct, minlength=n_bins)
    nonempty = counts > 0
    nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
    return {
        "edges": edges,
        "confidence": torch.where(nonempty, conf_sum / counts.clamp(min=1), nan),
        "accuracy": torch.where(nonempty, acc_sum / counts.clamp(min=1), nan),
        "counts": counts,
    }


def ece_from_bins(bins: Mapping) -> float:
    """ECE = sum over bins of (share of items in the bin) x |accuracy - confidence| (section 8).

    ``bins`` is a :func:`reliability_bins` dict (``counts``, ``accuracy``, ``confidence``);
    empty bins count for nothing.

    Examples
    --------
    >>> bins = {"counts": [3, 1, 0], "accuracy": [0.5, 1.0, float("nan")],
    ...         "confidence": [0.6, 0.9, float("nan")]}
    >>> round(ece_from_bins(bins), 4)
    0.1
    """
    counts = torch.as_tensor(bins["counts"]).double()
    keep = counts > 0
    accuracy = torch.as_tensor(bins["accuracy"]).double()
    gap = accuracy - torch.as_tensor(bins["confidence"]).double()
    return float((counts[keep] / counts.sum() * gap[keep].abs()).sum())


def expected_calibration_error(probs, labels, n_bins: int = 15, *,
                               from_logits: bool = False) -> float:
    """How far, on average, confidence is from accuracy: the expected calibration error (ECE).

    Section 8. ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|`` over the equal-width
    confidence bins of :func:`reliability_bins`; 0 means perfectly calibrated.

    Parameters
    ----------
    probs : (N, K) softmax probabilities, rows summing to 1 (or logits with ``from_logits=True``).
    labels : (N,) true class indices.
    n_bins : number of equal-width bins on [0, 1].
    from_logits : treat ``probs`` as logits and apply a softmax first.

    Examples
    --------
    Always 100 % sure, right 3 times in 4: over-confident by 0.25.

    >>> probs = torch.tensor([[1.0, 0.0]] * 4)
    >>> labels = torch.tensor([0, 0, 0, 1])
    >>> round(expected_calibration_error(probs, labels), 4)
    0.25
    """
    return ece_from_bins(reliability_bins(probs, labels, n_bins, from_logits=from_logits))


def calibration_report(model: nn.Module, data, *, n_bins: int = 15, batch_size: int = 512,
                       device=None, progress: bool = False) -> dict:
    """Accuracy, ECE, mean confidence and reliability bins of ``model`` on ``data``.

    Section 8. Runs the model once in eval mode (:func:`mint_teach.train.predict`).

    Returns
    -------
    dict with floats ``accuracy``, ``ece``, ``mean_confidence``, the int ``n`` (items), the int
    ``n_bins`` and ``bins`` (the dict of :func:`reliability_bins`).
    """
    n_bins = check_count("n_bins", n_bins)
    logits, labels = predict(model, data, batch_size=batch_size, device=device, progress=progress)
    probs = logits.double().softmax(dim=1)
    bins = reliability_bins(probs, labels, n_bins)
    conf, pred = probs.max(dim=1)
    return {
        "accuracy": float((pred == labels).double().mean()),
        "ece": ece_from_bins(bins),
        "mean_confidence": float(conf.mean()),
        "n": int(labels.numel()),
        "n_bins": n_bins,
        "bins": bins,
    }


def _check_reports(name: str, reports) -> None:
    if not isinstance(reports, Mapping) or not reports:
        raise ValueError(f"{name} must be a non-empty dict of name -> report, e.g. "
                         f"{{'original': r1, 'pruned': r2}}; got {type(reports).__name__}")


# ----------------------------------------------------------------------------- attacks

def _pixel_stats(x: torch.Tensor, mean, std):
    """``mean`` and ``std`` shaped to broadcast over ``x`` (N, C, ...), or None for pixel inputs."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("mean and std must be given together (or both None for inputs already "
                         f"in pixel space); got mean={mean!r}, std={std!r}")
    out = []
    for name, value in (("mean", mean), ("std", std)):
        t = torch.as_tensor(value, dtype=torch.float32).flatten().to(x.device)
        if t.numel() not in (1, x.shape[1]):
            raise ValueError(f"{name} must have 1 value or one per channel ({x.shape[1]}); "
                             f"got {t.numel()} values")
        out.append(t.view(1, -1, *([1] * (x.ndim - 2))).to(x.dtype))
    if not (out[1] > 0).all():
        raise ValueError(f"std must be positive; got {std!r}")
    return out[0], out[1]


def _check_batch(x, y) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError(f"x must be a floating-point batch tensor (N, ...); got "
                         f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be a 1-D tensor with one label per row of x ({x.shape[0]}); "
                         f"got {tuple(getattr(y, 'shape', ()))}")


def _to_pixels(x: torch.Tensor, stats) -> torch.Tensor:
    """Normalised model inputs -> pixels in [0, 1]; complains when they do not land there."""
    p = x.detach() if stats is None else x.detach() * stats[1] + stats[0]
    lo, hi = p.min().item(), p.max().item()
    if lo < -1e-4 or hi > 1 + 1e-4:
        hint = ("pass the dataset's mean and std" if stats is None
                else "check that mean and std are the ones used to normalise x")
        raise ValueError(f"x does not map to pixels in [0, 1] (got min {lo:.3g}, max {hi:.3g}); "
                         f"{hint}")
    return p.clamp(0, 1)


def _to_inputs(p: torch.Tensor, stats) -> torch.Tensor:
    return p if stats is None else (p - stats[0]) / stats[1]


def _input_gradient(model: nn.Module, p: torch.Tensor, y: torch.Tensor, stats) -> torch.Tensor:
    """d(cross-entropy)/d(pixels), taken w.r.t. the input only: no .grad lands on parameters."""
    p = p.detach().requires_grad_(True)
    loss = F.cross_entropy(model(_to_inputs(p, stats)), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, p)
    return grad


class _EvalMode:
    """Put a model in eval mode for the attack and restore its previous mode afterwards."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         mean=None, std=None) -> torch.Tensor:
    """Fast gradient sign method: move every pixel by ``eps`` in the loss-increasing direction.

    Section 8. ``x_adv = clip(x + eps * sign(grad_x loss), 0, 1)`` in pixel space (Goodfellow
    et al., 2015), so ``|x_adv - x| <= eps`` per pixel.

    Parameters
    ----------
    model : the network; run in eval mode (its mode is restored afterwards), on ``x``'s device.
    x : (N, ...) batch of inputs as the model takes them (normalised when mean/std are given).
    y : (N,) true labels.
    eps : L-infinity budget in pixel units (images in [0, 1]).
    mean, std : the normalisation of ``x`` (tensors, sequences or numbers, one per channel);
        None for both when ``x`` is already in pixel space.

    Returns
    -------
    The adversarial batch, normalised like ``x`` and detached.
    """
    _check_batch(x, y)
    eps = _check_eps("eps", eps)
    stats = _pixel_stats(x, mean, std)
    p = _to_pixels(x, stats)
    if eps == 0:
        return x.detach().clone()
    with _EvalMode(model):
        grad = _input_gradient(model, p, y, stats)
    p_adv = (p + eps * grad.sign()).clamp(0, 1)
    return _to_inputs(p_adv, stats).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
        alpha: float | None = None, steps: int = 10, seed: int = 0, random_start: bool = True,
        generator: torch.Generator | None = None, mean=None, std=None) -> torch.Tensor:
    """Projected gradient descent: many small FGSM steps, each projected back into the eps-box.

    Section 8. Starting from a random point of the L-infinity ball (Madry et al., 2018), take
    ``steps`` steps of size ``alpha`` along the sign of the input gradient, after each one
    clipping to ``[x - eps, x + eps]`` and to [0, 1] in pixel space.

    Parameters
    ----------
    model, x, y, eps, mean, std : as for :func:`fgsm`.
    alpha : step size in pixel units; default ``2.5 * eps / steps``.
    steps : number of gradient steps.
    seed : seeds the random start (a fresh torch.Generator); the same seed gives the same result.
    random_start : start from a uniform random point of the ball instead of ``x`` itself.
    generator : a torch.Generator to draw the random start from instead of ``seed``.

    Returns
    -------
    The adversarial batch, normalised like ``x`` and detached.
    """
    _check_batch(x, y)
    eps = _check_eps("eps", eps)
    steps = check_count("steps", steps)
    if alpha is None:
        alpha = 2.5 * eps / steps
    else:
        alpha = check_number("alpha", alpha, low=0.0, low_open=True)
    stats = _pixel_stats(x, mean, std)
    p = _to_pixels(x, stats)
    if eps == 0:
        return x.detach().clone()
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    p_adv = p
    if random_start:
        noise = torch.rand(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        p_adv = (p + (2 * noise - 1) * eps).clamp(0, 1)
    with _EvalMode(model):
        for _ in range(steps):
            grad = _input_gradient(model, p_adv, y, stats)
            p_adv = p_adv + alpha * grad.sign()
            p_adv = torch.minimum(torch.maximum(p_adv, p - eps), p + eps).clamp(0, 1)
    return _to_inputs(p_adv, stats).detach()


# ----------------------------------------------------------------------------- reports

def _dataset_stats(data):
    """The mean and std a dataset normalises with (ImageDataset, Subset or DataLoader of one)."""
    while isinstance(data, (Subset, DataLoader)):
        data = data.dataset
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
        return mean, std
    return None, None


def _first_items(data, max_items, seed: int):
    """``data`` itself, or a seeded random subset of ``max_items`` distinct items of it."""
    if max_items is None:
        return data
    max_items = check_count("max_items", max_items)
    if isinstance(data, DataLoader):
        raise TypeError("max_items needs a Dataset, not a DataLoader; pass the dataset")
    if max_items >= len(data):
        return data
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=g)[:max_items].sort().values
    return Subset(data, rows.tolist())


def robustness_report(model: nn.Module, data, *, eps_list: Sequence[float] = (0, 0.05, 0.1, 0.2),
                      attack: str = "fgsm", steps: int = 10, max_items: int | None = None,
                      batch_size: int = 256, mean=None, std=None, device=None, seed: int = 0,
                      progress: bool = True) -> dict:
    """Accuracy of ``model`` on ``data`` under an FGSM or PGD attack, for each budget in ``eps_list``.

    Section 8. ``eps`` is in pixel units; the dataset's ``mean`` / ``std`` (an ImageDataset's, or
    the one inside a Subset or DataLoader) are read automatically unless given.

    Parameters
    ----------
    eps_list : L-infinity budgets, each >= 0; 0 gives the clean accuracy.
    attack : "fgsm" or "pgd".
    steps : PGD steps (ignored by FGSM).
    max_items : attack a seeded random subset of this many items (no repeats); None for all.
    seed : seeds the subset and PGD's random starts.

    Returns
    -------
    dict with ``attack``, ``eps`` (list of floats), ``accuracy`` (list, one per eps),
    ``clean_accuracy``, ``n`` (items attacked) and ``steps`` (PGD steps, or 1 for FGSM).
    """
    attack = check_choice("attack", attack, ATTACKS)
    if isinstance(eps_list, (str, bytes)) or not isinstance(eps_list, Sequence) or not eps_list:
        raise ValueError(f"eps_list must be a non-empty sequence of numbers >= 0; got {eps_list!r}")
    eps_values = [_check_eps(f"eps_list[{k}]", e) for k, e in enumerate(eps_list)]
    steps = check_count("steps", steps)
    if mean is None and std is None:
        mean, std = _dataset_stats(data)
    data = _first_items(data, max_items, seed)
    dev = resolve_device(device)
    model.to(dev)
    generator = torch.Generator().manual_seed(seed)
    correct = [0] * len(eps_values)
    clean, total = 0, 0
    loader = make_loader(data, batch_size=batch_size)
    for x, y in tqdm(loader, desc=f"{attack} attack", disable=not progress, leave=False):
        x, y = x.to(dev), y.to(dev)
        with _EvalMode(model), torch.no_grad():
            clean += (model(x).argmax(1) == y).sum().item()
        for k, eps in enumerate(eps_values):
            if attack == "fgsm":
                x_adv = fgsm(model, x, y, eps, mean=mean, std=std)
            else:
                x_adv = pgd(model, x, y, eps, steps=steps, generator=generator,
                            mean=mean, std=std)
            with _EvalMode(model), torch.no_grad():
                correct[k] += (model(x_adv).argmax(1) == y).sum().item()
        total += y.numel()
    if total == 0:
        raise ValueError("data must hold at least one item; got an empty dataset")
    return {
        "attack": attack,
        "eps": eps_values,
        "accuracy": [c / total for c in correct],
        "clean_accuracy": clean / total,
        "n": total,
        "steps": steps if attack == "pgd" else 1,
    }


def compare_models(models: Mapping[str, nn.Module], data, *, n_bins: int = 15,
                   eps_list: Sequence[float] = (0, 0.05, 0.1, 0.2), attack: str = "fgsm",
                   steps: int = 10, max_items: int | None = None, batch_size: int = 256,
                   device=None, seed: int = 0, progress: bool = True) -> dict:
    """Calibration and robustness of several models on the same data, in one call.

    Section 8: the comparison of original and pruned networks. Calibration uses all of
    ``data``; the attack uses ``max_items`` of it (all when None).

    Returns
    -------
    ``{"calibration": {name: calibration_report}, "robustness": {name: robustness_report}}``,
    ready for :func:`mint_teach.plots.plot_reliability` and
    :func:`mint_teach.plots.plot_robustness`.
    """
    _check_reports("models", models)
    for name, model in models.items():
        if not isinstance(model, nn.Module):
            raise TypeError(f"models[{name!r}] must be an nn.Module; got {type(model).__name__}")
    n_bins = check_count("n_bins", n_bins)
    check_choice("attack", attack, ATTACKS)
    calibration, robustness = {}, {}
    for name, model in models.items():
        calibration[name] = calibration_report(model, data, n_bins=n_bins, device=device)
        robustness[name] = robustness_report(
            model, data, eps_list=eps_list, attack=attack, steps=steps, max_items=max_items,
            batch_size=batch_size, device=device, seed=seed, progress=progress)
    return {"calibration": calibration, "robustness": robustness}
