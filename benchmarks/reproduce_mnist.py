"""The paper's MNIST row (MLP 784-500-300-10, layer 2: fc1 -> fc2) under two protocols.

docs/method.md sections 4e and 7. The paper reports 96.20 % of layer 2's weights pruned at
98.47 % test accuracy (baseline 98.59 %). The published implementation got there with a
statistic that does not see the child layer (section 4e) and with the best test-set epoch.
This script measures both protocols from one run and says which differences exceed seed noise.

``--protocol paper`` (as published): the published statistic (``estimator="published"``: crossed
bootstrap indices, the published cross-edge count, parent and child rows drawn independently
per class with replacement), 650 samples per class, 250 parent x 100 child groups, per-layer cap
0.99 and the threshold taken as a quantile of the *unique* D values (blocks with D <= it are
pruned), fine-tuning for 30 epochs (lr 0.1, x0.1 at epochs 10 and 20, batch 256) with the test
set evaluated after every epoch; both the best test-set epoch (as published) and the last epoch
are reported. Seed 0 runs every method; MINT (published mode) and random blocks run over
``--paper-seeds`` seeds (rows, split, random blocks and fine-tuning order), and the paper line
gives their means. The step schedule runs as three 10-epoch stages at a constant rate, so SGD's
momentum restarts at each stage. The published statistic runs as it does with today's SciPy
(``published``); with ``--with-2020`` also as it ran in 2020 (``published-2020``: the count
read off the tree as SciPy < 1.11 stored it, section 4c), which gives the third line. That
statistic rebuilds every tree from its full distance matrix (an argsort of 18.8 M entries for
each of the 25,000 trees of 4,333 points at the paper's settings): the script measures one tree
and prints the estimate before it starts.

``--protocol clean`` (default): the method as described (faithful estimator), 250 samples per
class and 20 x 20 groups (the paper's stated MNIST setting), the blocks of the 400-block grid
nearest the paper's two figures (96.25 % and 88.50 %), a validation split of 5,000 images carved
from the training set (fine-tuning never sees it; it is the only data any selection could use,
and no selection is made: the last epoch is reported), a short schedule shared by every method
(``--clean-epochs``, cosine from lr 0.05, batch 256), over ``--seeds`` seeds on each of
``--networks`` baselines (training seeds 0, 1, ...). The seed changes the activation rows, the
validation split, the random blocks and the fine-tuning order; the network changes the trained
weights. Runs of one (network, seed) are paired: MINT vs random blocks is tested with the
paired t-test beside Welch's, over networks x seeds, with the count of same-sign differences.
The null rule cuts first the blocks with the highest conditional-null p-value (least evidence
that child group j depends on parent group i given the rest; ``--null-permutations``), ties
by lower D.

Methods (every protocol, one schedule each): MINT; MINT with the published statistic;
unconditional block GMI (Z left out: a variant, not the paper's method); random blocks; block
magnitude (mean |w| per block); unstructured magnitude (single weights, the same share). Block
methods prune the same number of blocks; in the paper protocol the D-based methods use the
published unique-value rule, whose share moves in steps, and the others match the share the
published-mode mask reached.

The clean protocol also reports, for seed 0 of network 0, whether D is more than noise: the
permuted-child and the conditional null (``mi.dependency_null``: the share of blocks with
p < 0.05) and D's reliability (``mi.reliability``, with the Spearman-Brown figure), for the
faithful and the published statistic.

The last two lines are the protocol summaries. Usage:

    python benchmarks/reproduce_mnist.py [--protocol paper|clean|both] [--seeds 3]
        [--networks 3] [--paper-seeds 3] [--with-2020] [--clean-epochs 3] [--root DATA]
        [--reuse-baseline] [--offline]

A bad flag, or MNIST not staged (and not downloadable, or ``--offline``), is one line that
names where it looked and how to stage the data, with exit status 2, before any work.
"""
from __future__ import annotations

import copy
import os
import time

import torch
from mint_teach import activations, data, mi, pipeline, pruning, train
from mint_teach._cli import OneLineParser, check_flag, exit_on_user_error
from mint_teach._validation import check_count
from mint_teach.pipeline import MintConfig
from seed_stats import mean_sd, sign_count, spread, verdict

PAIR = ("fc1", "fc2")
PAPER = {"pruned": 96.20, "acc": 98.47, "baseline": 98.59}
PAPER_20_GROUPS = 88.48  # the paper's 20-group, 250-sample figure (its "Experiment 2")
PAPER_SETUP = {"per_class": 650, "groups": (100, 250), "cap": 0.99, "epochs": 30,
               "stages": (0.1, 0.01, 0.001), "batch": 256}
