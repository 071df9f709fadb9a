"""MINT on CIFAR-10: the classroom CNN's seed study, and VGG16-BN / ResNet56 at paper scale.

Paper (docs/method.md section 7): VGG16-BN 83.46 % params pruned at 93.43 % (baseline 93.98 %,
9.020 Mb after); ResNet56 52.41 % at 93.47 % and 57.01 % at 93.02 % (baseline 92.55 %).

``--model cnn`` is the reproduction report of the classroom CNN, two tables from one shared
baseline. Every method is measured before fine-tuning, after batch-norm recalibration and after
fine-tuning (last epoch; the test set selects nothing), reported as mean +- sd over seeds; runs
of one seed share the activation rows and the fine-tuning draw and order, so they are paired,
and the tests against random blocks are the paired t-test beside Welch's.

1. MINT as published (``--study global``, ``--seeds`` 10): one global threshold over every
   pair's D with the per-pair cap 0.75 (section 5), so MINT decides how much each layer loses;
   random blocks and block magnitude (the blocks of smallest mean absolute weight) cut the
   same number of blocks in every pair as MINT did, and "random whole groups" cuts as many
   whole child groups per pair as MINT did (the rest of its blocks at random), which tests the
   explanation "MINT cuts whole child groups off".
2. The per-pair design (``--study seeds``, ``--pair-seeds`` 3): every pair loses the same share q
   of its blocks, so the methods differ only in which blocks; with MINT with the published
   statistic (section 4e; published row draws) as a fourth rule.

Beside them the nulls of D (faithful, seed 0's rows): the permuted-child null ("is child group
j independent of the parent layer?") and the conditional null ("of parent group i given the
rest of the layer?", ``mi.dependency_null(null="conditional")``). ``--study both`` (the default
for cnn) runs table 1, then table 2, and ends with one line per q of table 1.

``--model vgg16_bn`` / ``resnet56`` (GPU) run the paper-scale grid, each stage resumable
after an interruption (state lives in --out; cached dependencies and results carry a hash of
the baseline's weights and of their settings in their file names, so a new baseline or
setting never reuses stale ones):
1. baseline: standard augmentation (random crop + flip), SGD + momentum, cosine schedule
   (checkpoint after every epoch; the finished weights are cached and reused);
2. activations (250 per class) and the dependency matrices of every adjacent pair of prunable
   layers, with per-layer group counts, in one call (batched Prim on the GPU when present);
3. a prune-fraction grid, each fine-tuned with masks fixed (one result file per fraction);
4. a table beside the paper's: params pruned, accuracy, memory, and the compacted network's
   real size and inference time.

    python benchmarks/reproduce_cifar10.py --model cnn                    # both tables, CPU
    python benchmarks/reproduce_cifar10.py --model cnn --study grid       # the grid, CPU
    python benchmarks/reproduce_cifar10.py --model vgg16_bn               # paper scale, GPU
    python benchmarks/reproduce_cifar10.py --model resnet56
    python benchmarks/reproduce_cifar10.py --model vgg16_bn --epochs 2 --train-per-class 500 \\
        --finetune-epochs 1 --samples-per-class 50 --test-per-class 100     # reduced, CPU

A bad flag, an --out that is a file or cannot be written, or CIFAR-10 not staged (and not
downloadable, or ``--offline``) is one line (where it looked and how to stage the data) with
exit status 2, before any work.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

from mint_teach import activations, data, mi, models, pipeline, pruning, train
from mint_teach._cli import OneLineParser, check_flag, check_out_folder, exit_on_user_error
from mint_teach._validation import check_count, check_fraction, check_number
from mint_teach.config import resolve_device, write_atomic
from seed_stats import mean_sd, sign_count, spread, verdict

PAPER = {
    "vgg16_bn": [{"pruned": 83.46, "acc": 93.43, "baseline": 93.98, "memory_mb": 9.020}],
    "resnet56": [{"pruned": 52.41, "acc": 93.47, "baseline": 92.55, "memory_mb": 1.552},
                 {"pruned": 57.01, "acc": 93.02, "baseline": 92.55, "memory_mb": 1.461}],
}
GRIDS = {"vgg16_bn": [0.6, 0.7, 0.8, 0.85, 0.9], "resnet56": [0.3, 0.4, 0.5, 0.6],
         "cnn": [0.3, 0.5, 0.7]}
STUDY_METHODS = ("MINT", "MINT (published mode)", "random blocks", "block magnitude",
                 "random whole groups")
GLOBAL_METHODS = ("MINT", "random blocks", "block magnitude", "random whole groups")
STAGES = (("acc_before_ft", "before FT"), ("acc_recalibrated", "BN recalibrated"),
          ("acc", "after FT"))


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


def _save_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=1)
    write_atomic(path, lambda f: f.write(text.encode()))


def parse_args() -> argparse.Namespace:
    ap = OneLineParser(description="MINT on CIFAR-10 (classroom CNN seed study; "
                                   "VGG16-BN and ResNet56 at paper scale)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="vgg16_bn", choices=["vgg16_bn", "resnet56", "cnn"])
    ap.add_argument("--study", default=None, choices=["both", "global", "seeds", "grid"],
                    help="global: MINT's global threshold and cap against matched controls; "
                         "seeds: the per-pair seed study; both: global then seeds; grid: the "
                         "prune-fraction grid (default: both for cnn, grid otherwise)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds of the global-threshold study")
    ap.add_argument("--pair-seeds", type=int, default=3, help="seeds of the per-pair study")
    ap.add_argument("--epochs", type=int, default=None, help="baseline epochs (default: recipe)")
    ap.add_argument("--train-per-class", type=int, default=None,
                    help="train on a class-balanced subset (reduced CPU runs)")
    ap.add_argument("--test-per-class", type=int, default=None,
                    help="evaluate on a class-balanced part of the test set (reduced CPU runs)")
    ap.add_argument("--samples-per-class", type=int, default=250)
    ap.add_argument("--units-per-group", type=int, default=16)
    ap.add_argument("--fractions", type=float, nargs="+", default=None,
                    help="prune fractions (default: the grid of the model; 0.5 0.7 in the study)")
    ap.add_argument("--max-pair-fraction", type=float, default=0.75)
    ap.add_argument("--finetune-epochs", type=int, default=None,
                    help="fine-tuning epochs (default: 40 in the grid, 2 in the study)")
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--finetune-per-class", type=int, default=None,
                    help="fine-tune on this many training images per class, a class-balanced "
                         "draw of each seed (seed study; default 1000, 0: the whole set)")
    ap.add_argument("--permutations", type=int, default=20,
                    help="permuted-child null draws of the study (seed 0; from 19 on, a "
                         "block can reach p < 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA)")
    ap.add_argument("--out", default=None, help="state and results (default runs/cifar10-MODEL)")
    ap.add_argument("--offline", action="store_true",
                    help="do not try to download CIFAR-10: stop at once when it is not staged")
    args = ap.parse_args()
    for flag, low in (("--seeds", 1), ("--pair-seeds", 1), ("--samples-per-class", 1), ("--units-per-group", 1),
                      ("--permutations", 1), ("--finetune-per-class", 0),
                      ("--finetune-epochs", 0), ("--epochs", 0), ("--train-per-class", 1),
                      ("--test-per-class", 1), ("--seed", 0)):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            check_flag(ap, flag, check_count, value, low=low)
    if args.fractions is not None:
        check_flag(ap, "--fractions", check_number, args.fractions, low=0.0, high=1.0,
                   low_open=True, high_open=True)
    check_flag(ap, "--max-pair-fraction", check_fraction, args.max_pair_fraction)
    check_flag(ap, "--finetune-lr", check_number, args.finetune_lr, low=0.0, low_open=True)
    args.device = check_flag(ap, "--device", lambda name, value: resolve_device(value),
                             args.device)
    args.out = check_out_folder(ap, "--out", args.out or f"runs/cifar10-{args.model}")
    args.study = args.study or ("both" if args.model == "cnn" else "grid")
    if args.study != "grid" and args.finetune_per_class is None:
        args.finetune_per_class = 1000
    args.finetune_per_class = args.finetune_per_class or None  # 0: the whole training set
    args.parser = ap  # for the data check in load()
    return args


def load(args):
    """The data sets and the baseline (pipeline.train_baseline: cached, resumable)."""
    clock = time.perf_counter()
    with exit_on_user_error(args.parser):  # not staged: one line, where it looked, how to stage
        train_set = data.load_dataset("cifar10", root=args.root, train=True,
                                      download=not args.offline)
        test_set = data.load_dataset("cifar10", root=args.root, train=False,
                                     download=not args.offline)
    print(f"data loaded in {time.perf_counter() - clock:.1f} s")
    if args.test_per_class:
        test_set = data.class_balanced_subset(test_set, args.test_per_class, seed=args.seed)
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.train_per_class:
        overrides["train_per_class"] = args.train_per_class
    cfg = pipeline.MintConfig(dataset="cifar10", model=args.model, seed=args.seed,
                              device=str(args.device), root=args.root, train=overrides,
                              out_dir=None)
    clock = time.perf_counter()
    model, base_acc, reused = pipeline.train_baseline(cfg, train_set, test_set)
    t_train = time.perf_counter() - clock
    how = "reused checkpoint" if reused else f"{t_train:.0f} s"
    print(f"baseline: {100 * base_acc:.2f}% ({how})")
    ft_set = train_set
    if args.train_per_class:
        ft_set = data.class_balanced_subset(train_set, args.train_per_class, seed=args.seed)
    # the grid fine-tunes with random crops and flips; the seed study as the classroom CNN's
    # baseline was trained, without (two epochs on a small draw: the cheaper, the more seeds)
    augment = None if args.study != "grid" else data.random_crop_flip
    return train_set, ft_set, test_set, model, base_acc, t_train, augment


def dependencies(model, train_set, pairs, groups, args, out: Path, tag: str, *, seed: int,
                 estimator: str = "faithful") -> dict:
    """D of every pair, cached in ``out`` under ``tag`` (baseline hash and settings)."""
    path = out / f"dependencies-{tag}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        print(f"dependencies ({estimator}, seed {seed}): reused {path}")
        return {pair: saved[_key(pair)] for pair in pairs}
    clock = time.perf_counter()
    if estimator == "published":  # two independent draws with replacement (section 4e)
        rows, child_rows = pipeline.published_rows(train_set, args.samples_per_class, seed=seed)
    else:
        rows = data.class_balanced_subset(train_set, args.samples_per_class, seed=seed)
        child_rows = None
    deps = pipeline.compute_dependencies(model, rows, pairs, groups, seed=seed,
                                         device=args.device, estimator=estimator,
                                         child_rows=child_rows, progress=False)
    write_atomic(path, lambda f: torch.save({_key(p): d for p, d in deps.items()}, f))
    print(f"dependencies ({estimator}, seed {seed}): {len(pairs)} pairs in "
          f"{time.perf_counter() - clock:.1f} s", flush=True)
    return deps


def grid(args, train_set, ft_set, test_set, model, base_acc, t_train, augment, out: Path):
    """The prune-fraction grid of one network, fine-tuned, beside the paper's rows."""
    fractions = args.fractions or GRIDS[args.model]
    epochs = 40 if args.finetune_epochs is None else args.finetune_epochs
    pairs = models.layer_pairs(model)
    groups = pipeline.pair_groups(model, pairs, pipeline.groups_per_layer(
        model, units_per_group=args.units_per_group))
    dep_id = (f"{_fingerprint(model)}-s{args.samples_per_class}-u{args.units_per_group}"
              f"-seed{args.seed}")
    clock = time.perf_counter()
    deps = dependencies(model, train_set, pairs, groups, args, out, dep_id, seed=args.seed)
    t_deps = time.perf_counter() - clock
    children = [c for _, c in pairs]
    example = next(iter(data.make_loader(test_set, batch_size=256)))[0].to(args.device)
    ms_base = pruning.inference_time(model.to(args.device), example)
    # everything else a result depends on; with the baseline's and the dependencies' ids in
    # each file name, a changed setting never picks up a stale result
    run_id = hashlib.sha1(json.dumps([epochs, args.finetune_lr, args.max_pair_fraction,
                                      args.train_per_class, args.test_per_class,
                                      augment is not None]).encode()).hexdigest()[:8]
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
        clock = time.perf_counter()
        r = pipeline.prune_and_finetune(
            model, masks, ft_set, test_set, epochs=epochs, lr=args.finetune_lr, layers=children,
            seed=args.seed, device=args.device, augment=augment, weight_decay=5e-4,
            desc=f"fine-tune q={q}", checkpoint=out / f"finetune-{tag}.state.pt")
        small = pruning.compact(r["model"]).to(args.device)
        row = {"fraction": q, "pruned_pct": r["pruned_pct"],
               "memory_mb": r["report"]["total"]["memory_mb"], "acc_before_ft": r["acc_before_ft"],
               "acc_recalibrated": r["acc_recalibrated"], "acc": r["acc"],
               "acc_compact": train.evaluate(small, test_set, device=args.device),
               "params": pruning.count_params(model), "params_compact": pruning.count_params(small),
               "size_mb": pruning.model_size_mb(model),
               "size_mb_compact": pruning.model_size_mb(small), "ms_batch256": ms_base,
               "ms_batch256_compact": pruning.inference_time(small, example),
               "finetune_s": time.perf_counter() - clock}
        _save_json(res_file, row)
        (out / f"finetune-{tag}.state.pt").unlink(missing_ok=True)
        rows_out.append(row)
    print_grid(args, rows_out, base_acc, len(test_set), t_train, t_deps)
    _save_json(out / "summary.json", {"model": args.model, "baseline_acc": base_acc,
                                      "device": str(args.device), "rows": rows_out})


