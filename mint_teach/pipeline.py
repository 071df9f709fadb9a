"""MINT end to end: train -> sample -> dependencies -> masks -> fine-tune -> report (sections 1-7).

``run_mint(MintConfig(...))`` is the whole method in one call; the CLI (``python -m mint_teach``)
is a thin shell around it. Every step is one function of a lower module, so a student can read
this file top to bottom and find the step a notebook cell calls.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from tqdm.auto import tqdm

from . import activations, data, distributed, models, pruning, train
from ._validation import (ArgumentTypeError, check_choice, check_count, check_fraction,
                          check_number, check_seed)
from .config import cache_dir, is_quick, resolve_device, write_atomic
from .groups import check_groups_arg, groups_per_layer, layer_units, resolve_groups
from .mi import ESTIMATORS  # the one list of estimator names

__all__ = [
    "TRAIN_DEFAULTS",
    "MintConfig",
    "MintResult",
    "check_feasible",
    "check_out_dir",
    "compute_dependencies",
    "estimate_dependency_seconds",
    "groups_per_layer",
    "recalibrated_accuracy",
    "pair_groups",
    "prune_and_finetune",
    "published_rows",
    "prune_grid",
    "run_mint",
    "same_share_masks",
    "summarise_compaction",
    "train_baseline",
]

DEFAULT_MODEL = {"digits": "mlp", "mnist": "mlp", "cifar10": "cnn", "imagefolder": "resnet50"}
# Activation rows per class (section 2; the paper's 250); digits has about 133 a class.
DEFAULT_SAMPLES_PER_CLASS = {"digits": 100, "mnist": 250, "cifar10": 250, "imagefolder": 250}
BASELINES = ("magnitude", "unstructured", "random")

# Training recipes that reach the baselines (section 1); quick mode shrinks the epochs.
TRAIN_DEFAULTS: dict[str, dict] = {
    "digits/mlp": dict(epochs=20, lr=0.05, weight_decay=5e-4, batch_size=128),
    "mnist/mlp": dict(epochs=15, lr=0.1, weight_decay=1e-4, batch_size=128),
    "cifar10/cnn": dict(epochs=5, lr=0.1, weight_decay=5e-4, batch_size=128, augment=False),
    "cifar10/vgg16_bn": dict(epochs=160, lr=0.1, weight_decay=5e-4, batch_size=128, augment=True),
    "cifar10/resnet56": dict(epochs=160, lr=0.1, weight_decay=1e-4, batch_size=128, augment=True),
}
QUICK_TRAIN = {"digits": None, "mnist": (1000, 3), "cifar10": (500, 3)}  # (per class, epochs)


@dataclass
class MintConfig:
    """Everything one MINT run needs; defaults are the paper's where it gives them.

    dataset, model : names from ``data.DATASETS`` / ``models.MODELS`` (model defaults per dataset).
    layer_pairs : (parent, child) pairs of prunable layers to prune; None = all adjacent pairs.
    groups : how many groups each layer pair gets (section 3): an int (a pair whose child is
        the output layer then uses one child group per class), a ``(child_groups,
        parent_groups)`` tuple, or a dict ``{child_layer: (child_groups, parent_groups)}``;
        read by ``groups.resolve_groups``.
    samples_per_class : activation rows per class (section 2; paper: 250); None: 250, or 100
        for digits, which has about 133 training images a class.
    prune_fraction : one fraction q of blocks to prune, or a grid of them (section 5).
    finetune_epochs, finetune_lr : fine-tuning with masks fixed (section 6).
    train : overrides of the baseline training recipe (epochs, lr, ...).
    baselines : also prune by "magnitude" or "random" (the same blocks per pair as MINT) and
        by "unstructured" magnitude (the same share of weights).
    estimator : one of ``mi.ESTIMATORS``: "faithful" (section 4b, default); "published" or
        "published-2020", the published implementation's statistic (section 4e), with the
        parent and the child activation rows drawn independently per class with replacement,
        as its scripts do; "published" reads the count off today's SciPy tree,
        "published-2020" off the tree as SciPy < 1.11 stored it (section 4c), as the
        published code ran in 2020; "unconditional", block GMI without Z (a variant, not the
        method).
    quick : shrink data and epochs for a two-core laptop (also MINT_TEACH_QUICK=1).
    out_dir : where result.json and figures go (None: do not write).
    """

    dataset: str = "digits"
    model: str | None = None
    layer_pairs: Sequence[tuple[str, str]] | None = None
    groups: int | tuple | dict = 20
    samples_per_class: int | None = None
    prune_fraction: float | Sequence[float] = 0.9
    max_pair_fraction: float = 0.75
    finetune_epochs: int = 5
    finetune_lr: float = 0.01
    train: dict = field(default_factory=dict)
    baselines: Sequence[str] = ("magnitude", "unstructured")
    estimator: str = "faithful"
    seed: int = 0
    device: str | None = None
    quick: bool | None = None
    root: str | None = None
    out_dir: str | None = "runs"
    reuse_checkpoint: bool = True
    progress: bool = True

    def __post_init__(self):
        _check_config(self)

    @property
    def fractions(self) -> list[float]:
        q = self.prune_fraction
        return [float(q)] if isinstance(q, (int, float)) else [float(v) for v in q]


def _check_config(cfg: MintConfig) -> None:
    """Check every field of ``cfg`` once: a wrong type is a TypeError, a wrong value a
    ValueError, each naming the field (also as ``exc.field``, for the command line) and what
    it accepts. Fills in the per-dataset defaults of ``model`` and ``samples_per_class``."""
    with _about("dataset"):
        check_choice("dataset", cfg.dataset, sorted(data.DATASETS))
    with _about("model"):
        cfg.model = check_choice("model", cfg.model or DEFAULT_MODEL[cfg.dataset],
                                 sorted(models.MODELS))
    with _about("prune_fraction"):
        _check_fractions(cfg.prune_fraction)
    with _about("max_pair_fraction"):
        check_fraction("max_pair_fraction", cfg.max_pair_fraction)
    with _about("samples_per_class"):
        if cfg.samples_per_class is None:
            cfg.samples_per_class = DEFAULT_SAMPLES_PER_CLASS[cfg.dataset]
        check_count("samples_per_class", cfg.samples_per_class, low=2)
    with _about("groups"):
        if check_groups_arg(cfg.groups) == "by_pair":  # result.json keys are strings
            raise ArgumentTypeError(f"groups must be an int, a (child_groups, parent_groups) "
                                    f"tuple or a dict by child layer; got {cfg.groups!r}")
    with _about("finetune_epochs"):
        check_count("finetune_epochs", cfg.finetune_epochs, low=0)
    with _about("finetune_lr"):
        check_number("finetune_lr", cfg.finetune_lr, low=0.0, low_open=True)
    with _about("seed"):
        check_count("seed", cfg.seed, low=0)
    with _about("baselines"):
        if isinstance(cfg.baselines, str) or not isinstance(cfg.baselines, Sequence):
            raise ArgumentTypeError(f"baselines must be a list of names among "
                                    f"{list(BASELINES)}; got {cfg.baselines!r}")
        for name in cfg.baselines:
            check_choice("baselines", name, BASELINES)
    with _about("layer_pairs"):
        _check_pair_names(cfg.layer_pairs)
    with _about("train"):
        if not isinstance(cfg.train, Mapping):
            raise ArgumentTypeError(f"train must be a dict of recipe overrides such as "
                                    f"{{'epochs': 5}}; got {cfg.train!r}")
        if "epochs" in cfg.train:
            check_count("train['epochs']", cfg.train["epochs"], low=0)
    with _about("estimator"):
        check_choice("estimator", cfg.estimator, ESTIMATORS)
    with _about("device"):
        resolve_device(cfg.device)
    with _about("out_dir"):
        if cfg.out_dir is not None and not isinstance(cfg.out_dir, (str, os.PathLike)):
            raise ArgumentTypeError(f"out_dir must be a folder path or None; got {cfg.out_dir!r}")


@contextmanager
def _about(name: str):
    """Tag an error raised inside with the config field it is about (``exc.field``), so the
    command line can name the flag."""
    try:
        yield
    except (ValueError, TypeError, KeyError) as exc:
        exc.field = name
        raise


def _check_fractions(value) -> list[float]:
    """One prune fraction or a non-empty list of them, each a number in [0, 1]."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (int, float, Sequence)):
        raise ArgumentTypeError(f"prune_fraction must be a number in [0, 1] or a list of them; "
                                f"got {value!r} of type {type(value).__name__}")
    values = list(value) if isinstance(value, Sequence) else [value]
    if not values:
        raise ValueError("prune_fraction must be a number in [0, 1] or a non-empty list of them; "
                         "got an empty list")
    return [check_fraction("prune_fraction", q) for q in values]


