"""Train the baseline networks and report test accuracy and wall time (docs/method.md section 1).

- MNIST MLP 784-500-300-10: the paper's baseline is 98.59 %; the goal here is >= 98.50 %.
- Classroom CNN on CIFAR-10: the course's small network; the goal is >= 70 % in a few minutes
  of training on two CPU cores.

Data come from --root, else MINT_TEACH_DATA (the staged ../shared/data in CI). Wall times on a
shared machine are noisy: other processes competing for the cores can slow training several
times over, and two intra-op threads suffer more from that than one (see --threads).

Usage: python benchmarks/train_baselines.py [--only mlp|cnn] [--seed 0] [--root DATA]
       python benchmarks/train_baselines.py --course [--root DATA]

``--course`` trains the quick-mode baselines the notebooks use (``pipeline.COURSE_BASELINES``)
with the pipeline's own recipe, stores their weights in half precision in
``mint_teach/baselines/`` (each file at most 2 MB, named like the cache entry it stands for) and
records each file's SHA-256 and test accuracy in ``mint_teach/baselines/MANIFEST.json``;
``tests/test_baselines.py`` checks both. A student's first run then loads these weights instead
of training for minutes.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time

import torch

from mint_teach import config
from mint_teach._cli import OneLineParser, check_flag, one_line
from mint_teach._validation import check_count
from mint_teach.data import load_dataset, random_crop_flip
from mint_teach.models import build_model
from mint_teach.train import evaluate, fit

# The recipes measured here; the pipeline's TRAIN_DEFAULTS should carry the same values.
RECIPES = {
    "mlp": {"dataset": "mnist", "model": "mlp", "target": 98.50, "paper": 98.59,
            "train": {"epochs": 15, "lr": 0.1, "weight_decay": 1e-4, "batch_size": 128,
                      "augment": False}},
    "cnn": {"dataset": "cifar10", "model": "cnn", "target": 70.0, "paper": None,
            "train": {"epochs": 5, "lr": 0.1, "weight_decay": 5e-4, "batch_size": 128,
                      "augment": False}},
}


def _pipeline_recipe(which: str):
    """The pipeline's recipe for the same network, if the pipeline defines one."""
    try:
        from mint_teach.pipeline import TRAIN_DEFAULTS
    except ImportError:
        return None
    r = RECIPES[which]
    return TRAIN_DEFAULTS.get(f"{r['dataset']}/{r['model']}")


def run_one(which: str, *, root, seed: int, device, progress: bool) -> dict:
    r = RECIPES[which]
    recipe = dict(r["train"])
    augment = recipe.pop("augment")
    print(f"\n== {which}: {r['model']} on {r['dataset']}  recipe {r['train']}", flush=True)
    pipe = _pipeline_recipe(which)
    if pipe is not None and {"augment": False, **pipe} != r["train"]:
        print(f"   note: pipeline.TRAIN_DEFAULTS has {pipe}", flush=True)

    t0 = time.perf_counter()
    train_set = load_dataset(r["dataset"], root=root, train=True, download=False)
    test_set = load_dataset(r["dataset"], root=root, train=False, download=False)
    load_s = time.perf_counter() - t0
    print(f"   data: {len(train_set)} train / {len(test_set)} test images, loaded in {load_s:.1f} s",
          flush=True)

    torch.manual_seed(seed)  # initial weights; fit seeds shuffling, dropout and augmentation
    model = build_model(r["model"])
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    fit(model, train_set, **recipe, augment=random_crop_flip if augment else None,
        device=device, seed=seed, progress=progress, desc=which)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc = 100 * evaluate(model, test_set, device=device)
    eval_s = time.perf_counter() - t0
    print(f"   test accuracy {acc:.2f} %  (train {train_s:.1f} s, "
          f"{train_s / recipe['epochs']:.1f} s/epoch, evaluate {eval_s:.1f} s)", flush=True)
    return {"which": which, "dataset": r["dataset"], "model": r["model"], "params": n_params,
            "epochs": recipe["epochs"], "load_s": load_s, "train_s": train_s, "acc": acc,
            "target": r["target"], "paper": r["paper"]}


MAX_SHIPPED_BYTES = 2_000_000