def print_grid(args, rows_out, base_acc, n_test, t_train, t_deps) -> None:
    print(f"\nCIFAR-10 {args.model}: baseline {100 * base_acc:.2f}% on {args.device} on "
          f"{n_test:,} test images (train {t_train:.0f} s, dependencies {t_deps:.1f} s)")
    print(f"{'':<14}{'pruned':>8}{'acc':>8}{'before FT':>10}{'(BN recal.)':>12}{'memory Mb':>10}"
          f"{'params (compact)':>22}{'MB (compact)':>16}{'ms/256 (compact)':>20}")
    for p in PAPER.get(args.model, []):
        print(f"{'paper':<14}{p['pruned']:>7.2f}%{p['acc']:>7.2f}%{'':>22}{p['memory_mb']:>10.3f}")
    for r in rows_out:
        recal = r.get("acc_recalibrated")
        print(f"{'q=' + format(r['fraction'], '.3f'):<14}{r['pruned_pct']:>7.2f}%"
              f"{100 * r['acc']:>7.2f}%{100 * r['acc_before_ft']:>9.2f}%"
              f"{100 * (recal if recal is not None else float('nan')):>11.2f}%"
              f"{r['memory_mb']:>10.3f}{r['params']:>11,} ({r['params_compact']:,})"
              f"{r['size_mb']:>8.2f} ({r['size_mb_compact']:.2f})"
              f"{r['ms_batch256']:>10.1f} ({r['ms_batch256_compact']:.1f})")


