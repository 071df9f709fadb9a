"""Why MINT's masks fall short on the MNIST MLP at 96 %: checks of the dependency matrix.

The MNIST report in docs/reproduction.md says the conditional-GMI values of layer 2 (fc1 ->
fc2, 20 x 20 groups) sit at the estimator's noise floor and follow the parent groups'
activation scale. This script measures each part of that claim on the baseline that
``reproduce_mnist.py`` trains (reused from the cache when present) and prints the figures:

1. D's spread over the 400 blocks against the permuted-child null (``mi.dependency_null``: D
   with the child rows permuted, what "no child-parent dependence" looks like to the
   estimator on these very activations) and the share of blocks with p < 0.05;
2. how well D agrees with itself: a second random split of the same rows, and 650 instead of
   250 samples per class;
3. the correlation between each fc1 group's total activation variance and the mean of its
   column of D;
4. how many fc1 groups MINT's mask keeps at 96.25 % (15 of 400 blocks), against random blocks;
5. with ``--finetune``: MINT, block magnitude and random blocks at 96.25 %, fine-tuned with
   a longer schedule (``--epochs``, lr 0.1, x0.1 at half and three quarters, batch 256).

Usage: python benchmarks/mnist_dependence_checks.py [--root DATA] [--finetune] [--epochs 30]
Without --finetune it takes about a minute on two cores (plus baseline training if uncached).
"""
from __future__ import annotations

import copy
import time

import torch

from mint_teach import activations, data, mi, models, pipeline, pruning, train
from mint_teach._cli import OneLineParser, check_flag, exit_on_user_error
from mint_teach._validation import check_count
from mint_teach.pipeline import MintConfig

Q = 0.9625  # 385 of 400 blocks: the paper's 96.2 %
PAIR = ("fc1", "fc2")


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1].item()


def groups_kept(keep: torch.Tensor) -> str:
    return (f"{int(keep.sum())} blocks in {int((keep.sum(0) > 0).sum())} fc1 groups and "
            f"{int((keep.sum(1) > 0).sum())} fc2 groups")


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA)")
    ap.add_argument("--finetune", action="store_true", help="also fine-tune the three masks")
    ap.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs with --finetune")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--offline", action="store_true",
                    help="do not try to download MNIST: stop at once when it is not staged")
    args = ap.parse_args()
    check_flag(ap, "--epochs", check_count, args.epochs)
    check_flag(ap, "--seed", check_count, args.seed, low=0)
    start = time.perf_counter()

    with exit_on_user_error(ap):  # not staged: one line, where it looked, how to stage
        cfg = MintConfig(dataset="mnist", model="mlp", groups=20, layer_pairs=[PAIR],
                         seed=args.seed, root=args.root, quick=False, progress=False)
        train_set = data.load_dataset("mnist", root=args.root, download=not args.offline)
        test_set = data.load_dataset("mnist", root=args.root, train=False,
                                     download=not args.offline)
    model, base_acc, reused = pipeline.train_baseline(cfg, train_set, test_set)
    print(f"baseline {100 * base_acc:.2f}% ({'cached' if reused else 'trained'})")
    pairs = models.layer_pairs(model, [PAIR])
    groups = pipeline.pair_groups(model, pairs, 20)

    def dependencies(per_class: int, split_seed: int) -> torch.Tensor:
        rows = data.class_balanced_subset(train_set, per_class, seed=args.seed)
        return pipeline.compute_dependencies(model, rows, pairs, groups, seed=split_seed,
                                             progress=False)[PAIR]

    d = dependencies(250, args.seed)
    d_split = dependencies(250, args.seed + 1)
    d_650 = dependencies(650, args.seed)

    # 1. the noise floor: the permuted-child null (section 4e), D with the child rows permuted
    rows = data.class_balanced_subset(train_set, 250, seed=args.seed)
    acts, _ = activations.collect(model, rows, list(PAIR), progress=False)
    null = mi.dependency_null(acts[PAIR[0]], acts[PAIR[1]], parent_groups=20, child_groups=20,
                              permutations=20, seed=args.seed, progress=False)
    p = mi.block_pvalues(d, null)
    print(f"\n1. D over the 400 blocks: mean {d.mean():.3f}, sd {d.std():.3f}, "
          f"range {d.min():.3f} to {d.max():.3f}")
    print(f"   permuted-child null (20 permutations): mean {null.mean():.3f}, sd "
          f"{null.std():.3f}; blocks with p < 0.05: {(p < 0.05).float().mean().item():.1%} "
          f"(5% expected by chance)")

    # 2. agreement with itself
    print(f"2. D against D with another split of the same rows: correlation {corr(d, d_split):.2f}")
    print(f"   D (250 per class) against D (650 per class): correlation {corr(d, d_650):.2f}")

    # 3. activation scale
    for per_class, mat in ((250, d), (650, d_650)):
        rows = data.class_balanced_subset(train_set, per_class, seed=args.seed)
        acts, _ = activations.collect(model, rows, ["fc1"], progress=False)
        var = acts["fc1"].var(dim=0)
        group_var = torch.stack([var[a:b].sum() for a, b in mi.split_groups(len(var), 20)])
        print(f"3. {per_class} per class: column means of D against fc1 group variance: "
              f"correlation {corr(mat.mean(dim=0), group_var):.2f}")

    # 4. where the kept blocks go
    masks = {per_class: pruning.masks_from_dependencies({PAIR: mat}, prune_fraction=Q,
                                                        max_pair_fraction=1.0)
             for per_class, mat in ((250, d), (650, d_650))}
    rand = pruning.random_masks(model, pairs, prune_fraction=Q, groups={PAIR: groups[PAIR]},
                                max_pair_fraction=1.0, seed=args.seed)
    mag = pruning.magnitude_masks(model, pairs, prune_fraction=Q, groups={PAIR: groups[PAIR]},
                                  max_pair_fraction=1.0)
    print(f"4. at {100 * Q:.2f}%: MINT (250 per class) keeps {groups_kept(masks[250][PAIR])}")
    print(f"   MINT (650 per class) keeps {groups_kept(masks[650][PAIR])}")
    print(f"   random blocks keep {groups_kept(rand[PAIR])}; "
          f"block magnitude keeps {groups_kept(mag[PAIR])}")

    # 5. fine-tuning
    if args.finetune:
        print(f"5. fine-tuned {args.epochs} epochs (lr 0.1, step, batch 256) at {100 * Q:.2f}%:")
        for name, m in (("MINT, 250 per class", masks[250]), ("MINT, 650 per class", masks[650]),
                        ("block magnitude", mag), ("random blocks", rand)):
            net = pruning.apply_masks(copy.deepcopy(model), m)
            before = train.evaluate(net, test_set)
            train.fit(net, train_set, epochs=args.epochs, lr=0.1, schedule="step",
                      batch_size=256, weight_decay=1e-4, seed=args.seed, progress=False)
            after = train.evaluate(net, test_set)
            print(f"   {name:<22} before {100 * before:6.2f}%   after {100 * after:.2f}%",
                  flush=True)
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