def ship_course_baselines(*, root=None, device=None, progress: bool = True) -> list[dict]:
    """Train every ``pipeline.COURSE_BASELINES`` network and store it in the package."""
    from mint_teach import pipeline, train
    from mint_teach.config import write_atomic

    manifest_path = pipeline.SHIPPED_DIR / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    rows = []
    for label, fields in pipeline.COURSE_BASELINES.items():
        cfg = pipeline.MintConfig(**fields, root=root, device=device, progress=progress,
                                  reuse_checkpoint=False, out_dir=None)
        train_set = load_dataset(cfg.dataset, root=root, train=True, download=False)
        test_set = load_dataset(cfg.dataset, root=root, train=False, download=False)
        t0 = time.perf_counter()
        model, acc32, _ = pipeline.train_baseline(cfg, train_set, test_set)
        train_s = time.perf_counter() - t0
        _, name, key = pipeline.baseline_file(cfg, train_set)
        half = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
                for k, v in model.state_dict().items()}
        model.load_state_dict(half)  # the weights a student will load, rounded as stored
        acc16 = train.evaluate(model, test_set, device=device)
        meta = {"test_acc": acc16, "test_items": len(test_set), "recipe": key,
                "dtype": "float16"}
        target = pipeline.SHIPPED_DIR / name
        write_atomic(target, lambda f: torch.save({"state_dict": half, "meta": meta}, f))
        size = target.stat().st_size
        if size > MAX_SHIPPED_BYTES:
            target.unlink()
            raise SystemExit(f"{name}: {size:,} bytes is over the {MAX_SHIPPED_BYTES:,}-byte cap")
        for old, entry in list(manifest.items()):  # a file this label shipped before
            if entry.get("label") == label and old != name:
                (pipeline.SHIPPED_DIR / old).unlink(missing_ok=True)
                del manifest[old]
        manifest[name] = {"label": label, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                          "bytes": size, "test_acc": round(acc16, 6), "test_items": len(test_set),
                          "test_acc_float32": round(acc32, 6), "train_seconds": round(train_s, 1)}
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        write_atomic(manifest_path, lambda f: f.write(text.encode()))
        print(f"{label}: {name}, {size:,} bytes, test accuracy {100 * acc16:.2f} % "
              f"(float32 {100 * acc32:.2f} %), trained in {train_s:.0f} s", flush=True)
        rows.append(manifest[name])
    return rows


def main(argv=None) -> int:
    ap = OneLineParser(
        description="Train the baseline networks (MNIST MLP, CIFAR-10 classroom CNN) and print "
                    "their test accuracy and wall time.")
    ap.add_argument("--root", default=None,
                    help="data folder holding MNIST/raw and cifar10-jpg.tar.gz "
                         "(default: MINT_TEACH_DATA)")
    ap.add_argument("--only", choices=sorted(RECIPES), default=None,
                    help="train only this network (default: both)")
    ap.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling, augmentation")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice, one per core)")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    ap.add_argument("--course", action="store_true",
                    help="train the notebooks' quick-mode baselines and ship them in "
                         "mint_teach/baselines/ (half precision, <= 2 MB each)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_flag(ap, "--threads", check_count, args.threads))
    if args.course:
        try:
            ship_course_baselines(root=args.root, device=args.device,
                                  progress=not args.no_progress)
        except FileNotFoundError as exc:  # not staged: where it looked and how to stage it
            print(f"{ap.prog}: error: {one_line(exc)}", file=sys.stderr)
            return 2
        return 0
    root = config.data_root(args.root)
    device = check_flag(ap, "--device", lambda name, value: config.resolve_device(value),
                        args.device)
    print(f"data root {root}; device {device}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cores ({platform.processor() or '?'})"
          f"; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    rows = []
    for which in ([args.only] if args.only else list(RECIPES)):
        try:
            rows.append(run_one(which, root=args.root, seed=args.seed, device=args.device,
                                progress=not args.no_progress))
        except FileNotFoundError as exc:  # not staged: where it looked and how to stage it
            print(f"   skipped: {one_line(exc)}")
    if not rows:
        print(f"{ap.prog}: error: no data for any network (see above)", file=sys.stderr)
        return 2

    print(f"\nload average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
          "(timings on a shared machine are noisy)")
    head = (f"{'network':<8}{'dataset':<9}{'params':>9}{'epochs':>7}{'train s':>9}{'s/epoch':>9}"
            f"{'test acc':>10}{'goal':>8}{'paper':>8}  ok")
    print(head)
    print("-" * len(head))
    for r in rows:
        paper = f"{r['paper']:.2f}" if r["paper"] is not None else "-"
        print(f"{r['model']:<8}{r['dataset']:<9}{r['params']:>9,}{r['epochs']:>7}"
              f"{r['train_s']:>9.1f}{r['train_s'] / r['epochs']:>9.1f}{r['acc']:>9.2f}%"
              f"{r['target']:>7.2f}%{paper:>8}  {'yes' if r['acc'] >= r['target'] else 'NO'}")
    return 0 if all(r["acc"] >= r["target"] for r in rows) else 2


if __name__ == "__main__":
    raise SystemExit(main())