def null_summary(model, train_set, pairs, groups, deps, args) -> list[str]:
    """Per pair and null: mean D, the null's mean and the share of blocks with p < 0.05
    (faithful estimator, seed 0's rows; 5 % are expected by chance alone). The permuted-child
    null asks whether child group j depends on the parent layer at all; the conditional null
    whether it depends on parent group i given the rest of the layer."""
    rows = data.class_balanced_subset(train_set, args.samples_per_class, seed=args.seed)
    acts, _ = activations.collect(model, rows, list(dict.fromkeys(
        n for pair in pairs for n in pair)), device=args.device, progress=False)
    lines = []
    for parent, child in pairs:
        g_c, g_p = groups[(parent, child)]
        d = deps[(parent, child)]
        for kind, label in (("child", "permuted-child"), ("conditional", "conditional")):
            null = mi.dependency_null(acts[parent], acts[child], parent_groups=g_p,
                                      child_groups=g_c, permutations=args.permutations,
                                      seed=args.seed, device=args.device, progress=False,
                                      null=kind)
            p = mi.block_pvalues(d, null)
            lines.append(f"  {parent}->{child} ({g_c} x {g_p} groups), {label} null: mean D "
                         f"{d.mean():.4f}, null mean {null.mean():.4f}, blocks with p < 0.05: "
                         f"{(p < 0.05).float().mean().item():.1%}")
    return lines


