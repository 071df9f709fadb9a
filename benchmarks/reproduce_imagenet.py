"""MINT on ILSVRC2012 with ResNet-50, on one process or many (torchrun), both protocols.

Paper (docs/method.md section 7): baseline 76.13 % top-1; MINT 43.01 % of parameters pruned at
71.50 %, 49.00 % at 71.12 %, 49.62 % at 71.05 %; model memory 91.16 MB -> 52.37 MB.

Two protocols, each resumable after an interruption (state in --out, keyed by a hash of the
baseline's weights and the protocol's settings):

- ``published``: the published estimator (``estimator="published"``, parent and child rows
  drawn independently with replacement), 5 rows per class, the published job's group counts
  (16, 32 or 64 by the layer's place in the network), per-layer cap 0.55, 30 fine-tuning
  epochs (lr 0.01, x0.1 after epochs 10 and 20, batch 64, weight decay 5e-4); the accuracy is
  reported at the last epoch and, flagged, at the best validation epoch as published;
- ``faithful``: the toolkit's estimator on class-balanced rows, the same groups, cap and
  schedule; last epoch only (no selection on the validation set, which is ILSVRC's test set).

Stages: 1. the baseline (torchvision's published weights, or a local file; on a synthetic
tree a short training run); 2. per protocol, activations and dependency matrices of all
32 bottleneck pairs (shared out over the ranks); 3. per prune fraction, masks and
fine-tuning with DDP (a checkpoint per epoch); 4. the table beside the paper's row.

Every run starts with a short measured run (a few training steps, the dependency
engine on random data) and prints what the full run needs: time per epoch per GPU, memory,
disk, and the exact torchrun command. ``--plan-only`` stops there.

    python benchmarks/reproduce_imagenet.py --root /data/imagenet --plan-only
    torchrun --nproc_per_node 8 benchmarks/reproduce_imagenet.py --root /data/imagenet \\
        --weights IMAGENET1K_V1
    python benchmarks/reproduce_imagenet.py --synthetic      # end to end on a tiny tree, CPU

Without an ImageNet tree at --root (or MINT_TEACH_DATA/imagenet) it says in one line where it
looked and exits with status 2. Stage the tree once, offline, as an image-folder tree:

    ROOT/train/n01440764/*.JPEG ... (1000 class folders, 1,281,167 images, about 140 GB)
    ROOT/val/n01440764/*.JPEG   ... (the same 1000 folders, 50,000 images, about 6.4 GB)

1. Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org (an
   account is needed; the licence does not allow redistribution).
2. mkdir -p ROOT/train && tar -xf ILSVRC2012_img_train.tar -C ROOT/train, then unpack each
   nXXXXXXXX.tar there into its own folder nXXXXXXXX/.
3. mkdir -p ROOT/val && tar -xf ILSVRC2012_img_val.tar -C ROOT/val, then move every
   validation image into the folder of its class, using the labels of the ILSVRC2012
   development kit (ILSVRC2012_validation_ground_truth.txt with meta.mat's wnids).
4. Run again with --root ROOT (or MINT_TEACH_DATA=PARENT with ROOT=PARENT/imagenet).

Every bad flag (a fraction outside (0, 1), a count below 1, an --out that is a file or not
writable) is one line and exit status 2, before any work. Cached files (the synthetic tree,
the baseline, dependencies, results) are named by a hash of everything that shaped them, and
each is written whole or not at all (a temporary name, then a rename), so an interrupted run
never leaves a file or a tree that a rerun would take for finished.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from mint_teach import data, distributed, models, pipeline, pruning, train
from mint_teach._cli import OneLineParser, check_flag, check_out_folder
from mint_teach._validation import check_count, check_fraction, check_number
from mint_teach.config import data_root, resolve_device, with_umask, write_atomic

PAPER = {"baseline": 76.13, "rows": [(43.01, 71.50), (49.00, 71.12), (49.62, 71.05)],
         "memory_mb": (91.16, 52.37)}
PROTOCOLS = {
    "published": dict(estimator="published", select_best_epoch=True),
    "faithful": dict(estimator="faithful", select_best_epoch=False),
}
STAGING = ("error: no ImageNet (ILSVRC2012) tree at {root} (looked for {root}/train and "
           "{root}/val); stage it as ROOT/train/n01440764/*.JPEG and ROOT/val/n01440764/*.JPEG "
           "(1000 class folders; the steps are at the top of benchmarks/reproduce_imagenet.py) "
           "and give --root ROOT, or try the whole pipeline without ImageNet with --synthetic")
MODELS = ("resnet50", "tiny_resnet50")
SYNTHETIC = dict(classes=4, train_per_class=16, val_per_class=8, size=40)  # and the seed


def _parser() -> argparse.ArgumentParser:
    ap = OneLineParser(description=__doc__.split("\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--root", default=None, help="ImageNet tree (default MINT_TEACH_DATA/imagenet)")
    ap.add_argument("--synthetic", action="store_true",
                    help="build and use a tiny synthetic tree in OUT/synthetic (reduced ResNet-50)")
    ap.add_argument("--model", default=None, choices=MODELS,
                    help="resnet50 (default) or tiny_resnet50 (default with --synthetic)")
    ap.add_argument("--weights", default=None,
                    help="baseline weights: a file, or torchvision's IMAGENET1K_V1 (76.13 %%)")
    ap.add_argument("--baseline-epochs", type=int, default=None,
                    help="baseline epochs when no --weights (default: 0, or 6 synthetic)")
    ap.add_argument("--protocol", default="both", choices=["published", "faithful", "both"])
    ap.add_argument("--samples-per-class", type=int, default=5, help="published job: 5")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    ap.add_argument("--max-pair-fraction", type=float, default=0.55, help="published job: 0.55")
    ap.add_argument("--finetune-epochs", type=int, default=30)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=64, help="global batch (published: 64)")
    ap.add_argument("--image-size", type=int, default=None, help="224 (synthetic: 32)")
    ap.add_argument("--workers", type=int, default=None, help="loader processes per rank")
    ap.add_argument("--measure-steps", type=int, default=20,
                    help="training steps timed for the plan")
    ap.add_argument("--plan-only", action="store_true", help="measure, print the plan, stop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None,
                    help="state and results (default runs/imagenet-MODEL, or -synthetic)")
    return ap


def _check_args(ap: argparse.ArgumentParser, args) -> None:
    """Every flag checked before any work: one line naming the flag, exit status 2."""
    between = dict(low=0.0, high=1.0, low_open=True, high_open=True)
    check_flag(ap, "--fractions", check_number, args.fractions, **between)
    check_flag(ap, "--max-pair-fraction", check_fraction, args.max_pair_fraction)
    check_flag(ap, "--finetune-lr", check_number, args.finetune_lr, low=0.0, low_open=True)
    for flag, low in (("--samples-per-class", 1), ("--batch-size", 1), ("--measure-steps", 1),
                      ("--finetune-epochs", 0), ("--baseline-epochs", 0), ("--image-size", 8),
                      ("--workers", 0), ("--seed", 0)):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            check_flag(ap, flag, check_count, value, low=low,
                       high=2**32 - 1 if flag == "--seed" else None)
    check_flag(ap, "--device", lambda name, value: resolve_device(value), args.device)
    if args.out is not None:
        check_out_folder(ap, "--out", args.out)


def _digest(*settings) -> str:
    """A short hash of the settings that shaped a cached file (its name carries it)."""
    return hashlib.sha1(json.dumps(settings, default=str, sort_keys=True).encode()
                        ).hexdigest()[:10]


def _data_settings(args, root: Path) -> dict:
    """What the images a network sees depend on: the tree and the image size."""
    return {"root": str(root.resolve()), "image_size": _image_size(args)}


def _image_size(args) -> int:
    return args.image_size or (32 if args.synthetic else 224)


def _say(*args, file=None) -> None:
    if distributed.is_main():
        print(*args, flush=True, file=file or sys.stdout)


def _fingerprint(model, *settings) -> str:
    digest = hashlib.sha1(json.dumps(settings, default=str, sort_keys=True).encode())
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def published_groups(model) -> dict:
    """The published ImageNet job's group counts per pair (``--parent_clusters 64``).

    Its script numbers the 53 convs in forward order (the stem, then per bottleneck conv1,
    conv2, conv3 and the downsample conv) and maps a request of 64 to 16 groups for the
    pairs up to conv 19, 32 up to conv 37 and 64 after (children: one conv earlier). Counts
    are capped at the layer's units. Returns ``{(parent, child): (G_c, G_p)}``.
    """
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    index = {name: k + 1 for k, name in enumerate(convs)}  # the published 1-based numbering

    def count(key: int, last_small: int, last_mid: int) -> int:
        return 16 if key <= last_small else 32 if key <= last_mid else 64

    out = {}
    for parent, child in models.layer_pairs(model):
        key = index[parent]
        units_p = model.get_submodule(parent).out_channels
        units_c = model.get_submodule(child).out_channels
        out[(parent, child)] = (min(units_c, count(key, 18, 36)), min(units_p, count(key, 19, 37)))
    return out


def _load_data(args, root: Path):
    opts = dict(image_size=_image_size(args), num_workers=args.workers)
    return (data.load_dataset("imagefolder", root=root, train=True, **opts),
            data.load_dataset("imagefolder", root=root, train=True, augment=True, **opts),
            data.load_dataset("imagefolder", root=root, train=False, **opts))


def baseline_path(args, root: Path, classes: int, epochs: int, out: Path) -> Path:
    """Where the trained baseline is cached: named by everything that shaped it."""
    tag = _digest(args.model, epochs, args.seed, args.batch_size, classes, "lr 0.1, wd 1e-4",
                  _data_settings(args, root))
    return out / f"baseline-{args.model}-e{epochs}-seed{args.seed}-{tag}.pt"


def _baseline(args, train_set, val_set, out: Path, root: Path):
    """The unpruned network and its top-1 accuracy (stage 1), cached in OUT."""
    torch.manual_seed(args.seed)
    model = models.build_model(args.model, num_classes=len(train_set.classes),
                               weights=args.weights)
    epochs = args.baseline_epochs if args.baseline_epochs is not None else (
        6 if args.synthetic else 0)
    if args.weights is None and epochs == 0:
        raise ValueError("no baseline: give --weights (a file, or IMAGENET1K_V1) or "
                         "--baseline-epochs N")
    path = baseline_path(args, root, len(train_set.classes), epochs, out)
    if args.weights is None and path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    elif args.weights is None:
        distributed.fit(model, train_set, epochs=epochs, lr=0.1, batch_size=args.batch_size,
                        weight_decay=1e-4, seed=args.seed, device=args.device,
                        desc="baseline", checkpoint=out / f"{path.stem}.state.pt")
        # a short run leaves running statistics behind the weights: measure them afresh
        # (the same batches on every rank, so the ranks stay equal)
        train.recalibrate_batchnorm(model, train_set, device=distributed.local_device(args.device),
                                    seed=args.seed)
        distributed.save_atomic(model.state_dict(), path)
    return model, distributed.evaluate(model, val_set, device=args.device)


def _measure(args, model, train_set, groups) -> dict:
    """A short measured run: training steps per second per rank, the dependency engine's rate."""
    probe = copy.deepcopy(model)
    steps = args.measure_steps
    batch = args.batch_size
    distributed.fit(probe, train_set, epochs=1, lr=1e-3, batch_size=batch, seed=args.seed,
                    device=args.device, progress=False, max_steps=1)  # warm-up
    _, seconds = distributed.timed(distributed.fit, probe, train_set, epochs=1, lr=1e-3,
                                   batch_size=batch, seed=args.seed, device=args.device,
                                   progress=False, max_steps=steps)
    rows = args.samples_per_class * len(train_set.classes)
    dep_s = pipeline.estimate_dependency_seconds(
        rows, groups, device=distributed.local_device(args.device))
    dev = distributed.local_device(args.device)
    memory = (torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    taken = min(steps, -(-len(train_set) // batch))
    return {"images_per_s_per_rank": taken * batch / distributed.world_size() / seconds,
            "dependency_s_one_rank": dep_s, "memory_gib": memory, "device": str(dev)}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def _plan(args, root: Path, model, train_set, val_set, rate: dict, protocols) -> None:
    """What the full run needs, from the measured rates, and the command that runs it."""
    ips = rate["images_per_s_per_rank"]
    epoch_s = len(train_set) / ips
    world = distributed.world_size()
    runs = len(protocols) * len(args.fractions)
    ckpt_mb = 2 * pruning.model_size_mb(model)  # weights + momentum
    disk_gb = _tree_bytes(root) / 1e9
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in [
        ("root", root), ("weights", args.weights), ("protocol", args.protocol),
        ("fractions", " ".join(map(str, args.fractions))),
        ("finetune_epochs", args.finetune_epochs), ("batch_size", args.batch_size)] if v)
    _say(f"\nmeasured on {rate['device']} x {world} rank(s): {ips:.1f} training images/s per "
         f"rank at global batch {args.batch_size}; peak memory {rate['memory_gib']:.2f} GiB "
         f"per rank")
    _say(f"full run needs: {_duration(epoch_s)} per training epoch per {rate['device']} rank "
         f"({len(train_set):,} images), {_duration(epoch_s / 8)} on 8; fine-tuning {runs} run(s)"
         f" x {args.finetune_epochs} epochs = {_duration(runs * args.finetune_epochs * epoch_s)}"
         f" of one rank; dependencies {_duration(rate['dependency_s_one_rank'])} per protocol "
         f"on one rank (shared out over the ranks); {len(val_set):,} images evaluated per epoch")
    _say(f"memory: {rate['memory_gib']:.2f} GiB per rank at local batch "
         f"{args.batch_size // world}; disk: data {disk_gb:.1f} GB + checkpoints "
         f"{(runs + 1) * ckpt_mb / 1e3:.2f} GB in {args.out}")
    _say(f"command (one node, 8 GPUs):\n  torchrun --nproc_per_node 8 "
         f"benchmarks/reproduce_imagenet.py {flags} --out {args.out}")
    _say(f"command (N nodes): torchrun --nnodes N --nproc_per_node 8 --rdzv-backend c10d "
         f"--rdzv-endpoint HOST:29500 --rdzv-id mint benchmarks/reproduce_imagenet.py {flags} "
         f"--out {args.out}")


def _dependencies(args, model, train_set, groups, protocol: str, out: Path, root: Path) -> dict:
    """Stage 2: the protocol's dependency matrices, cached by baseline and settings."""
    estimator = PROTOCOLS[protocol]["estimator"]
    tag = _fingerprint(model, protocol, args.samples_per_class, sorted(groups.items()), args.seed,
                       _data_settings(args, root))
    path = out / f"dependencies-{protocol}-{tag}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        return {tuple(k.split("->")): v for k, v in saved.items()}
    child_rows = None
    if estimator == "published":
        rows, child_rows = pipeline.published_rows(train_set, args.samples_per_class,
                                                   seed=args.seed)
    else:
        rows = data.class_balanced_subset(train_set, args.samples_per_class, seed=args.seed)
    deps, seconds = distributed.timed(
        distributed.compute_dependencies, model, rows, list(groups), groups, seed=args.seed,
        device=args.device, estimator=estimator, child_rows=child_rows)
    _say(f"{protocol}: dependencies of {len(groups)} pairs in {seconds:.1f} s "
         f"on {distributed.world_size()} rank(s)")
    distributed.save_atomic({f"{p}->{c}": d for (p, c), d in deps.items()}, path)
    return deps


def _finetune(args, model, deps, q, protocol, sets, out: Path, root: Path) -> dict:
    """Stage 3: one prune fraction of one protocol, fine-tuned with DDP; cached as JSON."""
    train_set, aug_set, val_set = sets
    tag = _fingerprint(model, protocol, q, args.max_pair_fraction, args.finetune_epochs,
                       args.finetune_lr, args.batch_size, args.samples_per_class, args.seed,
                       _data_settings(args, root))
    path = out / f"result-{protocol}-q{q:.3f}-{tag}.json"
    if path.is_file():
        return json.loads(path.read_text())
    masks = pruning.masks_from_dependencies(deps, prune_fraction=q,
                                            max_pair_fraction=args.max_pair_fraction)
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    before = distributed.evaluate(pruned, val_set, device=args.device)
    recalibrated = pipeline.recalibrated_accuracy(
        pruned, train_set, val_set, device=distributed.local_device(args.device), seed=args.seed)
    history = distributed.fit(
        pruned, aug_set, epochs=args.finetune_epochs, lr=args.finetune_lr, weight_decay=5e-4,
        batch_size=args.batch_size, schedule="step", milestones=(1 / 3, 2 / 3), seed=args.seed,
        device=args.device, desc=f"{protocol} q={q}", eval_data=val_set,
        checkpoint=out / f"finetune-{protocol}-q{q:.3f}-{tag}.state.pt")
    small = pruning.compact(pruned)
    report = pruning.sparsity_report(pruned)
    row = {"protocol": protocol, "fraction": q, "acc_before_ft": before,
           "acc_recalibrated": recalibrated,
           "acc_last": history["test_acc"][-1] if history["test_acc"] else before,
           "acc_best_epoch": max(history["test_acc"], default=before),
           "pruned_pct_all_params": 100 * report["total"]["zeros"] / pruning.count_params(pruned),
           "pruned_pct_prunable": report["total"]["pruned_pct"],
           "size_mb": pruning.model_size_mb(model), "size_mb_compact": pruning.model_size_mb(small),
           "memory_mb_nonzero": 4e-6 * (pruning.count_params(pruned) - report["total"]["zeros"])}
    if distributed.is_main():
        text = json.dumps(row, indent=1).encode()
        write_atomic(path, lambda f: f.write(text))
    return row


def _table(base_acc: float, rows: list[dict]) -> None:
    _say(f"\nILSVRC2012 ResNet-50 (paper baseline {PAPER['baseline']:.2f}%, this baseline "
         f"{100 * base_acc:.2f}%)")
    _say(f"{'':<26}{'pruned (all)':>13}{'before FT':>11}{'(BN recal.)':>12}{'top-1 last':>12}"
         f"{'best epoch*':>12}"
         f"{'non-zero MB':>13}{'MB (compact)':>16}")
    for pruned, acc in PAPER["rows"]:
        _say(f"{'paper':<26}{pruned:>12.2f}%{'':>23}{acc:>11.2f}%{'':>12}"
             f"{PAPER['memory_mb'][1]:>13.2f}{PAPER['memory_mb'][0]:>8.2f}")
    for r in rows:
        best = f"{100 * r['acc_best_epoch']:>11.2f}%" if PROTOCOLS[r["protocol"]][
            "select_best_epoch"] else f"{'-':>12}"
        _say(f"{r['protocol'] + ' q=' + format(r['fraction'], '.2f'):<26}"
             f"{r['pruned_pct_all_params']:>12.2f}%{100 * r['acc_before_ft']:>10.2f}%"
             f"{100 * r['acc_recalibrated']:>11.2f}%"
             f"{100 * r['acc_last']:>11.2f}%{best}"
             f"{r['memory_mb_nonzero']:>13.2f}{r['size_mb']:>8.2f} ({r['size_mb_compact']:.2f})")
    _say("* best validation epoch: the published protocol's test-set selection, shown flagged")


def synthetic_tree(out: Path, seed: int, *, build: bool = True) -> Path:
    """The synthetic tree of ``seed`` in ``out``, built whole or not at all (``build=False``:
    only its path).

    Its folder is named by its settings. It is written into a fresh temporary folder and
    renamed into place only when every image is written, so an interrupted build leaves no
    folder of that name (only a hidden temporary one, removed on the way out when possible).
    """
    settings = {**SYNTHETIC, "seed": seed}
    root = out / f"synthetic-{_digest(settings)}"
    if root.is_dir() or not build:
        return root
    out.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out, prefix=f".{root.name}."))
    try:
        data.synthetic_image_tree(building, **settings)
        os.chmod(building, with_umask(0o777))  # mkdtemp made it private
        os.rename(building, root)  # one step; fails if another process finished first
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # the temporary folder made above
        if not root.is_dir():
            raise
    return root


