"""How far from 0 is the conditional GMI estimate when X, Y and Z are independent?

docs/method.md section 4b. For independent Gaussians X, Y, Z (dimensions dx, dy, dz) the true
I(X; Y | Z) is 0, so the mean estimate over seeds is the estimator's bias at that shape and
number of rows. The table prints mean +- sd over the seeds for every (dimensions, rows) cell,
and the same for a constant X (a dead child group, whose dependence is 0 by definition).

    python benchmarks/estimator_bias.py                      # faithful estimator, 5 seeds
    python benchmarks/estimator_bias.py --seeds 10 --estimator published

Each seed draws new data (seed 1000 + s) and a new split of the rows (seed s).
"""
from __future__ import annotations

import time

import numpy as np

from mint_teach import mi
from mint_teach._cli import OneLineParser, check_flag
from mint_teach._validation import check_count
from seed_stats import spread

SHAPES = ((1, 2, 2), (1, 2, 8), (5, 5, 20), (15, 25, 100))
ROWS = (750, 1500, 3000)


def estimates(dims: tuple[int, int, int], rows: int, seeds: int, estimator: str,
              constant_x: bool = False) -> list[float]:
    """Conditional GMI of independent Gaussians of ``dims`` on ``rows`` rows, one per seed."""
    out = []
    for s in range(seeds):
        rng = np.random.default_rng(1000 + s)
        x, y, z = (rng.normal(size=(rows, d)) for d in dims)
        if constant_x:
            x = np.zeros_like(x)
        out.append(mi.conditional_gmi(x, y, z, seed=s, device="cpu", estimator=estimator))
    return out


def cell(values: list[float]) -> str:
    return spread(values, unit="", digits=3)


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds per cell")
    ap.add_argument("--estimator", default="faithful", choices=mi.ESTIMATORS)
    ap.add_argument("--rows", type=int, nargs="+", default=list(ROWS), help="rows per cell")
    args = ap.parse_args()
    check_flag(ap, "--seeds", check_count, args.seeds)
    check_flag(ap, "--rows", check_count, args.rows, low=mi.MIN_ROWS_CONDITIONAL)
    start = time.perf_counter()
    print(f"conditional GMI of independent X, Y, Z ({args.estimator}); mean +- sd over "
          f"{args.seeds} seeds; the true value is 0")
    print(f"{'dx, dy, dz':<14}" + "".join(f"{f'{n} rows':>20}" for n in args.rows))
    for dims in SHAPES:
        cells = [cell(estimates(dims, n, args.seeds, args.estimator)) for n in args.rows]
        print(f"{', '.join(map(str, dims)):<14}" + "".join(f"{c:>20}" for c in cells),
              flush=True)
    dims = SHAPES[0]
    cells = [cell(estimates(dims, n, args.seeds, args.estimator, constant_x=True))
             for n in args.rows]
    print(f"{'X constant':<14}" + "".join(f"{c:>20}" for c in cells))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