def whole_group_masks(mint: dict, seed: int) -> dict:
    """Random masks that cut, in every pair, as many whole child groups as ``mint`` cut (the
    groups chosen at random) and the rest of MINT's blocks at random among the other groups'
    blocks; each pair draws from its own stream (seed and pair position)."""
    out = {}
    for k, (pair, keep) in enumerate(mint.items()):
        keep = torch.as_tensor(keep) != 0
        g_c, g_p = keep.shape
        whole = int((~keep).all(dim=1).sum())
        rest = int((~keep).sum()) - whole * g_p
        generator = torch.Generator().manual_seed(seed * 100003 + k)
        new = torch.ones(g_c, g_p, dtype=torch.bool)
        rows = torch.randperm(g_c, generator=generator)
        new[rows[:whole]] = False
        others = torch.nonzero(new.flatten()).flatten()
        new.view(-1)[others[torch.randperm(len(others), generator=generator)[:rest]]] = False
        out[pair] = new
    return out


def per_pair_masks(deps: dict, q: float) -> dict:
    """Every pair loses round(q x its blocks), its lowest D (section 5's rule, one pair at a
    time). One threshold for the whole network would let the scale of D, which differs from
    pair to pair, decide how much each layer loses, so methods would differ in which layers
    they cut as well as in which blocks; per pair, all four cut the same weights per layer."""
    masks = {}
    for pair, d in deps.items():
        masks.update(pruning.masks_from_dependencies({pair: d}, prune_fraction=q,
                                                     max_pair_fraction=1.0))
    return masks


