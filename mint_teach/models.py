"""The paper's networks and small classroom networks (docs/method.md section 1).

Every model here carries two attributes that the rest of the toolkit reads:

- ``prunable``: the names of its prunable weight layers (``nn.Linear`` / ``nn.Conv2d``) in
  forward order, e.g. ``["fc1", "fc2", "fc3"]`` for the MLP;
- ``activation_of``: for each prunable layer, the name of the module whose *output* is that
  layer's activation after its nonlinearity (section 2). For the output layer it is the layer
  itself (the logits).

Networks built from torchvision (``ResNet50``, or any traceable classifier passed through
:func:`attach_structure`) also carry ``layer_pairs``: the (parent, child) pairs found from the
module graph, which :func:`layer_pairs` returns by default instead of adjacent names.

Masks always act on the *child* layer's weight: for a layer pair (parent, child) the child's
weight has one row (output unit / filter) per child unit and one column block per parent unit.
"""
from __future__ import annotations

import operator
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice, check_count

__all__ = [
    "MLP",
    "VGG",
    "ResNetCifar",
    "ClassroomCNN",
    "ResNet50",
    "attach_structure",
    "build_model",
    "find_structure",
    "load_weights",
    "prunable_layers",
    "activation_module",
    "layer_pairs",
    "MODELS",
]


class MLP(nn.Module):
    """The paper's MNIST MLP: in-500-300-10 with ReLU and dropout 0.2 after each hidden layer."""

    def __init__(self, in_features: int = 784, hidden: tuple[int, ...] = (500, 300),
                 num_classes: int = 10, dropout: float = 0.2):
        super().__init__()
        self.in_features = in_features
        sizes = [in_features, *hidden]
        self.prunable: list[str] = []
        self.activation_of: dict[str, str] = {}
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            layers[f"fc{k}"] = nn.Linear(a, b)
            layers[f"relu{k}"] = nn.ReLU()
            layers[f"drop{k}"] = nn.Dropout(dropout)
            self.prunable.append(f"fc{k}")
            self.activation_of[f"fc{k}"] = f"relu{k}"
        last = f"fc{len(sizes)}"
        layers[last] = nn.Linear(sizes[-1], num_classes)
        self.prunable.append(last)
        self.activation_of[last] = last
        for name, module in layers.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for module in self.children():
            x = module(x)
        return x


# CIFAR VGG16: numbers are conv widths, "M" a 2x2 max-pool.
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """CIFAR VGG with batch norm (VGG16-BN by default: 13 conv layers and a linear classifier).

    ``width`` scales every conv width (``width=1/16`` gives a tiny VGG for tests).
    """

    def __init__(self, cfg: list | None = None, num_classes: int = 10, width: float = 1.0,
                 in_channels: int = 3):
        super().__init__()
        cfg = VGG16_CFG if cfg is None else cfg
        self.prunable = []
        self.activation_of = {}
        feats: OrderedDict[str, nn.Module] = OrderedDict()
        c_in, k, p = in_channels, 0, 0
        for v in cfg:
            if v == "M":
                p += 1
                feats[f"pool{p}"] = nn.MaxPool2d(2)
                continue
            k += 1
            c_out = max(1, int(round(v * width)))
            feats[f"conv{k}"] = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            feats[f"bn{k}"] = nn.BatchNorm2d(c_out)
            feats[f"relu{k}"] = nn.ReLU(inplace=False)
            self.prunable.append(f"features.conv{k}")
            self.activation_of[f"features.conv{k}"] = f"features.relu{k}"
            c_in = c_out
        self.features = nn.Sequential(feats)
        self.classifier = nn.Linear(c_in, num_classes)
        self.prunable.append("classifier")
        self.activation_of["classifier"] = "classifier"
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


