"""Reference trees: where SciPy's minimum_spanning_tree stores each edge, under the SciPy it runs.

The published count (docs/method.md 4c) reads the MST as a CSR matrix, so it depends on whether
SciPy stores an edge at (smaller, larger) or (larger, smaller) index. SciPy 1.11 changed that
(a stable sort inside ``minimum_spanning_tree``). This script records, for seeded point sets,
the entries SciPy stores and the published count read off them, under whatever SciPy and NumPy
run it; ``tests/test_legacy_tree.py`` compares ``mint_teach._legacy_tree`` (which rebuilds
SciPy < 1.11's storage without SciPy) with the record made under SciPy 1.10.1.

It imports only NumPy and SciPy, so it runs in a bare environment. To remake the reference:

    python3.11 -m venv /tmp/oldscipy
    /tmp/oldscipy/bin/pip install scipy==1.10.1 numpy==1.24.4
    REF=tests/data/scipy_tree_reference.json
    /tmp/oldscipy/bin/python benchmarks/scipy_tree_reference.py --out $REF
    .venv/bin/python benchmarks/scipy_tree_reference.py --out $REF

Each run adds (or replaces) the section of its SciPy version in the file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import scipy
from scipy.sparse.csgraph import minimum_spanning_tree

# (seed, joint points, bootstrapped points, dimensions): small trees, and one the size of an
# estimate on 300 rows of wide activations
CASES = [(0, 21, 20, 3), (1, 33, 33, 3), (2, 15, 12, 3), (3, 61, 60, 5), (4, 100, 100, 40)]


def points_of(seed: int, n_joint: int, n_boot: int, dims: int) -> np.ndarray:
    """Joint points (shifted by 0.5) then bootstrapped points, from NumPy's legacy generator."""
    rng = np.random.RandomState(seed)
    joint = rng.standard_normal((n_joint, dims)) + 0.5
    boot = rng.standard_normal((n_boot, dims))
    return np.concatenate([joint, boot])


def distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distances, summed coordinate by coordinate (the same bits under any NumPy)."""
    d2 = np.zeros((len(points), len(points)))
    for k in range(points.shape[1]):
        diff = points[:, None, k] - points[None, :, k]
        d2 = d2 + diff * diff
    return np.sqrt(d2)


def record(seed: int, n_joint: int, n_boot: int, dims: int) -> dict:
    points = points_of(seed, n_joint, n_boot, dims)
    tree = minimum_spanning_tree(distances(points))
    rows, cols = tree.nonzero()  # CSR order
    indices = tree.indices.tolist()
    count = sum((indices[k] >= n_joint) != (k >= n_joint) for k in range(len(indices)))
    return {"seed": seed, "n_joint": n_joint, "n_boot": n_boot, "dims": dims,
            "points": points.tolist(), "rows": rows.tolist(), "cols": cols.tolist(),
            "stored_larger_first": int((rows > cols).sum()), "published_count": int(count)}


def argsort_record(seed: int, size: int, distinct: int) -> dict:
    """NumPy's default argsort of float64 values with many ties (the order ties come out in)."""
    values = np.random.RandomState(seed).randint(0, distinct, size).astype(np.float64)
    return {"seed": seed, "values": values.tolist(), "order": np.argsort(values).tolist(),
            "heapsort_order": np.argsort(values, kind="heapsort").tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to add this SciPy's section to")
    args = parser.parse_args()
    section = {"scipy": scipy.__version__, "numpy": np.__version__,
               "python": sys.version.split()[0], "cases": [record(*c) for c in CASES],
               "argsort": [argsort_record(0, 3000, 40), argsort_record(1, 500, 500)]}
    data = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            data = json.load(f)
    data["command"] = ("python benchmarks/scipy_tree_reference.py --out " + args.out +
                       "  (once under scipy==1.10.1 numpy==1.24.4, once under today's SciPy)")
    data.setdefault("sections", {})[scipy.__version__] = section
    folder = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, args.out)
    for case in section["cases"]:
        print(f"scipy {scipy.__version__}: seed {case['seed']} points "
              f"{case['n_joint'] + case['n_boot']}: {case['stored_larger_first']} of "
              f"{len(case['rows'])} edges stored (larger, smaller); published count "
              f"{case['published_count']}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":
    main()