def matched_controls(model, mint: dict, seed: int) -> dict:
    """The controls cut as many blocks as MINT's masks in every pair: random blocks, block
    magnitude, and random masks with MINT's number of whole child groups cut off."""
    return {"random blocks": pipeline.same_share_masks(model, mint, "random", seed=seed),
            "block magnitude": pipeline.same_share_masks(model, mint, "magnitude"),
            "random whole groups": whole_group_masks(mint, seed)}


def run_rules(rules: dict, runs: dict, q: float, args, model, seed_ft, test_set, children,
              augment, epochs: int, seed: int, out: Path, tag: str) -> None:
    """Fine-tune and measure every rule's masks; append each row to ``runs[(method, q)]``."""
    for method, masks in rules.items():
        row = study_run(args, model, masks, seed_ft, test_set, children, augment, epochs, seed,
                        method, out, tag)
        runs[(method, q)].append({**row, **whole_groups(masks)})


def _study_setup(args, model, design: list):
    """What both studies share: the fractions, fine-tuning epochs, layer pairs and groups, and
    the ids that key cached dependencies (``base_id``) and results (``run_id``, from everything
    else a result depends on, ``design`` included)."""
    fractions = args.fractions or [0.5, 0.7]
    epochs = 2 if args.finetune_epochs is None else args.finetune_epochs
    pairs = models.layer_pairs(model)
    groups = pipeline.pair_groups(model, pairs, pipeline.groups_per_layer(
        model, units_per_group=args.units_per_group))
    children = [c for _, c in pairs]
    base_id = f"{_fingerprint(model)}-s{args.samples_per_class}-u{args.units_per_group}"
    run_id = hashlib.sha1(json.dumps([epochs, args.finetune_lr, *design, args.train_per_class,
                                      args.test_per_class, args.finetune_per_class]
                                     ).encode()).hexdigest()[:8]
    return fractions, epochs, pairs, groups, children, base_id, run_id


