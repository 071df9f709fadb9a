"""Activation sampling: record each prunable layer's output after its nonlinearity (section 2).

A conv filter's activation for one image is its feature map averaged over space, so every
layer gives a matrix of shape (images, units). The class-balanced sample of rows that MINT
measures on is drawn by :func:`mint_teach.data.class_balanced_subset`; its rows index every
layer's matrix alike.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .config import resolve_device
from .data import make_loader
from .models import activation_module

__all__ = ["collect"]


@torch.no_grad()
def collect(model: nn.Module, loader, layers: Sequence[str], *, device=None,
            progress: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run ``model`` in eval mode over ``loader`` and record the activations of ``layers``.

    Parameters
    ----------
    model : a model from ``mint_teach.models`` (it names its prunable layers).
    loader : a Dataset or DataLoader of (image, label) pairs.
    layers : prunable layer names, e.g. ``["fc1", "fc2"]``.

    Returns
    -------
    (acts, labels): ``acts[name]`` is a float tensor (images, units) on the CPU; conv maps are
    averaged over their spatial positions. Hooks are removed even when the forward pass raises.

    Examples
    --------
    >>> from mint_teach import data, models
    >>> net = models.build_model("mlp", in_features=64)
    >>> acts, y = collect(net, data.load_dataset("digits"), ["fc1", "fc2"], progress=False)
    >>> tuple(acts["fc1"].shape), tuple(acts["fc2"].shape)
    ((1347, 500), (1347, 300))
    """
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of layer names, not the string {layers!r}")
    targets = {name: activation_module(model, name) for name in layers}  # KeyError if unknown
    dev = resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            out = output.detach()
            if out.dim() == 4:  # conv feature maps: average over space
                out = out.mean(dim=(2, 3))
            store[name].append(out.float().cpu())
        return hook

    handles = [model.get_submodule(module).register_forward_hook(make_hook(name))
               for name, module in targets.items()]
    labels = []
    try:
        for x, y in tqdm(make_loader(loader, batch_size=500), desc="activations",
                         disable=not progress, leave=False):
            model(x.to(dev))
            labels.append(torch.as_tensor(y))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: torch.cat(chunks) for name, chunks in store.items()}, torch.cat(labels)