def _check_pair_names(pairs) -> None:
    """None, or a list of (parent, child) pairs of layer names (checked against the model
    by ``check_feasible``)."""
    if pairs is None:
        return
    if isinstance(pairs, str) or not isinstance(pairs, Sequence) or not pairs or any(
            isinstance(p, str) or not isinstance(p, Sequence) or len(p) != 2
            or not all(isinstance(name, str) for name in p) for p in pairs):
        raise ArgumentTypeError(f"layer_pairs must be None or a non-empty list of (parent, "
                                f"child) pairs of layer names; got {pairs!r}")


@dataclass
class MintResult:
    """What ``run_mint`` measured; ``rows`` holds one entry per prune fraction and method."""

    config: MintConfig
    baseline_acc: float
    rows: list[dict]
    best: dict
    dependencies: dict
    masks: dict
    report: dict
    timings: dict
    model: nn.Module
    pruned_model: nn.Module
    compact_model: nn.Module
    compact: dict
    saved_to: str | None = None  # the folder holding result.json and figures, once written

    def table(self) -> str:
        """A small text table: baseline, MINT and the baselines at the same sparsity."""
        bn = any(r.get("acc_recalibrated") is not None for r in self.rows)
        extra = f"{'BN recalibrated':>18}" if bn else ""
        lines = [f"{'method':<34}{'params pruned':>14}{'acc before FT':>15}{extra}{'acc':>9}",
                 (f"{'baseline (unpruned)':<34}{0.0:>13.2f}%{'':>15}{' ' * len(extra)}"
                  f"{100 * self.baseline_acc:>8.2f}%")]
        for r in self.rows:
            label = f"{r['method']} q={r['fraction']:.2f}"
            recal = f"{100 * r['acc_recalibrated']:>17.2f}%" if bn else ""
            lines.append(f"{label:<34}{r['pruned_pct']:>13.2f}%{100 * r['acc_before_ft']:>14.2f}%"
                         f"{recal}{100 * r['acc']:>8.2f}%")
        c = self.compact
        lines.append(f"compacted MINT network (q={self.best['fraction']:.2f}): "
                     f"{c['params_before']:,} -> {c['params_after']:,} params, "
                     f"{c['size_mb_before']:.3f} -> {c['size_mb_after']:.3f} MB, "
                     f"{c['ms_before']:.2f} -> {c['ms_after']:.2f} ms per batch")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "baseline_acc": self.baseline_acc,
            "rows": self.rows,
            "best": self.best,
            "report": self.report,
            "timings": self.timings,
            "compact": self.compact,
            "dependencies": {f"{p}->{c}": d.tolist() for (p, c), d in self.dependencies.items()},
        }