class BasicBlock(nn.Module):
    """CIFAR ResNet basic block; the shortcut pads channels with zeros when the width grows."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, mid, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.stride = stride
        self.pad = c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR ResNet (6n+2 layers; depth 56 by default): 3 stages of basic blocks, 16/32/64 filters.

    ``width`` scales the filter counts (tiny networks for tests).
    """

    def __init__(self, depth: int = 56, num_classes: int = 10, width: float = 1.0,
                 in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110); got {depth!r}")
        n = (depth - 2) // 6
        widths = [max(1, int(round(w * width))) for w in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.prunable = ["conv1"]
        self.activation_of = {"conv1": "relu"}
        c_in = widths[0]
        for s, w in enumerate(widths, start=1):
            blocks = []
            for b in range(n):
                stride = 2 if (s > 1 and b == 0) else 1
                blocks.append(BasicBlock(c_in, w, w, stride))
                for conv, act in (("conv1", "relu1"), ("conv2", "relu2")):
                    self.prunable.append(f"layer{s}.{b}.{conv}")
                    self.activation_of[f"layer{s}.{b}.{conv}"] = f"layer{s}.{b}.{act}"
                c_in = w
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
        self.fc = nn.Linear(c_in, num_classes)
        self.prunable.append("fc")
        self.activation_of["fc"] = "fc"
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class ClassroomCNN(VGG):
    """A small CIFAR-10 CNN that trains to about 75-80 % in a few minutes on two CPU cores.

    A chain of conv-BN-ReLU stages (32, 64, 128 and 256 filters by default); the first ``pools``
    stages end with a 2x2 max-pool (32x32 -> 16 -> 8 -> 4 on CIFAR-10, 8x8 -> 1 on digits), the
    later ones keep their input's size. Global average pooling and a linear classifier follow.
    Every conv is prunable; its activation is its ReLU's output (docs/method.md section 2).

    With the recipe ``epochs=5, lr=0.1, batch_size=128, weight_decay=5e-4`` (cosine schedule, no
    augmentation) it reaches 78.0-78.6 % test accuracy on CIFAR-10 (seeds 0-2) in 2-3.5 minutes
    of training on two CPU cores shared with other work (benchmarks/train_baselines.py).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), num_classes: int = 10,
                 in_channels: int = 3, pools: int = 3):
        widths = tuple(check_count(f"widths[{k}]", w) for k, w in enumerate(widths))
        if not widths:
            raise ValueError("widths must be a non-empty sequence of positive ints; got ()")
        check_count("pools", pools, low=0)  # stages followed by a max-pool
        cfg: list = []
        for k, w in enumerate(widths, start=1):  # the same conv-BN-ReLU chain as VGG
            cfg += [w, "M"] if k <= pools else [w]
        super().__init__(cfg, num_classes=num_classes, in_channels=in_channels)
        self.widths, self.pools = widths, pools

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last memory layout: the same numbers, but the CPU's batch-norm, ReLU and
        # max-pool kernels run much faster on it (about 1.5x per training step on two cores).
        return super().forward(x.contiguous(memory_format=torch.channels_last))


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


MODELS = {
    "mlp": "the paper's MNIST MLP (in-500-300-10)",
    "vgg16_bn": "CIFAR VGG16 with batch norm",
    "resnet56": "CIFAR ResNet56",
    "cnn": "small classroom CNN for CIFAR-10",
    "tiny_vgg": "VGG16-BN at 1/16 width (tests)",
    "tiny_resnet": "ResNet20 at 1/4 width (tests)",
    "resnet50": "torchvision's ImageNet ResNet-50 (pairs inside each bottleneck)",
    "tiny_resnet50": "ResNet-50 at 1/8 width (tests, CPU)",
}


def __getattr__(name: str):
    if name in ("ResNet50", "load_weights"):  # torchvision is imported on first use
        from . import _torchvision_nets

        return getattr(_torchvision_nets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(name: str, *, in_features: int | None = None, in_channels: int = 3,
                num_classes: int = 10, width: float | None = None,
                weights: str | os.PathLike | None = None) -> nn.Module:
    """Build a model by name (see ``MODELS``); ``in_features`` sets the MLP input size.

    For ``"resnet50"`` / ``"tiny_resnet50"``: ``width`` scales the bottleneck widths (default
    1 and 1/8) and ``weights`` loads a local state-dict file, or torchvision's published
    weights by name (``"IMAGENET1K_V1"``, needs internet); without it the weights are random.
    """
    check_choice("model", name, sorted(MODELS))
    if name in ("resnet50", "tiny_resnet50"):
        from ._torchvision_nets import ResNet50, load_weights

        default = 1.0 if name == "resnet50" else 1 / 8
        model = ResNet50(num_classes=num_classes, in_channels=in_channels,
                         width=default if width is None else width)
        return model if weights is None else load_weights(model, weights)
    if width is not None or weights is not None:
        raise ValueError(f"width and weights apply to 'resnet50' and 'tiny_resnet50'; "
                         f"got model {name!r} with width={width!r}, weights={weights!r}")
    if name == "mlp":
        return MLP(in_features=in_features or 784, num_classes=num_classes)
    if name == "vgg16_bn":
        return VGG(num_classes=num_classes, in_channels=in_channels)
    if name == "resnet56":
        return ResNetCifar(56, num_classes=num_classes, in_channels=in_channels)
    if name == "cnn":
        return ClassroomCNN(num_classes=num_classes, in_channels=in_channels)
    if name == "tiny_vgg":
        return VGG(num_classes=num_classes, width=1 / 16, in_channels=in_channels)
    return ResNetCifar(20, num_classes=num_classes, width=0.25,  # "tiny_resnet", the last name
                       in_channels=in_channels)


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the model's prunable layers in forward order."""
    names = getattr(model, "prunable", None)
    if names is None:
        raise TypeError(
            f"model of type {type(model).__name__} has no 'prunable' list; build it with "
            "mint_teach.models or set model.prunable = [layer names in forward order]"
        )
    return list(names)


def activation_module(model: nn.Module, layer: str) -> str:
    """Name of the module whose output is ``layer``'s activation after its nonlinearity."""
    names = prunable_layers(model)
    if layer not in names:
        raise KeyError(f"layer {layer!r} is not a prunable layer; valid layers are {names}")
    return getattr(model, "activation_of", {}).get(layer, layer)


def layer_pairs(model: nn.Module, pairs=None) -> list[tuple[str, str]]:
    """Layer pairs of a model; validates user-given pairs.

    The valid pairs are those where the parent's output feeds the child: the pairs found from
    the module graph (``model.layer_pairs``, see :func:`find_structure`) when the model has
    them, else adjacent prunable layers. ``pairs=None`` returns them all; given pairs must be
    among them (unknown layers are a KeyError, other pairs a ValueError listing the valid ones).

    Examples
    --------
    >>> net = build_model("mlp", in_features=64)
    >>> layer_pairs(net)
    [('fc1', 'fc2'), ('fc2', 'fc3')]
    >>> activation_module(net, "fc1")  # what collect records for fc1: after its ReLU
    'relu1'
    """
    names = prunable_layers(model)
    found = getattr(model, "layer_pairs", None)
    valid = [tuple(p) for p in found] if found is not None else list(zip(names[:-1], names[1:]))
    if pairs is None:
        return valid
    out = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"layer_pairs entries must be (parent, child) tuples; got {pair!r}")
        for name in pair:
            if name not in names:
                raise KeyError(f"layer {name!r} is not a prunable layer; valid layers are {names}")
        if tuple(pair) not in valid:
            raise ValueError(f"layer pair {tuple(pair)!r}: {pair[0]!r} does not feed {pair[1]!r}; "
                             f"valid pairs are {valid}")
        out.append((pair[0], pair[1]))
    return out


