"""torchvision networks for the toolkit: ResNet-50 with its layer pairs found (section 1).

Kept apart from :mod:`mint_teach.models` so that importing the toolkit does not import
torchvision; ``models.build_model("resnet50")`` and ``models.ResNet50`` load this module.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet as _tv_resnet

from ._validation import check_number
from .models import attach_structure

__all__ = ["ResNet50", "load_weights"]


class _Bottleneck(_tv_resnet.Bottleneck):
    """torchvision's bottleneck with one ReLU module per use (torchvision shares one).

    Same parameters and state-dict keys as torchvision's block, so its published weights load
    unchanged; three ReLU modules give each activation its own forward hook (section 2).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.relu
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + identity)


class ResNet50(_tv_resnet.ResNet):
    """torchvision's ResNet-50 (ImageNet, 224x224 inputs) with its layer pairs found.

    ``width`` scales the four stages' bottleneck widths (64, 128, 256, 512; outputs four times
    that); ``width=1/8`` gives a small network for tests on a CPU. The stem keeps 64 filters.
    After construction :func:`attach_structure` finds the prunable layers from the module
    graph: inside every bottleneck ``conv1 -> conv2`` and ``conv2 -> conv3``; the channels that
    ``conv3`` adds to the skip path are never a parent, so they stay whole (docs/method.md section 1).
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3):
        self.width = check_number("width", width, low=0, low_open=True, high=4)
        super().__init__(_Bottleneck, [3, 4, 6, 3], num_classes=num_classes)
        if self.fc.in_features != self.inplanes:  # torchvision sizes fc for full width
            self.fc = nn.Linear(self.inplanes, num_classes)
        if in_channels != 3:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        attach_structure(self)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        planes = max(1, int(round(planes * self.width)))
        return super()._make_layer(block, planes, blocks, stride=stride, dilate=dilate)


def load_weights(model: nn.Module, weights: str | os.PathLike) -> nn.Module:
    """Load ``weights`` into ``model``: a local file of a state dict, or a torchvision name.

    A path (a ``state_dict``, or a :func:`mint_teach.train.save_checkpoint` file) is read with
    ``weights_only=True``. A name such as ``"IMAGENET1K_V1"`` asks torchvision for its
    published ResNet-50 weights (downloaded once; needs internet). Returns ``model``.
    """
    path = Path(os.fspath(weights)).expanduser()
    if path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    elif isinstance(weights, str) and weights.isupper():
        from torchvision.models import ResNet50_Weights

        try:
            state = ResNet50_Weights[weights].get_state_dict(progress=True)
        except KeyError:
            raise ValueError(f"weights must be a file or one of "
                             f"{[w.name for w in ResNet50_Weights]}; got {weights!r}") from None
    else:
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist (or give a torchvision "
                                "weights name such as 'IMAGENET1K_V1')")
    model.load_state_dict(state)
    return model