def _recipe(cfg: MintConfig) -> dict:
    key = f"{cfg.dataset}/{cfg.model}"
    recipe = dict(TRAIN_DEFAULTS.get(key, dict(epochs=30, lr=0.05, weight_decay=5e-4,
                                                batch_size=128, augment=cfg.dataset == "cifar10")))
    quick = QUICK_TRAIN.get(cfg.dataset)
    if is_quick(cfg.quick) and quick is not None:
        recipe["epochs"] = min(recipe["epochs"], quick[1])
        recipe["train_per_class"] = quick[0]
    recipe.update(cfg.train)
    return recipe


def _build(cfg: MintConfig, example: data.ImageDataset) -> nn.Module:
    shape = example.input_shape
    flat = 1
    for s in shape:
        flat *= s
    return models.build_model(cfg.model, in_features=flat, in_channels=shape[0],
                              num_classes=len(example.classes))


# Quick-mode baselines shipped with the package (made by ``benchmarks/train_baselines.py
# --course``): a student's first run loads them instead of training for minutes. Each file is
# named like a cache entry, ``<dataset>-<model>-<recipe hash>.pt``, so a changed recipe, seed
# or architecture never matches one; MANIFEST.json records each file's SHA-256 and accuracy.
SHIPPED_DIR = Path(__file__).resolve().parent / "baselines"

# The baselines the notebooks train in quick mode (``MintConfig`` fields), shipped as above.
COURSE_BASELINES: dict[str, dict] = {
    "mnist-mlp": dict(dataset="mnist", model="mlp", quick=True),
    "cifar10-cnn": dict(dataset="cifar10", model="cnn", quick=True,
                        train={"epochs": 5, "train_per_class": 2500}),
}


def baseline_file(cfg: MintConfig, train_set) -> tuple[nn.Module, str, str]:
    """The freshly initialised network of ``cfg`` (seeded), its checkpoint file name and the
    recipe key that names it: everything that shapes the trained weights goes into the key."""
    recipe = _recipe(cfg)
    per_class = recipe.pop("train_per_class", None)
    augment = recipe.pop("augment", False)
    torch.manual_seed(cfg.seed)  # the same seed gives the same initial weights
    model = _build(cfg, train_set)
    shapes = [list(p.shape) for p in model.state_dict().values()]  # the architecture
    key = json.dumps({"dataset": cfg.dataset, "model": cfg.model, "seed": cfg.seed,
                      "per_class": per_class, "augment": augment, "shapes": shapes, **recipe,
                      **({"root": str(cfg.root)} if cfg.dataset == "imagefolder" else {})},
                     sort_keys=True)
    name = f"{cfg.dataset}-{cfg.model}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"
    return model, name, key


