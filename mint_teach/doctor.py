"""Is this machine ready for the course? ``python -m mint_teach check`` answers before class.

One line per item (Python, packages, data, baseline weights, memory, disk), each ``ok`` or
``--``, then ``ready`` or the steps still to do. The exit status is 0 only when every item is
ok, so a teacher can run it on a lab machine, a JupyterHub image or Binder and trust the answer.

Nothing here trains, downloads or writes, unless ``--download`` asks for the missing datasets.

Examples
--------
>>> item = Item("python", True, "3.11.4 (3.9 or later needed)")
>>> print(item.line())
python     ok  3.11.4 (3.9 or later needed)
>>> report([item, Item("data", False, "MNIST not found", "stage MNIST")])
python     ok  3.11.4 (3.9 or later needed)
data       --  MNIST not found
not ready; to do:
  - stage MNIST
False
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import cache_dir, data_root

__all__ = ["Item", "check_python", "check_packages", "check_data", "check_baselines",
           "check_memory", "check_disk", "run_checks", "report", "main"]

MIN_PYTHON = (3, 9)
# Distribution name -> module to import (pyproject.toml's dependencies).
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy",
            "matplotlib": "matplotlib", "ipywidgets": "ipywidgets", "jupyterlab": "jupyterlab",
            "networkx": "networkx", "numba": "numba", "scikit-learn": "sklearn",
            "scipy": "scipy", "tqdm": "tqdm", "pillow": "PIL"}
GB = 1024 ** 3
MEMORY_NEEDED_GB = 1.5  # every notebook's kernel peaks below this in quick mode
MEMORY_ADVISED_GB = 2.0
DISK_NEEDED_GB = 1.0  # MNIST and CIFAR-10 with their decoded caches, checkpoints, figures
CIFAR10_FORMS = ("cifar-10-batches-py/", "cifar10-jpg/", "cifar10-jpg.tar.gz")


@dataclass
class Item:
    """One line of the report: what was checked, whether it is ok, what was found, what to do."""

    name: str
    ok: bool
    detail: str
    todo: str | None = None

    def line(self) -> str:
        """The item as one report line."""
        return f"{self.name:<10} {'ok' if self.ok else '--'}  {self.detail}"


def check_python(version: tuple[int, ...] | None = None) -> Item:
    """The running Python against the oldest one the toolkit supports (3.9)."""
    version = tuple(sys.version_info[:3]) if version is None else tuple(version)
    need = ".".join(map(str, MIN_PYTHON))
    ok = version[:2] >= MIN_PYTHON
    return Item("python", ok, f"{'.'.join(map(str, version))} ({need} or later needed)",
                None if ok else f"install Python {need} or later and rebuild .venv "
                                "(make clean; make test)")


def check_packages(packages: dict[str, str] | None = None) -> Item:
    """Every required package imports; the line lists their versions."""
    packages = PACKAGES if packages is None else packages
    found, missing = [], []
    for dist, module in packages.items():
        try:
            importlib.import_module(module)
            version = importlib.metadata.version(dist)
        except Exception as exc:  # noqa: BLE001 - a broken install fails in many ways
            missing.append(f"{dist} ({type(exc).__name__})")
            continue
        found.append(f"{dist} {version}")
    if missing:
        return Item("packages", False, f"cannot import {', '.join(missing)}",
                    f"install the toolkit's requirements: pip install -e . (or make env); "
                    f"missing: {', '.join(m.split()[0] for m in missing)}")
    return Item("packages", True, ", ".join(found))


def _all_mnist_files() -> list[str]:
    """The four IDX file names that ``data.load_dataset("mnist")`` reads."""
    from .data import _MNIST_FILES

    return [name for pair in _MNIST_FILES.values() for name in pair]


def _mnist_found(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / name).is_file() for name in _all_mnist_files())


def _cifar10_found(root: Path) -> Path | None:
    pickled = root / "cifar-10-batches-py"
    if all((pickled / f).is_file() for f in
           [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        return pickled
    folder = root / "cifar10-jpg"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return folder
    tarball = root / "cifar10-jpg.tar.gz"
    return tarball if tarball.is_file() else None


def check_data(root: str | os.PathLike | None = None) -> list[Item]:
    """MNIST and CIFAR-10 under the data root (``root``, else MINT_TEACH_DATA, else the cache)."""
    folder = data_root(root)
    fetch = "python -m mint_teach check --download (needs network)"
    env = "" if root is not None else " or set MINT_TEACH_DATA to a folder that holds it"
    items = []
    if _mnist_found(folder):
        items.append(Item("data", True, f"MNIST in {folder / 'MNIST' / 'raw'}"))
    else:
        items.append(Item("data", False, f"MNIST not found in {folder / 'MNIST' / 'raw'}",
                          f"MNIST: {fetch}, or copy the four IDX files (train-images-idx3-ubyte, "
                          f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                          f"t10k-labels-idx1-ubyte) into {folder / 'MNIST' / 'raw'}{env}"))
    where = _cifar10_found(folder)
    if where is not None:
        items.append(Item("data", True, f"CIFAR-10 in {where}"))
    else:
        items.append(Item("data", False, f"CIFAR-10 not found in {folder} (looked for "
                                         f"{', '.join(CIFAR10_FORMS)})",
                          f"CIFAR-10 (notebook 05): {fetch}, or put torchvision's "
                          f"cifar-10-batches-py/ or cifar10-jpg.tar.gz into {folder}{env}"))
    return items


def check_baselines() -> Item:
    """The trained networks the notebooks start from: shipped with the package, or cached by an
    earlier run (``pipeline.COURSE_BASELINES``, looked up by ``pipeline.baseline_available``)."""
    from . import pipeline

    missing, found = [], []
    for label, fields in pipeline.COURSE_BASELINES.items():
        cfg = pipeline.MintConfig(**fields, progress=False, out_dir=None)
        where = pipeline.baseline_available(cfg)
        (found if where else missing).append(f"{label} ({where})" if where else label)
    if missing:
        return Item("baselines", False, f"no trained weights for {', '.join(missing)}",
                    "reinstall the package (its mint_teach/baselines/ folder is incomplete), "
                    "or run `python benchmarks/train_baselines.py --course`")
    return Item("baselines", True, f"{', '.join(found)}: no training in class")


def _meminfo_available(text: str) -> int | None:
    """MemAvailable of a /proc/meminfo text, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_headroom() -> int | None:
    """Bytes left under a container's memory limit (cgroup v2, then v1), if there is one."""
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap = Path(limit).read_text().strip()
            now = int(Path(used).read_text().strip())
        except (OSError, ValueError):
            continue
        if cap.isdigit() and int(cap) < 1 << 60:  # "max" or a huge number: no limit
            return max(int(cap) - now, 0)
    return None