def study(args, train_set, ft_set, test_set, model, base_acc, augment, out: Path) -> None:
    """The classroom CNN's report: four methods x seeds x three accuracies at each fraction."""
    fractions, epochs, pairs, groups, children, base_id, run_id = _study_setup(
        args, model, ["per-pair"])
    on = f"{args.finetune_per_class} per class of the" if args.finetune_per_class else "all"
    print(f"\n== seed study: q = {', '.join(map(str, fractions))} of every pair's blocks, "
          f"{epochs} fine-tuning epoch(s) at lr {args.finetune_lr} on {on} training images, "
          f"{args.pair_seeds} seeds, "
          f"{sum(g_c * g_p for g_c, g_p in groups.values())} blocks in {len(pairs)} pairs ==",
          flush=True)
    runs = {(m, q): [] for q in fractions for m in STUDY_METHODS}
    deps0 = None
    for seed in range(args.seed, args.seed + args.pair_seeds):
        faithful = dependencies(model, train_set, pairs, groups, args, out,
                                f"{base_id}-seed{seed}", seed=seed)
        published = dependencies(model, train_set, pairs, groups, args, out,
                                 f"{base_id}-published-seed{seed}", seed=seed,
                                 estimator="published")
        deps0 = faithful if deps0 is None else deps0
        seed_ft = ft_set if not args.finetune_per_class else data.class_balanced_subset(
            ft_set, args.finetune_per_class, seed=seed)
        for q in fractions:
            mint = per_pair_masks(faithful, q)
            rules = {"MINT": mint, "MINT (published mode)": per_pair_masks(published, q),
                     **matched_controls(model, mint, seed)}
            run_rules(rules, runs, q, args, model, seed_ft, test_set, children, augment,
                      epochs, seed, out, f"{base_id}-{run_id}-q{q:.3f}-seed{seed}")
    report = []
    for q in fractions:
        report += study_report({m: runs[(m, q)] for m in STUDY_METHODS}, base_acc, q, epochs,
                               tuple(map(sum, zip(*groups.values()))))
    report += ["nulls of D (faithful, seed 0's rows, "
               f"{args.permutations} permutations):"]
    report += null_summary(model, train_set, pairs, groups, deps0, args)
    report += [summary_line(q, {m: runs[(m, q)] for m in STUDY_METHODS}) for q in fractions]
    print("\n" + "\n".join(report))
    return report
    _save_json(out / f"study-{base_id}-{run_id}.json",
               {"model": args.model, "baseline_acc": base_acc, "fractions": fractions,
                "finetune_epochs": epochs, "report": report,
                "runs": {f"{m} q={q}": rows for (m, q), rows in runs.items()}})