# ------------------------------------------------------------------ layer pairs from the module graph

# Modules that act on every channel alone and keep the channel count (walked through when
# following a layer's output to the next layer).
_ELEMENTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU,
                nn.SiLU, nn.Hardswish, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity)
_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)
_ELEMENTWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.gelu, F.silu, F.dropout}
_POOLING_FUNCTIONS = {torch.flatten, F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def _step(node, modules: dict) -> str | None:
    """How a graph node treats channels: "elementwise", "pooling", "add", "layer" or None."""
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return "layer"
        if isinstance(module, _ELEMENTWISE):
            return "elementwise"
        if isinstance(module, _POOLING):
            return "pooling"
    elif node.op == "call_function":
        if node.target in _ELEMENTWISE_FUNCTIONS:
            return "elementwise"
        if node.target in _POOLING_FUNCTIONS:
            return "pooling"
        if node.target in _ADD_FUNCTIONS:
            return "add"
    elif node.op == "call_method" and node.target in ("relu", "relu_", "flatten"):
        return "elementwise" if node.target.startswith("relu") else "pooling"
    return None


def _follow(node, modules: dict, calls: dict) -> tuple[str | None, str, bool]:
    """Follow one layer's output: (the next layer fed by it alone, its activation, residual).

    The walk goes through channel-wise modules while every node has exactly one user. The
    activation is the last module on the way called only once in the forward pass (hooks on
    a module used twice would record both uses), before any pooling. ``residual`` is True
    when the output is added to another path; such a layer is never a parent.
    """
    activation, residual, pooled = node.target, False, False
    while len(node.users) == 1:
        user = next(iter(node.users))
        kind = _step(user, modules)
        if kind == "layer":
            layer = modules[user.target]
            if residual or getattr(layer, "groups", 1) != 1 or user.args[0] is not node:
                return None, activation, residual
            return user.target, activation, residual
        if kind is None:
            break
        residual |= kind == "add"
        pooled |= kind == "pooling"
        if (kind in ("elementwise", "add") and not pooled and user.op == "call_module"
                and calls[user.target] == 1):
            activation = user.target
        node = user
    return None, activation, residual


def find_structure(model: nn.Module) -> dict:
    """Find a network's layer pairs from its module graph (``torch.fx``), not from a list.

    A pair ``(parent, child)`` is two weight layers (``nn.Conv2d`` / ``nn.Linear``) where
    the child reads the parent's output alone, through channel-wise modules (batch norm,
    ReLU, dropout) and pooling/flatten only, and nothing else reads it. A layer whose output
    meets a skip connection (an addition) is never a parent, so the channels of a residual
    stream stay whole; inside a ResNet bottleneck this gives ``conv1 -> conv2 -> conv3``.

    Returns
    -------
    dict with ``pairs`` (forward order), ``prunable`` (every layer of a pair, then the output
    layer) and ``activation_of`` (each prunable layer's activation module, section 2).
    """
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # data-dependent control flow cannot be traced
        raise TypeError(f"cannot trace {type(model).__name__} with torch.fx to find its layer "
                        f"pairs ({exc}); set model.prunable and model.layer_pairs by hand") from exc
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs, activation_of, output = [], {}, None
    for node in graph.nodes:
        if _step(node, modules) != "layer":
            continue
        output = node.target
        child, activation, _ = _follow(node, modules, calls)
        activation_of[node.target] = activation
        if child is not None:
            pairs.append((node.target, child))
    if output is None:
        raise TypeError(f"{type(model).__name__} has no nn.Conv2d / nn.Linear layer to prune")
    prunable = list(dict.fromkeys(name for pair in pairs for name in pair))
    prunable = [name for name in prunable if name != output] + [output]
    activation_of = {name: activation_of[name] for name in prunable}
    activation_of[output] = output  # the logits (section 2)
    return {"pairs": pairs, "prunable": prunable, "activation_of": activation_of}


def attach_structure(model: nn.Module) -> nn.Module:
    """Set ``model.prunable``, ``model.activation_of`` and ``model.layer_pairs`` from
    :func:`find_structure`, so any traceable torchvision classifier works with the toolkit."""
    found = find_structure(model)
    model.prunable = found["prunable"]
    model.activation_of = found["activation_of"]
    model.layer_pairs = found["pairs"]
    return model
