"""Training and evaluation: one loop for every model, seeded, with progress bars (section 1, 6).

Fine-tuning a pruned network (section 6) is the same :func:`fit`: masks applied with
``torch.nn.utils.prune`` keep masked weights at exactly zero through every step.
"""
from __future__ import annotations

import os
import random
from itertools import islice
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._validation import check_choice, check_count, check_number, check_optional_count
from .config import resolve_device, write_atomic
from .data import make_loader  # batching lives in data; train.make_loader still works

__all__ = ["fit", "evaluate", "lr_schedule", "predict", "seed_everything", "save_checkpoint",
           "load_checkpoint", "batchnorm_layers", "recalibrate_batchnorm",
           "CheckpointError", "sgd_step"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, corrupted, not a checkpoint).

    ``path`` is the file; the message names it and says what torch reported.
    """

    def __init__(self, path, reason: str):
        super().__init__(f"checkpoint {os.fspath(path)} cannot be read: {reason}")
        self.path = os.fspath(path)


def _atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through ``config.write_atomic``: a reader never sees half a file."""
    write_atomic(path, lambda f: torch.save(obj, f))


def _load(path: str | os.PathLike, map_location) -> dict:
    """``torch.load`` (weights only) of a file that must hold a dict, or a CheckpointError."""
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file raises many types
        first = (str(exc).splitlines() or [""])[0].split(". ")[0][:160]
        raise CheckpointError(path, f"it is damaged or not a file saved by torch.save "
                                    f"({type(exc).__name__}: {first})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(path, f"it holds a {type(blob).__name__}, not a checkpoint dict")
    return blob


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way."""
    seed = check_count("seed", seed, low=None)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit(model: nn.Module, train_data, *, epochs: int = 10, lr: float = 0.05,
        momentum: float = 0.9, weight_decay: float = 5e-4, batch_size: int = 128,
        schedule: str = "cosine", augment: Callable | None = None, eval_data=None,
        device=None, seed: int = 0, progress: bool = True, desc: str = "train",
        checkpoint: str | os.PathLike | None = None) -> dict:
    """Train ``model`` with SGD + momentum and cross-entropy; return the per-epoch history.

    Parameters
    ----------
    model : the network (moved to ``device``).
    train_data : a Dataset of (x, y) pairs or a DataLoader.
    epochs, lr, momentum, weight_decay, batch_size : the usual SGD settings.
    schedule : "cosine" (anneal to 0), "step" (x0.1 at 50 % and 75 %) or "constant".
    augment : optional function applied to each input batch (e.g. ``data.random_crop_flip``).
    eval_data : optional test set evaluated after every epoch.
    seed : seeds shuffling, dropout and augmentation; the same seed gives the same weights on CPU.
    progress : show a tqdm bar (one per call, over all steps).
    checkpoint : optional path; the full training state is saved there after every epoch and a
        run with the same path resumes after the last finished epoch (for long GPU runs).

    Returns
    -------
    dict with lists ``loss``, ``train_acc`` and (with eval_data) ``test_acc``, fractions in [0, 1].
    """
    epochs = check_count("epochs", epochs, low=0)
    lr = check_number("lr", lr, low=0.0, low_open=True)
    schedule = check_choice("schedule", schedule, ("cosine", "step", "constant"))
    dev = resolve_device(device)
    gen = seed_everything(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    loader = make_loader(train_data, batch_size=batch_size, shuffle=True, generator=gen)
    _check_not_empty("train_data", loader)
    model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay, nesterov=momentum > 0)
    sched = lr_schedule(opt, schedule, max(1, epochs * len(loader)))
    history: dict[str, list[float]] = {"loss": [], "train_acc": []}
    if eval_data is not None:
        history["test_acc"] = []
    first = 0
    if checkpoint is not None:
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
    settings = {"epochs": epochs, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                "batch_size": batch_size, "schedule": schedule, "seed": seed,
                "batches": len(loader)}
    if checkpoint is not None and os.path.isfile(checkpoint):
        history, first = _resume(checkpoint, settings, dev, model=model, optimizer=opt,
                                 scheduler=sched, generator=gen, aug_generator=aug_gen)
    bar = tqdm(total=epochs * len(loader), initial=first * len(loader), desc=desc,
               disable=not progress, leave=False, mininterval=1.0)
    for epoch in range(first, epochs):
        loss, acc = _train_epoch(model, loader, opt, sched, dev, augment, aug_gen, bar)
        history["loss"].append(loss)
        history["train_acc"].append(acc)
        post = {"epoch": f"{epoch + 1}/{epochs}", "loss": f"{history['loss'][-1]:.3f}",
                "train acc": f"{history['train_acc'][-1]:.3f}"}
        if eval_data is not None:
            history["test_acc"].append(evaluate(model, eval_data, device=dev, progress=False))
            post["test acc"] = f"{history['test_acc'][-1]:.3f}"
        bar.set_postfix(post)
        if checkpoint is not None:
            _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "generator": gen.get_state(),
                          "aug_generator": aug_gen.get_state(), "history": history,
                          "torch_rng": torch.get_rng_state(), "settings": settings,
                          "epoch": epoch + 1}, checkpoint)
    bar.close()
    return history


def _train_epoch(model, loader, opt, sched, device, augment, generator, bar
                 ) -> tuple[float, float]:
    """One pass over ``loader`` in train mode: the epoch's mean loss and accuracy."""
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in loader:
        loss, right = sgd_step(model, x, y, opt, sched, device=device, augment=augment,
                               generator=generator)
        total += y.numel()
        correct += right
        loss_sum += loss * y.numel()
        bar.update()
    return loss_sum / max(total, 1), correct / max(total, 1)


def lr_schedule(optimizer, schedule: str, steps: int,
                milestones: tuple[float, ...] = (0.5, 0.75)):
    """The learning-rate schedule over ``steps`` optimiser steps, shared by :func:`fit` and
    ``distributed.fit``: "cosine" (anneal to 0), "step" (x0.1 at each of ``milestones``,
    fractions of all steps) or "constant"."""
    schedule = check_choice("schedule", schedule, ("cosine", "step", "constant"))
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if schedule == "step":
        if any(not 0 < m < 1 for m in milestones):
            raise ValueError(f"milestones must be fractions of training in (0, 1); "
                             f"got {milestones!r}")
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, [int(m * steps) for m in milestones], 0.1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _resume(checkpoint, settings: dict, device, **parts) -> tuple[dict, int]:
    """Load the state :func:`fit` saved after an epoch into ``parts`` (model, optimizer,
    scheduler, generators); return the history so far and the next epoch."""
    state = _load(checkpoint, device)
    _check_resumable(checkpoint, state, settings)
    for name, part in parts.items():
        if isinstance(part, torch.Generator):
            part.set_state(state[name])
        else:
            part.load_state_dict(state[name])
    torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
    return state["history"], state["epoch"]


def sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt, sched, *, device,
             augment=None, generator=None) -> tuple[float, int]:
    """One optimiser step on the batch ``(x, y)``: returns (mean loss, correct predictions).

    Shared by ``fit`` and ``distributed.fit`` (where ``model`` is the DDP wrapper)."""
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if augment is not None:
        x = augment(x, generator=generator)
    out = model(x)
    loss = F.cross_entropy(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item(), int((out.argmax(1) == y).sum().item())


def _check_not_empty(name: str, loader) -> None:
    try:
        batches = len(loader)
    except TypeError:  # an iterable dataset of unknown length
        return
    if batches == 0:
        raise ValueError(f"{name} is empty (0 items); pass a dataset with at least one item")


def _check_resumable(path, state: dict, settings: dict) -> None:
    """Refuse a per-epoch state saved by a run with other settings (it holds its weights)."""
    if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
        raise CheckpointError(path, "it is not a per-epoch training state saved by fit")
    saved = state.get("settings", {"epochs": max(state["epoch"], settings["epochs"])})
    differ = {k: (v, settings[k]) for k, v in saved.items() if settings.get(k) != v}
    if differ or state["epoch"] > settings["epochs"]:
        listed = ", ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
        raise ValueError(
            f"checkpoint {os.fspath(path)} holds the state of another run (epoch "
            f"{state['epoch']}; {listed or 'more epochs than asked for'}); resume with the "
            "same settings, or delete it or pass another checkpoint path to start afresh")


@torch.no_grad()
def predict(model: nn.Module, data, *, batch_size: int = 512, device=None,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole dataset, in eval mode, on the CPU.

    Examples
    --------
    >>> from mint_teach import data, models
    >>> net = models.build_model("mlp", in_features=64)
    >>> logits, labels = predict(net, data.load_dataset("digits", train=False))
    >>> tuple(logits.shape), tuple(labels.shape)
    ((450, 10), (450,))
    """
    dev = resolve_device(device)
    loader = make_loader(data, batch_size=batch_size)
    _check_not_empty("data", loader)
    model.to(dev).eval()
    logits, labels = [], []
    for x, y in tqdm(loader, desc="evaluate",
                     disable=not progress, leave=False):
        logits.append(model(x.to(dev)).float().cpu())
        labels.append(y)
    return torch.cat(logits), torch.cat(labels)


def evaluate(model: nn.Module, data, *, batch_size: int = 512, device=None,
             progress: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``data`` as a fraction in [0, 1]."""
    logits, labels = predict(model, data, batch_size=batch_size, device=device, progress=progress)
    return (logits.argmax(1) == labels).float().mean().item()


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The batch-norm layers of ``model`` (their statistics go stale when it is pruned)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data, *, batches: int | None = 50,
                          batch_size: int = 256, device=None, seed: int = 0,
                          progress: bool = False) -> nn.Module:
    """Re-measure every batch-norm layer's running statistics on ``data``; no weight changes.

    Pruning changes what reaches each batch-norm layer, but its running mean and variance
    still describe the unpruned network, so a pruned conv net can fall to chance before any
    fine-tuning. This resets the statistics and averages them afresh (equal weight per batch)
    over ``batches`` shuffled batches of ``data`` (``None``: one pass over all of it), in
    train mode without gradients. Dropout is left off. The model's mode is restored. A model
    with no batch norm is returned unchanged.

    Returns ``model`` (recalibrated in place).
    """
    check_optional_count("batches", batches, none_means="all of data")
    norms = batchnorm_layers(model)
    if not norms:
        return model
    dev = resolve_device(device)
    was_training = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    model.to(dev).eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
        m.train()
    loader = make_loader(data, batch_size=batch_size, shuffle=True,
                         generator=torch.Generator().manual_seed(seed))
    total = len(loader) if batches is None else min(batches, len(loader))
    try:
        for x, _ in tqdm(islice(loader, total), total=total, desc="recalibrate batch norm",
                         disable=not progress, leave=False):
            model(x.to(dev))
    finally:
        for m in norms:
            m.momentum = momenta[m]
        for m, mode in was_training.items():
            m.train(mode)
    return model


def save_checkpoint(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Save the model's weights (and a small dict of plain metadata) to ``path``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _atomic_save({"state_dict": state, "meta": dict(meta or {})}, path)


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (safe: weights only).

    Returns the metadata dict stored with them. A file that cannot be read raises
    :class:`CheckpointError` (a ValueError) naming it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    blob = _load(path, "cpu")
    if "state_dict" not in blob:
        raise CheckpointError(path, "it has no 'state_dict'; save it with save_checkpoint")
    model.load_state_dict(blob["state_dict"])
    return blob.get("meta", {})