def _root(args) -> Path | None:
    out = Path(args.out)
    if args.synthetic:
        root = synthetic_tree(out, args.seed, build=distributed.is_main())
        distributed.barrier()
        return root
    root = Path(args.root) if args.root else data_root() / "imagenet"
    return root if (root / "train").is_dir() and (root / "val").is_dir() else None


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.model = args.model or ("tiny_resnet50" if args.synthetic else "resnet50")
    args.out = args.out or f"runs/imagenet-{'synthetic' if args.synthetic else args.model}"
    _check_args(parser, args)  # before any process group, data or network
    distributed.setup()
    torch.manual_seed(args.seed)
    if args.synthetic:  # a few seconds per stage on a CPU, unless set otherwise
        defaults = _parser().parse_args([])
        for name, small in (("finetune_epochs", 3), ("batch_size", 16)):
            if getattr(args, name) == getattr(defaults, name):
                setattr(args, name, small)
    root = _root(args)
    if root is None:
        _say(STAGING.format(root=args.root or data_root() / "imagenet"), file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        sets = _load_data(args, root)
        model, base_acc = _baseline(args, sets[0], sets[2], out, root)
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}", file=sys.stderr)
        return 2
    _say(f"baseline {args.model}: {100 * base_acc:.2f}% top-1 on {len(sets[2]):,} images "
         f"({len(sets[0].classes)} classes), {distributed.world_size()} rank(s)")
    groups = published_groups(model)
    protocols = list(PROTOCOLS) if args.protocol == "both" else [args.protocol]
    _plan(args, root, model, sets[0], sets[2], _measure(args, model, sets[1], groups), protocols)
    if args.plan_only:
        return 0
    rows = []
    for protocol in protocols:
        deps = _dependencies(args, model, sets[0], groups, protocol, out, root)
        rows += [_finetune(args, model, deps, q, protocol, sets, out, root)
                 for q in args.fractions]
    _table(base_acc, rows)
    distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