CLEAN_SETUP = {"per_class": 250, "groups": (20, 20), "validation": 5000, "lr": 0.05,
               "batch": 256}
WEIGHT_DECAY = 1e-4  # the published fine-tuning default
METHODS = ("MINT", "MINT published mode", "block GMI (unconditional; variant)",
           "null rule (conditional p)", "random blocks", "block magnitude",
           "unstructured magnitude")
ESTIMATOR = {"MINT": "faithful", "MINT published mode": "published",
             "MINT published-2020 mode": "published-2020",
             "block GMI (unconditional; variant)": "unconditional"}
NULL_PERMUTATIONS = {"value": 9}  # the null rule's permutations (--null-permutations)


def layer_activations(model, train_set, estimator: str, per_class: int, seed: int):
    """(fc1, fc2) activations; for the published statistic on rows drawn as published."""
    if estimator in ("published", "published-2020"):
        rows, child_rows = pipeline.published_rows(train_set, per_class, seed=seed)
    else:
        rows = child_rows = data.class_balanced_subset(train_set, per_class, seed=seed)
    parent = activations.collect(model, rows, [PAIR[0]], progress=False)[0][PAIR[0]]
    return parent, activations.collect(model, child_rows, [PAIR[1]], progress=False)[0][PAIR[1]]