def study_run(args, model, masks, ft_set, test_set, children, augment, epochs, seed, method,
              out: Path, tag: str) -> dict:
    """One method and seed, fine-tuned; its result file makes a rerun resume here."""
    slug = method.split(" (")[0].replace(" ", "-") + ("-published" if "published" in method else "")
    path = out / f"study-{tag}-{slug}.json"
    if path.is_file():
        return json.loads(path.read_text())
    clock = time.perf_counter()
    state = out / f"study-{tag}-{slug}.state.pt"
    r = pipeline.prune_and_finetune(model, masks, ft_set, test_set, epochs=epochs,
                                    lr=args.finetune_lr, layers=children, seed=seed,
                                    device=args.device, augment=augment, weight_decay=5e-4,
                                    progress=False, checkpoint=state)
    row = {k: r[k] for k in ("acc_before_ft", "acc_recalibrated", "acc", "pruned_pct")}
    row["seconds"] = time.perf_counter() - clock
    _save_json(path, row)
    state.unlink(missing_ok=True)
    print(f"  {tag.split('-')[-2]} seed {seed} {method:<22} pruned {row['pruned_pct']:.2f}%: "
          f"before FT {100 * row['acc_before_ft']:.2f}%, BN recalibrated "
          f"{100 * row['acc_recalibrated']:.2f}%, after FT {100 * row['acc']:.2f}% "
          f"({row['seconds']:.0f} s)", flush=True)
    return row


def whole_groups(masks: dict) -> dict:
    """How a mask's cuts fall: parent groups cut from every child group (their units die) and
    child groups cut off from every parent group (they keep only their bias)."""
    keeps = [torch.as_tensor(k) != 0 for k in masks.values()]
    return {"parents_cut": sum(int((~k).all(dim=0).sum()) for k in keeps),
            "children_cut": sum(int((~k).all(dim=1).sum()) for k in keeps)}


def study_report(runs: dict, base_acc: float, q: float, epochs: int,
                 n_groups: tuple[int, int], scope: str = "every pair's") -> list[str]:
    """The table at one fraction (mean +- sd over seeds) and the tests against random blocks."""
    lines = [f"CIFAR-10 classroom CNN, baseline {100 * base_acc:.2f}%, q = {q} of {scope} "
             f"blocks ({runs['MINT'][0]['pruned_pct']:.2f}% of the weights), "
             f"{len(runs['MINT'])} seeds, {epochs} fine-tuning epoch(s), test accuracy:",
             f"  {'method':<24}" + "".join(f"{label:>20}" for _, label in STAGES)]
    for method, rows in runs.items():
        cells = []
        for key, _ in STAGES:
            cells.append(f"{spread([100 * r[key] for r in rows], unit='', width=12):>20}")
        lines.append(f"  {method:<24}" + "".join(cells))
    lines.append(f"  whole groups cut, mean over seeds (of {n_groups[1]} parent and "
                 f"{n_groups[0]} child groups): " + "; ".join(
                     f"{m} {mean_sd([r['parents_cut'] for r in rows])[0]:.1f} parent / "
                     f"{mean_sd([r['children_cut'] for r in rows])[0]:.1f} child"
                     for m, rows in runs.items()))
    for method in [m for m in runs if m != "random blocks"]:
        for key, label in STAGES:
            a = [100 * r[key] for r in runs[method]]
            b = [100 * r[key] for r in runs["random blocks"]]
            lines.append(f"  {method} vs random blocks, {label}: {verdict(a, b)}")
    return lines


def summary_line(q: float, runs: dict) -> str:
    """The study's last line(s): after fine-tuning, mean +- sd, and MINT against random."""
    acc = {m: spread([100 * r["acc"] for r in rows], sep="+-") for m, rows in runs.items()}
    short = {"MINT": "MINT", "MINT (published mode)": "published", "random blocks": "random",
             "block magnitude": "magnitude", "random whole groups": "whole-groups"}
    cells = " ".join(f"{short[m]} {a}" for m, a in acc.items())
    test = verdict(*[[100 * r["acc"] for r in runs[m]] for m in ("MINT", "random blocks")])
    return (f"cifar10-cnn clean protocol: pruned {runs['MINT'][0]['pruned_pct']:.2f}% {cells} "
            f"({len(runs['MINT'])} seeds; MINT vs random: {test})")