def shipped_baseline(name: str) -> Path | None:
    """The shipped weight file called ``name``, or None when the package has none."""
    path = SHIPPED_DIR / name
    return path if path.is_file() else None


# Input shape and class count of the built-in image datasets, for checks made before any data
# is loaded (``baseline_available(cfg)`` in ``python -m mint_teach check``).
_KNOWN_SHAPES = {"mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10), "digits": ((1, 8, 8), 10)}


def baseline_available(cfg: MintConfig, train_set=None) -> str | None:
    """Where :func:`train_baseline` would find trained weights for ``cfg`` without training:
    "cache", "shipped", or None (it would train). ``train_set`` may be left out for the
    built-in datasets (mnist, cifar10, digits)."""
    if train_set is None:
        if cfg.dataset not in _KNOWN_SHAPES:
            raise ValueError(f"baseline_available: pass train_set for dataset {cfg.dataset!r}; "
                             f"it can be left out only for {sorted(_KNOWN_SHAPES)}")
        shape, n_classes = _KNOWN_SHAPES[cfg.dataset]
        train_set = SimpleNamespace(input_shape=shape, classes=list(range(n_classes)))
    _, name, _ = baseline_file(cfg, train_set)
    if (cache_dir() / "checkpoints" / name).is_file():
        return "cache"
    return "shipped" if shipped_baseline(name) else None


def train_baseline(cfg: MintConfig, train_set, test_set) -> tuple[nn.Module, float, bool]:
    """Train the unpruned network (section 1), or load trained weights of the same recipe.

    With ``cfg.reuse_checkpoint`` (the default) the weights come from the per-user cache, else
    from the files shipped in ``mint_teach/baselines`` (the course's quick-mode networks, stored
    in half precision), and only then is the network trained (and cached). Set
    ``reuse_checkpoint=False`` to watch it train.

    Returns (model, test accuracy, whether trained weights were reused).
    """
    recipe = _recipe(cfg)
    per_class = recipe.pop("train_per_class", None)
    augment = recipe.pop("augment", False)
    model, name, key = baseline_file(cfg, train_set)
    path = cache_dir() / "checkpoints" / name
    if cfg.reuse_checkpoint:
        for candidate in (path, shipped_baseline(name)):
            if candidate is None or not candidate.is_file():
                continue
            try:
                meta = train.load_checkpoint(model, candidate)
            except train.CheckpointError as exc:
                if candidate != path:
                    raise  # a damaged package file: say so rather than train silently
                _move_aside(path, exc)
                torch.manual_seed(cfg.seed)
                model = _build(cfg, train_set)
                continue
            if meta.get("test_items") != len(test_set):  # cached accuracy: another test set
                meta["test_acc"] = train.evaluate(model, test_set, device=cfg.device)
            return model, float(meta["test_acc"]), True
    subset = data.class_balanced_subset(train_set, per_class, seed=cfg.seed) if per_class else train_set
    state = path.with_suffix(".state.pt")  # per-epoch state: an interrupted run resumes
    kwargs = dict(**recipe, augment=data.random_crop_flip if augment else None,
                  device=cfg.device, seed=cfg.seed, progress=cfg.progress, desc="baseline",
                  checkpoint=state)
    try:
        _fit(model, subset, **kwargs)
    except train.CheckpointError as exc:  # checked before any training step
        _move_aside(state, exc)
        _fit(model, subset, **kwargs)
    acc = train.evaluate(model, test_set, device=cfg.device)
    if distributed.is_main():  # one writer under torchrun
        train.save_checkpoint(model, path, meta={"test_acc": acc, "test_items": len(test_set),
                                                 "recipe": key})
    state.unlink(missing_ok=True)
    return model, acc, False


def _move_aside(path: Path, error: Exception) -> None:
    """Rename an unreadable cached file out of the way (kept for inspection) and say so."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    warnings.warn(f"cached training file {path} could not be read ({error}); moved it to "
                  f"{aside.name} and training the baseline again", stacklevel=3)


pair_groups = resolve_groups  # {(parent, child): (G_c, G_p)}, section 3 (mint_teach.groups)


def estimate_dependency_seconds(n_rows: int, groups: dict, *, device=None) -> float:
    """Rough time for all dependency matrices: time 64 estimates on random data, scale up."""
    from . import mi

    g = torch.Generator().manual_seed(0)
    parent, child = torch.rand(n_rows, 32, generator=g), torch.rand(n_rows, 8, generator=g)
    start = time.perf_counter()
    mi.dependency_matrix(parent, child, parent_groups=8, child_groups=8, seed=0,
                         device=device, progress=False)
    per_estimate = (time.perf_counter() - start) / 64
    return per_estimate * sum(g_c * g_p for g_c, g_p in groups.values())


def published_rows(dataset, per_class: int, *, seed: int = 0):
    """Two independent row draws as the published scripts make them: ``(parent_rows, child_rows)``.

    Each draw takes ``per_class`` items of every class at random *with replacement* and
    shuffles them; the parent layer's activations come from the first draw and the child
    layer's from the second, so row k of one is not the image of row k of the other
    (section 4e). Returns two ``torch.utils.data.Subset`` of ``dataset``.
    """
    from torch.utils.data import Subset

    check_count("per_class", per_class)
    targets = data.targets_of(dataset)
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(2):
        chosen = []
        for c in torch.unique(targets).tolist():
            rows = torch.nonzero(targets == c).flatten()
            chosen.append(rows[torch.randint(len(rows), (per_class,), generator=generator)])
        chosen = torch.cat(chosen)[torch.randperm(per_class * len(chosen), generator=generator)]
        draws.append(Subset(dataset, chosen.tolist()))
    if isinstance(dataset, Subset):  # flatten, so fast batching still sees the base dataset
        draws = [Subset(dataset.dataset, [dataset.indices[r] for r in d.indices]) for d in draws]
    return draws[0], draws[1]


def compute_dependencies(model: nn.Module, rows, pairs, groups, *, seed: int = 0, device=None,
                         progress: bool = True, estimator: str = "faithful",
                         child_rows=None) -> dict[tuple[str, str], torch.Tensor]:
    """Dependency matrices D (child groups x parent groups) for every layer pair (sections 2-4).

    One call covers all pairs of a network: one forward pass records every layer, then each
    pair's matrix is computed with batched Prim (on the GPU when there is one), with a progress
    bar per pair and, before it starts, a time estimate. ``estimator`` is passed to
    ``mi.dependency_matrix``. ``child_rows`` (published mode, see ``published_rows``): take
    the child layers' activations from these rows instead of ``rows`` (same length).

    Returns ``{(parent, child): D}``, each D a float64 CPU tensor (child groups, parent groups).
    """
    from . import mi

    layers = list(dict.fromkeys(name for pair in pairs for name in pair))
    acts, _ = activations.collect(model, rows, layers, device=device, progress=progress)
    child_acts = acts
    if child_rows is not None:
        child_acts, _ = activations.collect(model, child_rows, layers, device=device,
                                            progress=progress)
    n_rows = next(iter(acts.values())).shape[0]
    if progress:
        total = sum(g_c * g_p for g_c, g_p in groups.values())
        eta = estimate_dependency_seconds(n_rows, groups, device=device)
        tqdm.write(f"dependencies ({estimator} estimator): {len(pairs)} layer pair(s), "
                   f"{total:,} estimates on {n_rows:,} rows; estimated {eta:.0f} s on "
                   f"{resolve_device(device)}")
    deps = {}
    for parent, child in pairs:
        g_c, g_p = groups[(parent, child)]
        deps[(parent, child)] = mi.dependency_matrix(
            acts[parent], child_acts[child], parent_groups=g_p, child_groups=g_c, seed=seed,
            device=device, progress=progress, estimator=estimator).cpu()
    return deps


def _fit(model: nn.Module, data_, **kwargs) -> dict:
    """``train.fit``, or ``distributed.fit`` (DDP) when running under torchrun."""
    return (distributed.fit if distributed.world_size() > 1 else train.fit)(model, data_, **kwargs)


def prune_and_finetune(model: nn.Module, masks: dict, train_set, test_set, *, epochs: int,
                       lr: float, layers: Sequence[str], seed: int = 0, device=None,
                       progress: bool = True, augment=None, desc: str = "fine-tune",
                       weight_decay: float = 1e-4, checkpoint=None) -> dict:
    """Apply ``masks`` to a copy of ``model``, measure, fine-tune with masks fixed (section 6).

    ``weight_decay`` is the fine-tuning SGD's (1e-4, the MLP recipe's; CIFAR-10 scripts pass
    5e-4). ``checkpoint``: a file for ``train.fit``'s per-epoch state, so an interrupted
    fine-tuning resumes where it stopped (None: no state kept).

    Returns the fine-tuned ``model``, ``acc_before_ft`` (the mask alone), ``acc`` (after
    fine-tuning), ``pruned_pct`` and the sparsity ``report``. For a network with batch norm also
    ``acc_recalibrated``: the accuracy before fine-tuning once the batch-norm statistics are
    re-measured on ``train_set`` (``train.recalibrate_batchnorm``, on a copy), which separates
    what the mask removed from statistics that no longer match; None without batch norm.
    """
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    acc_before = train.evaluate(pruned, test_set, device=device)
    acc_recalibrated = recalibrated_accuracy(pruned, train_set, test_set, device=device,
                                             seed=seed)
    if epochs > 0:
        _fit(pruned, train_set, epochs=epochs, lr=lr, weight_decay=weight_decay, device=device,
             seed=seed, progress=progress, augment=augment, desc=desc, checkpoint=checkpoint)
    report = pruning.sparsity_report(pruned, layers=list(layers))
    return {"model": pruned, "acc_before_ft": acc_before, "acc_recalibrated": acc_recalibrated,
            "acc": train.evaluate(pruned, test_set, device=device),
            "pruned_pct": report["total"]["pruned_pct"], "report": report}


def recalibrated_accuracy(model: nn.Module, train_set, test_set, *, device=None,
                          seed: int = 0) -> float | None:
    """Test accuracy of a copy of ``model`` with its batch-norm statistics re-measured on
    ``train_set`` (``train.recalibrate_batchnorm``); None when it has no batch norm."""
    if not train.batchnorm_layers(model):
        return None
    probe = train.recalibrate_batchnorm(copy.deepcopy(model), train_set, device=device, seed=seed)
    return train.evaluate(probe, test_set, device=device)


SAME_SHARE_METHODS = ("random", "magnitude", "unstructured")


def same_share_masks(model: nn.Module, masks: Mapping, method: str, *, seed: int = 0) -> dict:
    """The masks of a baseline that prunes as much as ``masks`` (MINT's) prunes (section 5).

    ``masks`` maps each ``(parent, child)`` pair to a ``(G_c, G_p)`` block mask, as
    ``pruning.masks_from_dependencies`` returns them. ``method``:

    - ``"random"``: in every pair, the same number of blocks as MINT cut, chosen at random;
      each pair draws from its own stream, seeded from ``seed`` and the pair's position in
      ``masks`` (one seed for every pair would make pairs of one shape cut the same blocks);
      the control that tells whether D carries information;
    - ``"magnitude"``: in every pair, the same number of blocks, those of smallest mean
      absolute weight;
    - ``"unstructured"``: the same share of the pairs' child weights in total, one weight at a
      time by magnitude (one global quantile, no per-layer cap).

    Blocks follow the same grouping as ``masks`` (read from their shapes). Returns masks that
    ``pruning.apply_masks`` accepts.

    Examples
    --------
    >>> net = models.MLP(in_features=8, hidden=(6, 4), num_classes=3)
    >>> mint = {("fc1", "fc2"): torch.tensor([[True, False, False], [True, True, False]])}
    >>> rnd = same_share_masks(net, mint, "random", seed=0)
    >>> int((~rnd[("fc1", "fc2")]).sum())  # three blocks cut, as MINT cut
    3
    """
    method = check_choice("method", method, SAME_SHARE_METHODS)
    if not isinstance(masks, Mapping) or not masks:
        raise ArgumentTypeError(f"masks must be a non-empty dict {{(parent, child): block "
                                f"mask}}; got {masks!r:.80}")
    keeps = {pair: torch.as_tensor(keep) != 0 for pair, keep in masks.items()}
    if method == "unstructured":
        modules = dict(model.named_modules())
        cut = total = 0
        for (parent, child), keep in keeps.items():
            weight = modules[child].weight
            full = pruning.expand_block_mask(keep, weight.shape, layer_units(model, parent))
            cut, total = cut + int((~full).sum()), total + full.numel()
        return pruning.magnitude_masks(model, list(keeps), prune_fraction=cut / total,
                                       granularity="unstructured", max_pair_fraction=1.0)
    out = {}
    streams_of = torch.Generator()  # one seed per pair, drawn from ``seed``
    if check_seed(seed) is None:
        streams_of.seed()
    else:
        streams_of.manual_seed(seed)
    streams = torch.randint(0, 2**31 - 1, (len(keeps),), generator=streams_of)
    for stream, (pair, keep) in zip(streams.tolist(), keeps.items()):
        share = 1.0 - keep.float().mean().item()
        groups = {pair: tuple(keep.shape)}
        if method == "magnitude":
            out.update(pruning.magnitude_masks(model, [pair], prune_fraction=share,
                                               granularity="block", groups=groups,
                                               max_pair_fraction=1.0))
        else:
            out.update(pruning.random_masks(model, [pair], prune_fraction=share, groups=groups,
                                            seed=stream, max_pair_fraction=1.0))
    return out


def _rows_per_class(cfg: MintConfig) -> int:
    """Activation rows per class: ``samples_per_class``, at most 100 in quick mode."""
    return min(cfg.samples_per_class, 100) if is_quick(cfg.quick) else cfg.samples_per_class


def check_out_dir(out_dir) -> None:
    """Make sure results can be written to ``out_dir`` before any work starts.

    Creates the folder when missing and writes and removes a probe file. Raises ValueError
    (``exc.field == "out_dir"``) naming the folder and the reason.
    """
    if not out_dir:
        return
    folder = Path(out_dir)
    with _about("out_dir"):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"out_dir {str(folder)!r} exists and is not a folder; pass a "
                             "folder for the results, or --out '' to write nothing")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / ".write-probe", lambda f: f.write(b""))
            (folder / ".write-probe").unlink()
        except OSError as exc:
            raise ValueError(f"out_dir {str(folder)!r} is not writable: {exc.strerror or exc}; "
                             "pass another folder") from None


def check_feasible(cfg: MintConfig, train_set) -> None:
    """Everything about ``cfg`` that needs the data or the model, checked before training.

    The layer pairs (known, adjacent), the groups (a dict needs an entry per child layer) and
    the activation rows per class (the smallest class must have that many). Raises
    ValueError or KeyError with ``exc.field`` naming the config field.
    """
    model = _build(cfg, train_set)  # untrained: only its layers are looked at
    with _about("layer_pairs"):
        pairs = models.layer_pairs(model, cfg.layer_pairs)
    with _about("groups"):
        pair_groups(model, pairs, cfg.groups)
    per_class = _rows_per_class(cfg)
    smallest = int(torch.bincount(data.targets_of(train_set)).min())
    with _about("samples_per_class"):
        if per_class > smallest:
            raise ValueError(f"samples_per_class={per_class} but the smallest class of "
                             f"the {cfg.dataset} training split has {smallest} images; use "
                             f"samples_per_class <= {smallest}")


def run_mint(config: MintConfig | None = None, **overrides) -> MintResult:
    """Run MINT end to end and return what it measured (sections 1-7).

    ``run_mint(dataset="digits", quick=True)`` builds the config from keywords. The steps, each
    a function of this module: :func:`train_baseline`, :func:`compute_dependencies` (on rows
    drawn as the estimator needs them), :func:`prune_grid` (MINT and the same-share baselines at
    every prune fraction) and :func:`summarise_compaction` (the best MINT row made smaller).
    """
    cfg = _resolve_config(config, overrides)
    dev = resolve_device(cfg.device)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    check_out_dir(cfg.out_dir)
    train_set = data.load_dataset(cfg.dataset, root=cfg.root, train=True)
    test_set = data.load_dataset(cfg.dataset, root=cfg.root, train=False)
    check_feasible(cfg, train_set)
    model, base_acc, reused = train_baseline(cfg, train_set, test_set)
    timings["baseline_reused" if reused else "baseline_train"] = time.perf_counter() - clock

    pairs = models.layer_pairs(model, cfg.layer_pairs)
    groups = pair_groups(model, pairs, cfg.groups)
    rows, child_rows = _dependency_rows(cfg, train_set)
    clock = time.perf_counter()
    deps = distributed.compute_dependencies(model, rows, pairs, groups, seed=cfg.seed,
                                            device=dev, progress=cfg.progress,
                                            estimator=cfg.estimator, child_rows=child_rows)
    timings["dependencies"] = time.perf_counter() - clock

    clock = time.perf_counter()
    results, all_masks = prune_grid(cfg, model, deps, train_set, test_set, device=dev)
    timings["prune_finetune"] = time.perf_counter() - clock

    label = _mint_label(cfg)
    best = max((r for r in results if r["method"] == label),
               key=lambda r: (r["acc"] >= base_acc - 0.005, r["pruned_pct"], r["acc"]))
    compact_model, compact_info = summarise_compaction(model, best["model"], test_set, device=dev)
    result = MintResult(config=cfg, baseline_acc=base_acc,
                        rows=[{k: v for k, v in r.items() if k != "model"} for r in results],
                        best={k: v for k, v in best.items() if k != "model"},
                        dependencies=deps, masks=all_masks[best["fraction"]],
                        report=best["report"], timings=timings, model=model,
                        pruned_model=best["model"], compact_model=compact_model,
                        compact=compact_info)
    _save(result)
    return result


def _resolve_config(config: MintConfig | None, overrides: dict) -> MintConfig:
    """The config of a run: ``config`` with ``overrides``; under torchrun, rank 0 alone shows
    progress and writes, and each rank uses its own device."""
    cfg = config or MintConfig(**overrides)
    if config is not None and overrides:
        cfg = MintConfig(**{**asdict(config), **overrides})
    if distributed.world_size() > 1:
        main = distributed.is_main()
        cfg = replace(cfg, progress=cfg.progress and main, out_dir=cfg.out_dir if main else None,
                      device=str(distributed.local_device(cfg.device)))
    return cfg


def _dependency_rows(cfg: MintConfig, train_set):
    """``(rows, child_rows)``: one class-balanced draw, or, in published mode, two independent
    draws with replacement as the published scripts make them (section 4e)."""
    per_class = _rows_per_class(cfg)
    if cfg.estimator in ("published", "published-2020"):
        return published_rows(train_set, per_class, seed=cfg.seed)
    return data.class_balanced_subset(train_set, per_class, seed=cfg.seed), None


def _mint_label(cfg: MintConfig) -> str:
    return "MINT" if cfg.estimator == "faithful" else f"MINT ({cfg.estimator} mode)"


BASELINE_LABELS = {"magnitude": "magnitude (blocks)", "random": "random (blocks)",
                   "unstructured": "magnitude (unstructured)"}


def prune_grid(cfg: MintConfig, model: nn.Module, deps: dict, train_set, test_set, *,
               device=None) -> tuple[list[dict], dict]:
    """MINT at every prune fraction of ``cfg``, each with ``cfg.baselines`` at the same share,
    all fine-tuned alike (sections 5-6).

    Returns ``(rows, masks)``: one row per fraction and method (``prune_and_finetune``'s
    result plus ``method`` and ``fraction``), and MINT's masks by fraction.
    """
    recipe = _recipe(cfg)
    ft_set = train_set
    if recipe.get("train_per_class"):  # quick mode fine-tunes on the quick training subset
        ft_set = data.class_balanced_subset(train_set, recipe["train_per_class"], seed=cfg.seed)
    ft = dict(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, layers=[c for _, c in deps],
              seed=cfg.seed, device=device, progress=cfg.progress,
              augment=data.random_crop_flip if recipe.get("augment") else None)
    rows, all_masks = [], {}
    for q in cfg.fractions:
        masks = pruning.masks_from_dependencies(deps, prune_fraction=q,
                                                max_pair_fraction=cfg.max_pair_fraction)
        all_masks[q] = masks
        rules = {_mint_label(cfg): masks}
        for method in ("magnitude", "random", "unstructured"):  # the order of the table
            if method in cfg.baselines:
                rules[BASELINE_LABELS[method]] = same_share_masks(model, masks, method,
                                                                  seed=cfg.seed)
        for label, rule in rules.items():
            out = prune_and_finetune(model, rule, ft_set, test_set, **ft,
                                     desc=f"{label} q={q}")
            rows.append({"method": label, "fraction": q, **out})
    return rows, all_masks


def summarise_compaction(model: nn.Module, pruned: nn.Module, test_set, *,
                         device=None) -> tuple[nn.Module, dict]:
    """Make ``pruned`` physically smaller (``pruning.compact``) and compare it with ``model``:
    parameters, MB, milliseconds per batch of 256 test images and accuracy (section 7).

    Returns ``(compact_model, figures)``.
    """
    small = pruning.compact(pruned)
    example = next(iter(data.make_loader(test_set, batch_size=256)))[0].to(device)
    return small, {
        "params_before": pruning.count_params(model),
        "params_after": pruning.count_params(small),
        "size_mb_before": pruning.model_size_mb(model),
        "size_mb_after": pruning.model_size_mb(small),
        "ms_before": pruning.inference_time(model.to(device), example),
        "ms_after": pruning.inference_time(small.to(device), example),
        "acc_after": train.evaluate(small, test_set, device=device),
    }


def _save(result: MintResult) -> None:
    """Write the result to ``out_dir/dataset-model/`` when asked; a failed write warns."""
    cfg = result.config
    if not cfg.out_dir:
        return
    folder = Path(cfg.out_dir) / f"{cfg.dataset}-{cfg.model}"
    try:
        _write(result, folder)
        result.saved_to = str(folder)
    except OSError as exc:  # the run is done: keep it, say what could not be written
        warnings.warn(f"could not write the results to {folder}: {exc}; they are in the "
                      "returned MintResult (result.to_dict())", stacklevel=3)


def _write(result: MintResult, folder: Path) -> None:
    """result.json and the figures a person would rather look at than read."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots

    folder.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(folder / "result.json", result.to_dict())
    fig = plots.plot_dependencies(result.dependencies)
    write_atomic(folder / "dependencies.png", lambda f: fig.savefig(f, format="png", dpi=90))
    fig = plots.plot_tradeoff(result.rows, baseline_acc=result.baseline_acc)
    write_atomic(folder / "tradeoff.png", lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close("all")


def _write_text_atomic(path: Path, obj) -> None:
    """``obj`` as indented JSON in ``path``, written whole or not at all."""
    text = json.dumps(obj, indent=1, default=str)
    write_atomic(path, lambda f: f.write(text.encode()))
