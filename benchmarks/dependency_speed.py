"""How fast is ``mi.dependency_matrix`` for one layer pair, and how much memory does it take?

docs/method.md section 4d: the published code needs about 5 s per conditional GMI estimate at
2,500 rows, and an MNIST-MLP layer pair (500 parent units, 300 child units, 20 x 20 groups)
needs 400 of them. This script times the whole matrix for that layer pair and how the time
scales with rows and with groups, on synthetic ReLU activations.

Every configuration runs in a fresh Python process, so its peak memory is that process's
maximum resident set size (``ru_maxrss``). The figure includes what ``import torch`` maps in
(several hundred MB of libraries), so the figure above the imports is printed too.

``--paper`` times the matrix of the paper protocol's headline run (issue 14; section 4e):
6,500 rows (650 per class), 250 parent x 100 child groups = 25,000 estimates, with the
engine used by default on CPU (compiled Prim over distances made on the fly,
``mint_teach._fused_prim``), and, with ``--before``, the batched-torch engine on 1,000 of the
25,000 pairs (4 of the 100 child groups), scaled to the whole matrix.

Run it by hand (it is not a test):

    .venv/bin/python benchmarks/dependency_speed.py             # all tables
    .venv/bin/python benchmarks/dependency_speed.py --quick     # the MNIST-MLP pair only
    .venv/bin/python benchmarks/dependency_speed.py --threads 1 # torch.set_num_threads(1)
    .venv/bin/python benchmarks/dependency_speed.py --paper [--before] [--estimator published]

With CUDA available it also times the GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from mint_teach._cli import OneLineParser, check_flag
from mint_teach._validation import check_count
from mint_teach.mi import ESTIMATORS

MAIN = {"rows": 2500, "parent_units": 500, "child_units": 300, "groups": 20}
PAPER = {"rows": 6500, "parent_units": 500, "child_units": 300, "parent_groups": 250,
         "child_groups": 100}


def synthetic_layer_pair(rows: int, parent_units: int, child_units: int, seed: int = 0):
    """ReLU activations of a parent layer and of a child layer computed from it."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    parent = torch.relu(torch.randn(rows, parent_units, generator=generator))
    weight = torch.randn(parent_units, child_units, generator=generator) / parent_units**0.5
    noise = 0.5 * torch.randn(rows, child_units, generator=generator)
    child = torch.relu(parent @ weight + noise)
    return parent, child