def dependency(model, train_set, estimator: str, per_class: int, groups: tuple[int, int],
               seed: int) -> torch.Tensor:
    """D for fc1 -> fc2 with ``groups = (child groups, parent groups)``."""
    parent, child = layer_activations(model, train_set, estimator, per_class, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # the matrix spreads whole trees over cores
    try:
        return mi.dependency_matrix(parent, child, parent_groups=groups[1],
                                    child_groups=groups[0], seed=seed, estimator=estimator,
                                    progress=False)
    finally:
        torch.set_num_threads(threads)


def published_rule(d: torch.Tensor, target: float, cap: float) -> torch.Tensor:
    """Keep-mask by the published threshold: a quantile of the unique values, prune D <= it.

    The quantile is chosen so that the pruned share of blocks is the nearest to ``target``;
    a share at or above ``cap`` falls back to the cap's quantile, as published.
    """
    values = d.flatten().double()
    unique = torch.unique(values)  # sorted
    shares = torch.searchsorted(torch.sort(values).values, unique, right=True) / values.numel()
    capped = unique[min(round(cap * len(unique)), len(unique) - 1)]
    k = int((shares - target).abs().argmin())
    cutoff = unique[k] if shares[k] < cap else capped
    return d > cutoff


def masks_for(method: str, model, deps: dict, target: float, groups, seed: int,
              rule: str) -> dict:
    """The mask of ``method`` pruning ``target`` (a fraction) of fc2's blocks or weights."""
    if method in ESTIMATOR:
        d = deps[method]
        if rule == "published":
            return {PAIR: published_rule(d, target, PAPER_SETUP["cap"])}
        return pruning.masks_from_dependencies({PAIR: d}, prune_fraction=target,
                                               max_pair_fraction=1.0)
    common = dict(prune_fraction=target, max_pair_fraction=1.0)
    if method == "null rule (conditional p)":  # highest p first, then lowest D
        p, d = deps["p"], deps["MINT"]
        score = -p + 1e-3 * (d - d.min()) / (d.max() - d.min() + 1e-12)
        return pruning.masks_from_dependencies({PAIR: score}, **common)
    if method == "random blocks":
        return pruning.random_masks(model, [PAIR], groups={PAIR: groups}, seed=seed, **common)
    if method == "block magnitude":
        return pruning.magnitude_masks(model, [PAIR], granularity="block",
                                       groups={PAIR: groups}, **common)
    return pruning.magnitude_masks(model, [PAIR], granularity="unstructured", **common)


def finetune(model, masks: dict, fit_set, eval_set, test_set, *, stages, epochs: int,
             seed: int, desc: str) -> dict:
    """Prune a copy of ``model``, fine-tune it with the masks fixed, evaluate every epoch.

    ``stages``: learning rates of equal constant-rate stages (the step schedule), or None for
    one cosine schedule from ``CLEAN_SETUP["lr"]``. ``eval_set`` is evaluated after every
    epoch; the test set once at the end. Accuracies in percent.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread, no cores waiting for each other
    try:
        return _finetune(model, masks, fit_set, eval_set, test_set, stages=stages,
                         epochs=epochs, seed=seed, desc=desc)
    finally:
        torch.set_num_threads(threads)


def _finetune(model, masks: dict, fit_set, eval_set, test_set, *, stages, epochs: int,
              seed: int, desc: str) -> dict:
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    before = 100 * train.evaluate(pruned, test_set)
    runs = [(lr, epochs // len(stages), "constant") for lr in stages] if stages else \
        [(CLEAN_SETUP["lr"], epochs, "cosine")]
    per_epoch = []
    for k, (lr, n, schedule) in enumerate(runs):
        history = train.fit(pruned, fit_set, epochs=n, lr=lr, weight_decay=WEIGHT_DECAY,
                            batch_size=PAPER_SETUP["batch"], schedule=schedule,
                            eval_data=eval_set, seed=seed + 1000 * k, progress=False, desc=desc)
        per_epoch += [100 * a for a in history["test_acc"]]
    report = pruning.sparsity_report(pruned, layers=[PAIR[1]])
    last = 100 * train.evaluate(pruned, test_set)
    return {"before": before, "per_epoch": per_epoch, "last": last,
            "pruned": report["total"]["pruned_pct"]}


def paper_protocol(model, train_set, test_set, base_acc: float, seeds: int = 3,
                   with_2020: bool = False) -> dict:
    """The published protocol at the paper's 96.20 %: best and last test epoch.

    Seed 0 runs every method; seeds 1 .. ``seeds - 1`` run MINT (published mode) and random
    blocks matched to its share (and, ``with_2020``, the published-2020 mode and random blocks
    matched to its share). Returns ``{method: [result of each seed run]}``.
    """
    setup, groups = PAPER_SETUP, PAPER_SETUP["groups"]
    print(f"\n== paper protocol: {setup['per_class']} per class, {groups[1]} x {groups[0]} "
          f"groups, cap {setup['cap']}, unique-value quantile, 30 epochs, best test epoch, "
          f"{seeds} seed(s) for MINT published mode and random blocks ==")
    target = PAPER["pruned"] / 100
    if with_2020:
        estimate_2020(model, train_set)
    results: dict = {}
    for seed in range(seeds):
        deps = {}

        def need(method: str) -> None:  # D of a D-based method, computed when first needed
            if method in ESTIMATOR and method not in deps:
                clock = time.perf_counter()
                deps[method] = dependency(model, train_set, ESTIMATOR[method],
                                          setup["per_class"], groups, seed)
                print(f"  seed {seed} D {ESTIMATOR[method]:<14} ({groups[1]} x {groups[0]} "
                      f"groups, {10 * setup['per_class']} rows): "
                      f"{time.perf_counter() - clock:.0f} s, mean {deps[method].mean():.4f}",
                      flush=True)

        shares = {}
        published_modes = ["MINT published mode"] + (["MINT published-2020 mode"]
                                                      if with_2020 else [])
        for mode in published_modes:
            need(mode)
            mask = masks_for(mode, model, deps, target, groups, seed, "published")
            shares[mode] = 1.0 - mask[PAIR].float().mean().item()  # the share reached
        order = [("MINT published mode", target), ("random blocks", shares["MINT published mode"])]
        if with_2020:
            order += [("MINT published-2020 mode", target),
                      ("random blocks (2020 share)", shares["MINT published-2020 mode"])]
        if seed == 0:
            order += [("MINT", target), ("block magnitude", shares["MINT published mode"]),
                      ("unstructured magnitude", shares["MINT published mode"]),
                      ("block GMI (unconditional; variant)", target)]
        for method, rule_target in order:
            need(method)
            rule = method.replace(" (2020 share)", "")
            masks = masks_for(rule, model, deps, rule_target, groups, seed, "published")
            clock = time.perf_counter()
            r = finetune(model, masks, train_set, test_set, test_set, stages=setup["stages"],
                         epochs=setup["epochs"], seed=seed, desc=method)
            results.setdefault(method, []).append(r)
            best = max(range(len(r["per_epoch"])), key=lambda e: r["per_epoch"][e])
            print(f"  seed {seed} {method:<36} pruned {r['pruned']:6.2f}%  before FT "
                  f"{r['before']:6.2f}%  best {r['per_epoch'][best]:.2f}% (epoch {best + 1})  "
                  f"last {r['last']:.2f}%  ({time.perf_counter() - clock:.0f} s)", flush=True)
    if seeds > 1:
        print(f"\n  over {seeds} seeds (mean +- sd):")
        for method in [m for m in results if len(results[m]) > 1]:
            rs = results[method]
            cells = [mean_sd([r[k] for r in rs]) for k in ("before", "last")]
            best = mean_sd([max(r["per_epoch"]) for r in rs])
            print(f"    {method:<36} before FT {cells[0][0]:.2f} +- {cells[0][1]:.2f}%  best "
                  f"epoch {best[0]:.2f} +- {best[1]:.2f}%  last epoch {cells[1][0]:.2f} +- "
                  f"{cells[1][1]:.2f}%")
        for mode, rnd in (("MINT published mode", "random blocks"),
                          ("MINT published-2020 mode", "random blocks (2020 share)")):
            if mode in results:
                for label, key in (("best epoch", None), ("last epoch", "last")):
                    a = [max(r["per_epoch"]) if key is None else r[key] for r in results[mode]]
                    b = [max(r["per_epoch"]) if key is None else r[key] for r in results[rnd]]
                    print(f"    {mode} vs random blocks, {label}: {verdict(a, b)}")
    print(f"  baseline {base_acc:.2f}%; paper: {PAPER['pruned']}% pruned at {PAPER['acc']}%")
    return results


def estimate_2020(model, train_set) -> None:
    """Time one published-2020 tree at the paper's row count and print the whole D's cost."""
    from mint_teach import _legacy_tree

    setup, groups = PAPER_SETUP, PAPER_SETUP["groups"]
    rows = 10 * setup["per_class"]
    points = rows - 2 * rows // 3 + (2 * rows // 3) // 2  # |A| + |C| of the published split
    parent, child = layer_activations(model, train_set, "published", setup["per_class"], 0)
    cloud = torch.cat([parent, child], dim=1)[:points].double()
    sq = (cloud * cloud).sum(1)
    dist = (sq[:, None] + sq[None] - 2 * cloud @ cloud.T).clamp(min=0).sqrt().numpy()
    _legacy_tree.legacy_tree_entries(dist[:20, :20])  # compile first
    clock = time.perf_counter()
    _legacy_tree.legacy_tree_entries(dist)
    per_tree = time.perf_counter() - clock
    trees = groups[0] * groups[1]
    print(f"  published-2020: one tree of {points:,} points in {per_tree:.1f} s; D of "
          f"{trees:,} trees about {per_tree * trees / 3600 / max(1, os.cpu_count() or 1):.1f} h "
          f"per seed on {os.cpu_count()} core(s)", flush=True)


def carve_validation(train_set, seed: int):
    """(fine-tuning set, validation set): ``CLEAN_SETUP['validation']`` random training images
    held out; the fine-tuning set is the rest."""
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))
    held = CLEAN_SETUP["validation"]
    subset = torch.utils.data.Subset
    return subset(train_set, order[held:].tolist()), subset(train_set, order[:held].tolist())


def clean_seed(model, train_set, test_set, seed: int, epochs: int, network: int = 0) -> dict:
    """Every method at both grid sparsities for one seed; {(method, target): result}."""
    groups, per_class = CLEAN_SETUP["groups"], CLEAN_SETUP["per_class"]
    fit_set, val_set = carve_validation(train_set, seed)
    deps = {m: dependency(model, fit_set, e, per_class, groups, seed) for m, e in ESTIMATOR.items()
            if e != "published-2020"}
    deps["p"] = null_pvalues(model, fit_set, deps["MINT"], seed)
    blocks = groups[0] * groups[1]
    out = {}
    for paper_share in (PAPER["pruned"], PAPER_20_GROUPS):
        target = round(paper_share / 100 * blocks) / blocks  # the nearest grid point
        for method in METHODS:
            masks = masks_for(method, model, deps, target, groups, seed, "exact")
            out[(method, paper_share)] = finetune(model, masks, fit_set, val_set, test_set,
                                                  stages=None, epochs=epochs, seed=seed,
                                                  desc=method)
        print(f"  network {network} seed {seed}, {100 * target:.2f}%: " + ", ".join(
            f"{m.split(' (')[0]} {out[(m, paper_share)]['last']:.2f}" for m in METHODS),
            flush=True)
    if seed == 0 and network == 0:
        noise_checks(model, fit_set, seed)
    return out


def null_pvalues(model, fit_set, d: torch.Tensor, seed: int) -> torch.Tensor:
    """Conditional-null p-values of the faithful D (the null rule's ranking)."""
    groups, per_class = CLEAN_SETUP["groups"], CLEAN_SETUP["per_class"]
    parent, child = layer_activations(model, fit_set, "faithful", per_class, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        null = mi.dependency_null(parent, child, parent_groups=groups[1], child_groups=groups[0],
                                  permutations=NULL_PERMUTATIONS["value"], seed=seed,
                                  progress=False, null="conditional")
    finally:
        torch.set_num_threads(threads)
    return mi.block_pvalues(d, null)


def noise_checks(model, fit_set, seed: int) -> None:
    """Is D more than noise? Both nulls and reliability, faithful and published."""
    groups, per_class = CLEAN_SETUP["groups"], CLEAN_SETUP["per_class"]
    for estimator in ("faithful", "published"):
        parent, child = layer_activations(model, fit_set, estimator, per_class, seed)
        kw = dict(parent_groups=groups[1], child_groups=groups[0], seed=seed, progress=False,
                  estimator=estimator)
        d = mi.dependency_matrix(parent, child, **kw)
        cells = []
        for kind, label in (("child", "permuted-child"), ("conditional", "conditional")):
            null = mi.dependency_null(parent, child, permutations=20, null=kind, **kw)
            p = mi.block_pvalues(d, null)
            cells.append(f"{label} null mean {null.mean():.4f}, blocks with p < 0.05: "
                         f"{(p < 0.05).float().mean().item():.1%}")
        rel = mi.reliability(parent, child, **kw)
        print(f"  D {estimator} (seed {seed}, 20 x 20, {len(parent)} rows): mean {d.mean():.4f}; "
              + "; ".join(cells) + f" (5% expected by chance); reliability: split-to-split "
              f"{rel['split_to_split']:.2f}, disjoint rows {rel['disjoint_rows']:.2f} "
              f"(Spearman-Brown, all rows: {rel['disjoint_rows_full']:.2f}), within column "
              f"{rel['within_column']:.2f}", flush=True)


def clean_protocol(networks: list, train_set, test_set, seeds: int, epochs: int) -> dict:
    """The clean protocol over ``networks`` (a list of (model, baseline accuracy)) x seeds;
    ``runs[(method, share)]`` lists the results network by network, seed by seed."""
    print(f"\n== clean protocol: faithful estimator, {CLEAN_SETUP['per_class']} per class, 20 x 20 "
          f"groups, validation split of {CLEAN_SETUP['validation']}, {epochs} epochs (cosine "
          f"from {CLEAN_SETUP['lr']}), last epoch, {len(networks)} network(s) x {seeds} seeds ==")
    runs = {}
    for k, (model, _) in enumerate(networks):
        for seed in range(seeds):
            for key, r in clean_seed(model, train_set, test_set, seed, epochs, k).items():
                runs.setdefault(key, []).append({**r, "network": k})
    n = f"{len(networks)} network(s) x {seeds} seeds"
    for paper_share in (PAPER["pruned"], PAPER_20_GROUPS):
        pruned = runs[("MINT", paper_share)][0]["pruned"]
        print(f"\n  at {pruned:.2f}% pruned (paper figure {paper_share}%), mean +- sd over "
              f"{n} (test, last epoch; validation last epoch; before fine-tuning):")
        for method in METHODS:
            rs = runs[(method, paper_share)]
            last, val, before = ([r["last"] for r in rs], [r["per_epoch"][-1] for r in rs],
                                 [r["before"] for r in rs])
            per_net = ", ".join(f"{mean_sd([r['last'] for r in rs if r['network'] == k])[0]:.2f}"
                                for k in range(len(networks)))
            print(f"    {method:<36} {spread(last)}   (val {spread(val)}, before FT "
                  f"{spread(before)}; by network {per_net})")
        for method in ("MINT", "null rule (conditional p)", "block magnitude"):
            a, r = ([x["last"] for x in runs[(k, paper_share)]] for k in (method, "random blocks"))
            print(f"    {method} vs random blocks: {verdict(a, r)}")
    pairs = [([x["last"] for x in runs[("MINT", share)]],
              [x["last"] for x in runs[("random blocks", share)]])
             for share in (PAPER["pruned"], PAPER_20_GROUPS)]
    print(f"  MINT minus random blocks over every network, seed and share: {sign_count(pairs)}")
    print("  baselines " + ", ".join(f"{acc:.2f}%" for _, acc in networks))
    return runs


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", default="clean", choices=["paper", "clean", "both"])
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the clean protocol")
    ap.add_argument("--networks", type=int, default=3,
                    help="trained baselines (training seeds 0, 1, ...) of the clean protocol")
    ap.add_argument("--paper-seeds", type=int, default=3,
                    help="seeds of MINT (published mode) and random blocks, paper protocol")
    ap.add_argument("--with-2020", action="store_true",
                    help="paper protocol: also the published-2020 statistic (slow: see the "
                         "estimate it prints) and the third summary line")
    ap.add_argument("--null-permutations", type=int, default=9,
                    help="conditional-null permutations of the null rule (clean protocol)")
    ap.add_argument("--clean-epochs", type=int, default=3,
                    help="fine-tuning epochs of the clean protocol (one schedule for all)")
    ap.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA)")
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="reuse a cached baseline checkpoint (default: reuse; kept for scripts)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny settings that only check the script runs (numbers meaningless)")
    ap.add_argument("--offline", action="store_true",
                    help="do not try to download MNIST: stop at once when it is not staged")
    args = ap.parse_args()
    for flag in ("--seeds", "--networks", "--paper-seeds", "--null-permutations",
                 "--clean-epochs"):
        check_flag(ap, flag, check_count, getattr(args, flag[2:].replace("-", "_")))
    NULL_PERMUTATIONS["value"] = args.null_permutations
    start = time.perf_counter()
    torch.set_num_threads(1)  # training an MLP this small: one thread (see finetune)
    with exit_on_user_error(ap):
        train_set = data.load_dataset("mnist", root=args.root, download=not args.offline)
        test_set = data.load_dataset("mnist", root=args.root, train=False,
                                     download=not args.offline)
    if args.smoke:
        PAPER_SETUP.update(per_class=40, groups=(10, 25), epochs=3)
        CLEAN_SETUP.update(per_class=30, validation=300)
    networks = []
    for k in range(args.networks if args.protocol != "paper" else 1):
        cfg = MintConfig(dataset="mnist", model="mlp", quick=args.smoke, root=args.root,
                         progress=False, seed=k)
        model, base, reused = pipeline.train_baseline(cfg, train_set, test_set)
        networks.append((model, 100 * base))
        print(f"baseline {k} (training seed {k}): {100 * base:.2f}% "
              f"({'cached' if reused else 'trained'}, {time.perf_counter() - start:.0f} s)",
              flush=True)
    if args.smoke:
        train_set = data.class_balanced_subset(train_set, 150, seed=0)
        test_set = data.class_balanced_subset(test_set, 50, seed=0)
    model, base = networks[0]
    lines = []
    if args.protocol in ("paper", "both"):
        paper = paper_protocol(model, train_set, test_set, base, args.paper_seeds,
                               args.with_2020)
        for mode, rnd, label in (("MINT published mode", "random blocks", "published mode"),
                                 ("MINT published-2020 mode", "random blocks (2020 share)",
                                  "published-2020 mode")):
            if mode not in paper:
                continue
            pub, rs = paper[mode], paper[rnd]
            mean = lambda values: sum(values) / len(values)  # noqa: E731
            lines.append(f"mnist-mlp layer2 paper protocol: pruned "
                         f"{mean([r['pruned'] for r in pub]):.2f}% acc "
                         f"{mean([max(r['per_epoch']) for r in pub]):.2f}% best-epoch / "
                         f"{mean([r['per_epoch'][-1] for r in pub]):.2f}% last-epoch ({label}; "
                         f"random blocks {mean([max(r['per_epoch']) for r in rs]):.2f}% "
                         f"best-epoch)")
        print("\n" + "\n".join(lines) + f"  [{time.perf_counter() - start:.0f} s so far]",
              flush=True)
    if args.protocol in ("clean", "both"):
        runs = clean_protocol(networks, train_set, test_set, args.seeds, args.clean_epochs)
        at = PAPER["pruned"]
        acc = {m: spread([r["last"] for r in runs[(m, at)]], sep="+-")
               for m in ("MINT", "random blocks", "block magnitude")}
        n_runs = f"{args.seeds} seeds" if args.networks == 1 else \
            f"{args.networks} networks x {args.seeds} seeds"
        clean = (
            f"mnist-mlp layer2 clean protocol: pruned {runs[('MINT', at)][0]['pruned']:.2f}% "
            f"MINT {acc['MINT']} random {acc['random blocks']} magnitude "
            f"{acc['block magnitude']} ({n_runs}; MINT vs random: "
            f"{verdict(*[[r['last'] for r in runs[(k, at)]] for k in ('MINT', 'random blocks')])})")
        lines.insert(1 if lines else 0, clean)  # paper line, clean line, then the 2020 line
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
