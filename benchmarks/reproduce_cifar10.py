"""MINT on CIFAR-10 at paper scale: VGG16-BN and ResNet56 (and the classroom CNN on a CPU).

Paper (docs/method.md section 7): VGG16-BN 83.46 % params pruned at 93.43 % (baseline 93.98 %,
9.020 Mb after); ResNet56 52.41 % at 93.47 % and 57.01 % at 93.02 % (baseline 92.55 %).

Stages, each resumable after an interruption (state lives in --out; cached dependencies and
results carry a hash of the baseline's weights and of their settings in their file names, so a
new baseline or setting never reuses stale ones):
1. baseline: standard augmentation (random crop + flip), SGD + momentum, cosine schedule
   (checkpoint after every epoch; the finished weights are cached and reused);
2. activations (250 per class) and the dependency matrices of every adjacent pair of prunable
   layers, with per-layer group counts, in one call (batched Prim on the GPU when present);
3. a prune-fraction grid, each fine-tuned with masks fixed (one result file per fraction);
4. a table beside the paper's: params pruned, accuracy, memory, and the compacted network's
   real size and inference time.

    python benchmarks/reproduce_cifar10.py --model vgg16_bn               # paper scale, GPU
    python benchmarks/reproduce_cifar10.py --model resnet56
    python benchmarks/reproduce_cifar10.py --model cnn                    # classroom, CPU
    python benchmarks/reproduce_cifar10.py --model vgg16_bn --epochs 2 --train-per-class 500 \\
        --finetune-epochs 1 --samples-per-class 50 --test-per-class 100     # reduced, CPU
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from pathlib import Path

import torch

from mint_teach import data, models, pipeline, pruning, train
from mint_teach.config import resolve_device

PAPER = {
    "vgg16_bn": [{"pruned": 83.46, "acc": 93.43, "baseline": 93.98, "memory_mb": 9.020}],
    "resnet56": [{"pruned": 52.41, "acc": 93.47, "baseline": 92.55, "memory_mb": 1.552},
                 {"pruned": 57.01, "acc": 93.02, "baseline": 92.55, "memory_mb": 1.461}],
}
GRIDS = {"vgg16_bn": [0.6, 0.7, 0.8, 0.85, 0.9], "resnet56": [0.3, 0.4, 0.5, 0.6],
         "cnn": [0.3, 0.5, 0.7]}


def _key(pair):
    return f"{pair[0]}->{pair[1]}"


def _fingerprint(model) -> str:
    """A short hash of the baseline's weights: cached dependencies and results of another
    baseline (another seed, recipe or training run) are never reused for this one."""
    digest = hashlib.sha1()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def main() -> None:
    ap = argparse.ArgumentParser(description="MINT on CIFAR-10 (VGG16-BN, ResNet56, classroom CNN)",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="vgg16_bn", choices=["vgg16_bn", "resnet56", "cnn"])
    ap.add_argument("--epochs", type=int, default=None, help="baseline epochs (default: recipe)")
    ap.add_argument("--train-per-class", type=int, default=None,
                    help="train on a class-balanced subset (reduced CPU runs)")
    ap.add_argument("--test-per-class", type=int, default=None,
                    help="evaluate on a class-balanced part of the test set (reduced CPU runs)")
    ap.add_argument("--samples-per-class", type=int, default=250)
    ap.add_argument("--units-per-group", type=int, default=16)
    ap.add_argument("--fractions", type=float, nargs="+", default=None)
    ap.add_argument("--max-pair-fraction", type=float, default=0.75)
    ap.add_argument("--finetune-epochs", type=int, default=40)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA)")
    ap.add_argument("--out", default=None, help="state and results (default runs/cifar10-MODEL)")
    args = ap.parse_args()

    dev = resolve_device(args.device)
    out = Path(args.out or f"runs/cifar10-{args.model}")
    out.mkdir(parents=True, exist_ok=True)
    fractions = args.fractions or GRIDS[args.model]
    print(f"MINT on CIFAR-10 / {args.model}, device {dev}, state in {out}/")
    clock = time.perf_counter()
    train_set = data.load_dataset("cifar10", root=args.root, train=True)
    test_set = data.load_dataset("cifar10", root=args.root, train=False)
    print(f"data loaded in {time.perf_counter() - clock:.1f} s")
    if args.test_per_class:
        test_set = data.class_balanced_subset(test_set, args.test_per_class, seed=args.seed)

    # 1. baseline (pipeline.train_baseline: per-epoch state, cached weights, same recipe key)
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.train_per_class:
        overrides["train_per_class"] = args.train_per_class
    cfg = pipeline.MintConfig(dataset="cifar10", model=args.model, seed=args.seed,
                              device=str(dev), root=args.root, train=overrides, out_dir=None)
    clock = time.perf_counter()
    model, base_acc, reused = pipeline.train_baseline(cfg, train_set, test_set)
    t_train = time.perf_counter() - clock
    print(f"baseline: {100 * base_acc:.2f}% ({'reused checkpoint' if reused else f'{t_train:.0f} s'})")

    # 2. dependencies for every adjacent pair, cached
    pairs = models.layer_pairs(model)
    groups = pipeline.pair_groups(model, pairs, pipeline.groups_per_layer(
        model, units_per_group=args.units_per_group))
    dep_id = (f"{_fingerprint(model)}-s{args.samples_per_class}-u{args.units_per_group}"
              f"-seed{args.seed}")
    dep_file = out / f"dependencies-{dep_id}.pt"
    clock = time.perf_counter()
    if dep_file.is_file():
        saved = torch.load(dep_file, weights_only=True)
        deps = {pair: saved[_key(pair)] for pair in pairs}
        print("dependencies: reused", dep_file)
    else:
        rows = data.class_balanced_subset(train_set, args.samples_per_class, seed=args.seed)
        deps = pipeline.compute_dependencies(model, rows, pairs, groups, seed=args.seed, device=dev)
        torch.save({_key(p): d for p, d in deps.items()}, dep_file)
    t_deps = time.perf_counter() - clock
    print(f"dependencies: {len(pairs)} pairs in {t_deps:.1f} s")

    # 3. prune-fraction grid with fine-tuning, one result file per fraction
    children = [c for _, c in pairs]
    ft_set = train_set
    if args.train_per_class:
        ft_set = data.class_balanced_subset(train_set, args.train_per_class, seed=args.seed)
    example = next(iter(train.make_loader(test_set, batch_size=256)))[0].to(dev)
    ms_base = pipeline.inference_time(model.to(dev), example)
    # everything else a result depends on; with the baseline's and the dependencies' ids in
    # each file name, a changed setting never picks up a stale result
    run_id = hashlib.sha1(json.dumps([args.finetune_epochs, args.finetune_lr,
                                      args.max_pair_fraction, args.train_per_class,
                                      args.test_per_class]).encode()).hexdigest()[:8]
    rows_out = []
    for q in fractions:
        tag = f"{dep_id}-{run_id}-q{q:.3f}"
        res_file = out / f"result-{tag}.json"
        if res_file.is_file():
            rows_out.append(json.loads(res_file.read_text()))
            print(f"q={q}: reused {res_file}")
            continue
        masks = pruning.masks_from_dependencies(deps, prune_fraction=q,
                                                max_pair_fraction=args.max_pair_fraction)
        pruned = pruning.apply_masks(copy.deepcopy(model), masks)
        acc_before = train.evaluate(pruned, test_set, device=dev)
        acc_recalibrated = pipeline.recalibrated_accuracy(pruned, train_set, test_set,
                                                          device=dev, seed=args.seed)
        clock = time.perf_counter()
        train.fit(pruned, ft_set, epochs=args.finetune_epochs, lr=args.finetune_lr,
                  weight_decay=5e-4, augment=data.random_crop_flip, device=dev, seed=args.seed,
                  desc=f"fine-tune q={q}", checkpoint=out / f"finetune-{tag}.state.pt")
        acc = train.evaluate(pruned, test_set, device=dev)
        report = pruning.sparsity_report(pruned, layers=children)
        small = pruning.compact(pruned).to(dev)
        row = {"fraction": q, "pruned_pct": report["total"]["pruned_pct"],
               "memory_mb": report["total"]["memory_mb"], "acc_before_ft": acc_before,
               "acc_recalibrated": acc_recalibrated, "acc": acc,
               "acc_compact": train.evaluate(small, test_set, device=dev),
               "params": pruning.count_params(model), "params_compact": pruning.count_params(small),
               "size_mb": pruning.model_size_mb(model), "size_mb_compact": pruning.model_size_mb(small),
               "ms_batch256": ms_base, "ms_batch256_compact": pipeline.inference_time(small, example),
               "finetune_s": time.perf_counter() - clock}
        res_file.write_text(json.dumps(row, indent=1))
        (out / f"finetune-{tag}.state.pt").unlink(missing_ok=True)
        rows_out.append(row)

    # 4. the table beside the paper's
    print(f"\nCIFAR-10 {args.model}: baseline {100 * base_acc:.2f}% on {dev} on "
          f"{len(test_set):,} test images "
          f"(train {t_train:.0f} s, dependencies {t_deps:.1f} s)")
    print(f"{'':<14}{'pruned':>8}{'acc':>8}{'before FT':>10}{'(BN recal.)':>12}{'memory Mb':>10}"
          f"{'params (compact)':>22}{'MB (compact)':>16}{'ms/256 (compact)':>20}")
    for p in PAPER.get(args.model, []):
        print(f"{'paper':<14}{p['pruned']:>7.2f}%{p['acc']:>7.2f}%{'':>22}{p['memory_mb']:>10.3f}")
    for r in rows_out:
        print(f"{'q=' + format(r['fraction'], '.3f'):<14}{r['pruned_pct']:>7.2f}%"
              f"{100 * r['acc']:>7.2f}%{100 * r['acc_before_ft']:>9.2f}%"
              f"{100 * r.get('acc_recalibrated', float('nan')):>11.2f}%{r['memory_mb']:>10.3f}"
              f"{r['params']:>11,} ({r['params_compact']:,})"
              f"{r['size_mb']:>8.2f} ({r['size_mb_compact']:.2f})"
              f"{r['ms_batch256']:>10.1f} ({r['ms_batch256_compact']:.1f})")
    (out / "summary.json").write_text(json.dumps(
        {"model": args.model, "baseline_acc": base_acc, "device": str(dev), "rows": rows_out},
        indent=1))


if __name__ == "__main__":
    main()