def measure(config: dict) -> dict:
    """Time one dependency matrix in this process; return time and memory figures."""
    import resource

    import torch

    from mint_teach import _block_engine, mi

    _block_engine._USE_FUSED = config.get("engine", "fused") == "fused"
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    device = torch.device(config["device"])
    parent, child = synthetic_layer_pair(config["rows"], config["parent_units"],
                                         config["child_units"])
    # warm-up on a small problem: thread pools, allocator, CUDA context
    mi.dependency_matrix(parent[:60], child[:60], parent_groups=2, child_groups=2, seed=0,
                         device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    before = resource.getrusage(resource.RUSAGE_SELF)
    child_groups = config.get("child_groups", config.get("groups"))
    child = child[:, : config.get("child_units_used", child.shape[1])]
    start = time.perf_counter()
    matrix = mi.dependency_matrix(parent, child,
                                  parent_groups=config.get("parent_groups", config.get("groups")),
                                  child_groups=child_groups, seed=0, device=device,
                                  progress=False, estimator=config.get("estimator", "faithful"))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = after.ru_maxrss / 1024
    return {
        **config,
        "seconds": seconds,
        # CPU time of all threads: less sensitive than wall time to other busy programs
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "estimates": matrix.numel(),
        "peak_rss_mib": peak,
        "rss_before_mib": baseline,
        "gpu_peak_mib": (torch.cuda.max_memory_allocated() / 2**20
                         if device.type == "cuda" else None),
        "torch_threads": torch.get_num_threads(),
        "mean_dependency": float(matrix.mean()),
    }


def run_in_child(config: dict) -> dict:
    """Measure ``config`` in a fresh interpreter, so peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)],
                         capture_output=True, text=True)
    if out.returncode != 0:  # say what went wrong there, in one line, not a CalledProcessError
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"{os.path.basename(__file__)}: error: the measurement of {config} "
                         f"failed in its child process (exit status {out.returncode}): {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(title: str, rows: list[dict], key: str) -> None:
    print(f"\n{title}")
    print(f"  {key:>8} {'pairs':>6} {'seconds':>8} {'CPU s':>7} {'ms/pair':>8} "
          f"{'peak RSS MiB':>13} {'above imports':>14}")
    for r in rows:
        print(f"  {r[key]:>8} {r['estimates']:>6} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
              f"{1000 * r['seconds'] / r['estimates']:>8.2f} {r['peak_rss_mib']:>13.0f} "
              f"{r['peak_rss_mib'] - r['rss_before_mib']:>14.0f}")


def paper(args) -> None:
    """Time the paper protocol's matrix; print one line per engine."""
    import torch

    config = {**PAPER, "device": "cpu", "threads": args.threads, "estimator": args.estimator}
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, load average before "
          f"{os.getloadavg()[0]:.2f}")
    if args.before:
        # 4 of the 100 child groups (12 units): 1,000 of the 25,000 pairs
        part = run_in_child({**config, "engine": "torch", "child_groups": 4,
                             "child_units_used": 12})
        scale = PAPER["parent_groups"] * PAPER["child_groups"] / part["estimates"]
        print(f"before (batched torch engine), {part['estimates']:,} pairs in "
              f"{part['seconds']:.0f} s ({1000 * part['seconds'] / part['estimates']:.0f} ms per "
              f"estimate; {part['cpu_seconds']:.0f} CPU s), scaled to 25,000 pairs: "
              f"{part['seconds'] * scale / 60:.1f} min; peak memory {part['peak_rss_mib']:.0f} MiB")
    r = run_in_child({**config, "engine": "fused"})
    above = r["peak_rss_mib"] - r["rss_before_mib"]
    print(f"paper-protocol matrix ({args.estimator}, 250 x 100 groups = {r['estimates']:,} "
          f"estimates, 6,500 rows, CPU): {r['seconds']:.0f} s = {r['seconds'] / 60:.1f} min "
          f"({r['cpu_seconds']:.0f} CPU s over {r['torch_threads']} threads), "
          f"peak memory {r['peak_rss_mib']:.0f} MiB resident ({above:.0f} MiB above the "
          f"imports and data); load average after "
          f"{os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the MNIST-MLP layer pair")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: "
                        "torch's default)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the main configuration")
    parser.add_argument("--paper", action="store_true",
                        help="only the paper protocol's 250 x 100 group matrix at 6,500 rows")
    parser.add_argument("--before", action="store_true",
                        help="with --paper: also the batched-torch engine, on 1,000 pairs")
    parser.add_argument("--estimator", default="faithful", choices=ESTIMATORS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one config
    args = parser.parse_args()
    check_flag(parser, "--threads", check_count, args.threads, low=0)
    check_flag(parser, "--repeat", check_count, args.repeat)
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    if args.paper:
        paper(args)
        return

    import torch

    base = {**MAIN, "device": "cpu", "threads": args.threads}
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, torch threads "
          f"{args.threads or torch.get_num_threads()}, load average before "
          f"{os.getloadavg()[0]:.2f}")
    runs = [run_in_child(base) for _ in range(max(1, args.repeat))]
    seconds = sorted(r["seconds"] for r in runs)
    best = min(runs, key=lambda r: r["seconds"])
    print(f"\nMNIST-MLP layer pair on CPU: {MAIN['rows']} rows, {MAIN['parent_units']} parent "
          f"and {MAIN['child_units']} child units, {MAIN['groups']} x {MAIN['groups']} groups "
          f"= {best['estimates']} conditional GMI estimates")
    print(f"  time: best {seconds[0]:.2f} s, median {seconds[len(seconds) // 2]:.2f} s over "
          f"{len(seconds)} runs ({1000 * seconds[0] / best['estimates']:.1f} ms per estimate; "
          f"{best['cpu_seconds']:.2f} CPU s in the best run)")
    print(f"  peak memory: {max(r['peak_rss_mib'] for r in runs):.0f} MiB resident "
          f"({max(r['peak_rss_mib'] - r['rss_before_mib'] for r in runs):.0f} MiB above the "
          f"imports and data)")

    if not args.quick:
        by_rows = [run_in_child({**base, "rows": n}) for n in (1000, 2500, 5000)]
        table("Scaling with rows (20 x 20 groups)", by_rows, "rows")
        by_groups = [run_in_child({**base, "groups": g}) for g in (5, 20, 50)]
        table("Scaling with groups (2,500 rows; groups per layer, pairs = groups^2)",
              by_groups, "groups")

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        gpu = [run_in_child({**base, "device": "cuda", "rows": n})
               for n in ((2500,) if args.quick else (1000, 2500, 5000))]
        table(f"GPU ({name}), 20 x 20 groups", gpu, "rows")
        for r in gpu:
            print(f"  rows {r['rows']}: GPU peak allocated {r['gpu_peak_mib']:.0f} MiB")
    else:
        print("\nNo CUDA device: GPU timings skipped.")
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