def global_summary_line(q: float, runs: dict) -> str:
    """One line per q of the global-threshold study (after fine-tuning, paired by seed)."""
    acc = {m: spread([100 * r["acc"] for r in rows], sep="+-") for m, rows in runs.items()}
    test = verdict(*[[100 * r["acc"] for r in runs[m]] for m in ("MINT", "random blocks")])
    return (f"cifar10-cnn global threshold: pruned {runs['MINT'][0]['pruned_pct']:.2f}% "
            f"MINT {acc['MINT']} random {acc['random blocks']} magnitude "
            f"{acc['block magnitude']} ({len(runs['MINT'])} seeds, paired; MINT vs random: "
            f"{test}; random whole groups {acc['random whole groups']})")


def global_study(args, train_set, ft_set, test_set, model, base_acc, augment,
                 out: Path) -> list[str]:
    """MINT as published (one global threshold, per-pair cap) against controls matched to the
    blocks MINT cut in every pair, over ``args.seeds`` paired seeds; returns the q lines."""
    fractions, epochs, pairs, groups, children, base_id, run_id = _study_setup(
        args, model, ["global", args.max_pair_fraction])
    print(f"\n== global threshold: q = {', '.join(map(str, fractions))} of all blocks, one "
          f"threshold, cap {args.max_pair_fraction} per pair, {epochs} fine-tuning epoch(s), "
          f"{args.seeds} paired seeds ==", flush=True)
    runs = {(m, q): [] for q in fractions for m in GLOBAL_METHODS}
    for seed in range(args.seed, args.seed + args.seeds):
        deps = dependencies(model, train_set, pairs, groups, args, out,
                            f"{base_id}-seed{seed}", seed=seed)
        seed_ft = ft_set if not args.finetune_per_class else data.class_balanced_subset(
            ft_set, args.finetune_per_class, seed=seed)
        for q in fractions:
            mint = pruning.masks_from_dependencies(deps, prune_fraction=q,
                                                   max_pair_fraction=args.max_pair_fraction)
            rules = {"MINT": mint, **matched_controls(model, mint, seed)}
            run_rules(rules, runs, q, args, model, seed_ft, test_set, children, augment,
                      epochs, seed, out, f"{base_id}-{run_id}-q{q:.3f}-seed{seed}")
    report = []
    for q in fractions:
        report += study_report({m: runs[(m, q)] for m in GLOBAL_METHODS}, base_acc, q, epochs,
                               tuple(map(sum, zip(*groups.values()))),
                               scope=f"all (one threshold, cap {args.max_pair_fraction})")
    mint_vs_random = [([100 * r[k] for r in runs[("MINT", q)]],
                       [100 * r[k] for r in runs[("random blocks", q)]])
                      for q in fractions for k, _ in STAGES]
    report.append(f"  MINT minus random blocks over every seed, q and stage: "
                  f"{sign_count(mint_vs_random)}")
    lines = [global_summary_line(q, {m: runs[(m, q)] for m in GLOBAL_METHODS})
             for q in fractions]
    print("\n" + "\n".join(report + lines))
    _save_json(out / f"global-{base_id}-{run_id}.json",
               {"model": args.model, "baseline_acc": base_acc, "fractions": fractions,
                "finetune_epochs": epochs, "report": report + lines,
                "runs": {f"{m} q={q}": rows for (m, q), rows in runs.items()}})
    return lines


def main() -> None:
    args = parse_args()
    out = args.out
    print(f"MINT on CIFAR-10 / {args.model} ({args.study}), device {args.device}, state in {out}/")
    start = time.perf_counter()
    train_set, ft_set, test_set, model, base_acc, t_train, augment = load(args)
    if args.study in ("global", "both"):
        lines = global_study(args, train_set, ft_set, test_set, model, base_acc, augment, out)
        if args.study == "both":
            study(args, train_set, ft_set, test_set, model, base_acc, augment, out)
            print("\n" + "\n".join(lines))  # the global-threshold lines close the report
    elif args.study == "seeds":
        study(args, train_set, ft_set, test_set, model, base_acc, augment, out)
    else:
        grid(args, train_set, ft_set, test_set, model, base_acc, t_train, augment, out)
    print(f"total time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
