"""Command line: ``python -m mint_teach demo``, ``run ...`` and ``check``.

A thin shell on :func:`mint_teach.pipeline.run_mint`. Every configuration error is found
before any training (``MintConfig`` checks each field, ``run_mint`` checks the layer pairs,
groups, rows per class and the output folder before it trains) and reported as one line that
names the flag, with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import time

from ._cli import OneLineParser as _Parser
from ._cli import one_line as _one_line
from .mi import ESTIMATORS


# The flag that sets each MintConfig field, for error messages.
FLAGS = {"dataset": "--dataset", "model": "--model", "layer_pairs": "--pairs",
         "groups": "--groups", "samples_per_class": "--samples-per-class",
         "prune_fraction": "--fractions", "max_pair_fraction": "--max-pair-fraction",
         "finetune_epochs": "--finetune-epochs", "finetune_lr": "--finetune-lr",
         "train": "--epochs", "baselines": "--baselines", "seed": "--seed",
         "device": "--device", "root": "--root", "out_dir": "--out",
         "estimator": "--estimator"}


def _pair(text: str) -> tuple[str, str]:
    parent, sep, child = text.partition(":")
    if not sep or not parent or not child:
        raise argparse.ArgumentTypeError(f"a layer pair is PARENT:CHILD, e.g. fc1:fc2; got {text!r}")
    return parent, child


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m mint_teach",
        description="MINT: prune a trained network by conditional geometric mutual information.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="MINT on scikit-learn's digits, offline, in about ten seconds",
                   description="Train the digits MLP, prune it with MINT and with magnitude "
                               "pruning at the same sparsity, and print the table.")
    c = sub.add_parser("check", help="is this machine ready for the course? (exit status 0 "
                                     "only when ready)",
                       description="Python, packages, data, baseline weights, memory and disk, "
                                   "one line each, then 'ready' or what to do.")
    c.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA or cache)")
    c.add_argument("--download", action="store_true",
                   help="first download MNIST and CIFAR-10 if they are missing (needs network)")
    r = sub.add_parser("run", help="run MINT on a dataset and model of your choice",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--dataset", default="mnist",
                   choices=["digits", "mnist", "cifar10", "imagefolder"],
                   help="imagefolder: an ImageNet-style tree ROOT/{train,val}/<class>/ (--root)")
    r.add_argument("--model", default=None,
                   help="mlp, cnn, vgg16_bn, resnet56, tiny_vgg, tiny_resnet, resnet50, "
                        "tiny_resnet50 (default: per dataset)")
    r.add_argument("--pairs", type=_pair, nargs="+", default=None, metavar="PARENT:CHILD",
                   help="layer pairs to prune, e.g. fc1:fc2 (default: all adjacent pairs)")
    r.add_argument("--groups", type=int, default=20, help="groups per layer (section 3)")
    r.add_argument("--samples-per-class", type=int, default=None,
                   help="activation rows per class (default: 250; 100 for digits)")
    r.add_argument("--fractions", type=float, nargs="+", default=[0.9],
                   help="prune fraction(s) q of blocks; several give a grid")
    r.add_argument("--max-pair-fraction", type=float, default=0.75, help="per-pair cap")
    r.add_argument("--finetune-epochs", type=int, default=5)
    r.add_argument("--finetune-lr", type=float, default=0.01)
    r.add_argument("--epochs", type=int, default=None, help="baseline training epochs (default: recipe)")
    r.add_argument("--baselines", nargs="*", default=["magnitude", "unstructured"],
                   choices=["magnitude", "unstructured", "random"],
                   help="baselines at the same sparsity (none: --baselines alone)")
    r.add_argument("--estimator", default="faithful", choices=ESTIMATORS,
                   help="dependency statistic: the method (faithful), the published code's "
                        "(published: as it runs with today's SciPy; published-2020: with the "
                        "tree as SciPy < 1.11 stored it), or block GMI without Z "
                        "(unconditional, a variant)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    r.add_argument("--root", default=None, help="data folder (default: MINT_TEACH_DATA or cache)")
    r.add_argument("--out", default="runs", help="folder for result.json and figures")
    r.add_argument("--quick", action="store_true", help="small data and few epochs")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        from . import doctor

        return doctor.main(args.root, download=args.download)
    from . import distributed
    from .pipeline import MintConfig, run_mint

    start = time.perf_counter()
    main_rank = True  # every process reports an error found before the group is joined
    try:
        cfg = _config(args, MintConfig)  # every flag checked before any process group starts
        # joins the process group under torchrun (its variables checked first, the wait for
        # the other ranks bounded); a no-op otherwise
        distributed.setup()
        main_rank = distributed.is_main()
        result = run_mint(cfg)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        field = getattr(exc, "field", None)
        if field is None and not isinstance(exc, (ValueError, KeyError, OSError)):
            raise  # a TypeError that is not about the configuration is a bug: show it
        where = f"argument {FLAGS[field]}: " if field in FLAGS else ""
        if main_rank:
            print(f"{parser.prog} {args.command}: error: {where}{_one_line(exc)}",
                  file=sys.stderr)
        return 2
    finally:
        distributed.cleanup()
    if not main_rank:  # rank 0 alone prints the table
        return 0
    print(f"\nMINT on {cfg.dataset} / {cfg.model} "
          f"({time.perf_counter() - start:.0f} s; dependencies {result.timings['dependencies']:.1f} s)")
    print(result.table())
    if cfg.out_dir and result.saved_to is None:
        print(f"{parser.prog}: error: the results could not be written to {cfg.out_dir} "
              "(see the warning above)", file=sys.stderr)
        return 1
    if args.command == "demo":
        print(f"note: q is a share of the blocks of all layer pairs together, and no pair may lose "
              f"more than max_pair_fraction = {cfg.max_pair_fraction:.0%} of its blocks (the "
              "published cap, section 5); once the large pair fc1 -> fc2 reaches it, 'params "
              "pruned' stops rising with q. That is the cap at work, not a bug.")
    if cfg.out_dir:
        print(f"results and figures in {result.saved_to}/")
    return 0


def _config(args, config_class):
    """The MintConfig of the parsed command line (checked field by field as it is built)."""
    if args.command == "demo":
        return config_class(dataset="digits", groups=20, samples_per_class=100,
                            prune_fraction=[0.6, 0.8, 0.9], finetune_epochs=15,
                            finetune_lr=0.02, baselines=("magnitude", "unstructured"))
    return config_class(
        dataset=args.dataset, model=args.model, layer_pairs=args.pairs, groups=args.groups,
        samples_per_class=args.samples_per_class, prune_fraction=args.fractions,
        max_pair_fraction=args.max_pair_fraction, finetune_epochs=args.finetune_epochs,
        finetune_lr=args.finetune_lr, train={} if args.epochs is None else {"epochs": args.epochs},
        baselines=tuple(args.baselines), estimator=args.estimator, seed=args.seed,
        device=args.device, root=args.root,
        out_dir=args.out, quick=args.quick or None, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