def available_memory() -> int | None:
    """Bytes of memory a new kernel can use: MemAvailable, capped by a container's limit."""
    candidates = []
    try:
        candidates.append(_meminfo_available(Path("/proc/meminfo").read_text()))
    except OSError:
        try:
            import psutil

            candidates.append(int(psutil.virtual_memory().available))
        except ImportError:
            pass
    candidates.append(_cgroup_headroom())
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def check_memory(available: int | None = None) -> Item:
    """Free memory against one notebook kernel's peak (1.5 GB needed, 2 GB advised)."""
    available = available_memory() if available is None else available
    if available is None:
        return Item("memory", True, f"could not be read; {MEMORY_ADVISED_GB:g} GB advised")
    gb = available / GB
    if gb >= MEMORY_ADVISED_GB:
        return Item("memory", True, f"{gb:.1f} GB available ({MEMORY_ADVISED_GB:g} GB advised)")
    if gb >= MEMORY_NEEDED_GB:
        return Item("memory", True, f"{gb:.1f} GB available: enough for one notebook at a time; "
                                    "shut down each kernel before opening the next")
    return Item("memory", False, f"{gb:.1f} GB available, {MEMORY_NEEDED_GB:g} GB needed "
                                 "(a notebook's kernel peaks near that in quick mode)",
                f"free memory: close other programs and kernels (Kernel -> Shut Down All "
                f"Kernels); {MEMORY_ADVISED_GB:g} GB advised")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(root: str | os.PathLike | None = None, free: int | None = None) -> Item:
    """Free disk where the data and the cache live (1 GB needed)."""
    folder = _existing(data_root(root))
    free = shutil.disk_usage(folder).free if free is None else free
    gb = free / GB
    if gb >= DISK_NEEDED_GB:
        return Item("disk", True, f"{gb:.1f} GB free in {folder}")
    return Item("disk", False, f"{gb:.2f} GB free in {folder}, {DISK_NEEDED_GB:g} GB needed",
                f"free disk space in {folder}, or point MINT_TEACH_DATA and MINT_TEACH_CACHE "
                "at a larger disk")


def download_missing(root: str | os.PathLike | None = None) -> None:
    """Fetch MNIST and CIFAR-10 with torchvision when they are not under the data root."""
    from .data import load_dataset

    folder = data_root(root)
    for name, found in (("mnist", _mnist_found(folder)),
                        ("cifar10", _cifar10_found(folder) is not None)):
        if not found:
            print(f"downloading {name} into {folder} ...", flush=True)
            try:
                for train in (True, False):
                    load_dataset(name, root=root, train=train, download=True)
            except (OSError, RuntimeError) as exc:
                print(f"{name}: download failed: {str(exc).splitlines()[0]}", flush=True)


def run_checks(root: str | os.PathLike | None = None) -> list[Item]:
    """Every item, in report order."""
    return [check_python(), check_packages(), *check_data(root), check_baselines(),
            check_memory(), check_disk(root)]


def report(items: list[Item], out=None) -> bool:
    """Print one line per item, then ``ready`` or the steps to do; True when ready."""
    out = sys.stdout if out is None else out
    for item in items:
        print(item.line(), file=out)
    todo = [item.todo or item.detail for item in items if not item.ok]
    if not todo:
        print("ready", file=out)
        return True
    print("not ready; to do:", file=out)
    for step in todo:
        print(f"  - {step}", file=out)
    return False


def main(root: str | os.PathLike | None = None, *, download: bool = False) -> int:
    """``python -m mint_teach check``: print the report; 0 when ready, 1 when not."""
    if download:
        download_missing(root)
    return 0 if report(run_checks(root)) else 1
