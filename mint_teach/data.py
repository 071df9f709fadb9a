"""Datasets: "digits" (offline, ships with scikit-learn), "mnist" and "cifar10".

Every loader returns an :class:`ImageDataset`: uint8 images kept in memory, normalised per item
with the dataset's standard mean and standard deviation, so MNIST fits in about 50 MB and
CIFAR-10 in about 180 MB. :func:`make_loader` cuts any dataset into batches, and
:func:`class_balanced_subset` draws the same number of items from every class (section 2).
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from ._validation import check_count, check_optional_count
from .config import cache_dir, data_root, write_atomic

__all__ = [
    "DATASETS",
    "ImageDataset",
    "ImageFolderDataset",
    "load_dataset",
    "load_image_folder",
    "synthetic_image_tree",
    "class_balanced_subset",
    "balanced_indices",
    "random_crop_flip",
    "targets_of",
    "make_loader",
]

DATASETS = {
    "digits": "scikit-learn's 8x8 handwritten digits (1,797 images, offline)",
    "mnist": "MNIST 28x28 handwritten digits (60,000 + 10,000)",
    "cifar10": "CIFAR-10 32x32 colour images (50,000 + 10,000)",
    "imagefolder": "an ImageNet-style tree ROOT/{train,val}/<class>/*.JPEG, read from disk",
}

# Standard normalisation constants (per channel).
STATS = {
    "digits": ((0.3052,), (0.3760,)),  # measured on the digits training split, pixels / 16
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


class ImageDataset(Dataset):
    """In-memory images (uint8, N x C x H x W) with labels, normalised when read.

    ``images`` may also hold floats already scaled to [0, 1] (digits).
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean, std, classes,
                 scale: float = 255.0, name: str = ""):
        if images.shape[0] != targets.shape[0]:
            raise ValueError(f"images and targets differ in length: {images.shape[0]} vs {targets.shape[0]}")
        self.images = images
        self.targets = targets.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.scale = scale
        self.classes = list(classes)
        self.name = name

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        x = self.images[i].float() / self.scale
        return (x - self.mean) / self.std, self.targets[i]

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images and labels of the rows ``idx`` in one tensor operation."""
        idx = torch.as_tensor(idx)
        return (self.images[idx].float() / self.scale - self.mean) / self.std, self.targets[idx]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, {len(self)} images of shape {self.input_shape}, "
                f"{len(self.classes)} classes)")


def load_dataset(name: str, *, root: str | os.PathLike | None = None, train: bool = True,
                 download: bool = True, **options) -> ImageDataset:
    """Load a dataset by name as a torch Dataset of (normalised image, label) pairs.

    Parameters
    ----------
    name : "digits", "mnist", "cifar10" or "imagefolder".
    root : folder holding the data; default MINT_TEACH_DATA, else a per-user cache folder.
        For "imagefolder" the folder holding ``train/`` and ``val/``.
    train : the training split when True, else the test split.
    download : allow torchvision to download MNIST / CIFAR-10 when not found locally.
    options : for "imagefolder" only: ``image_size``, ``augment``, ``num_workers``
        (:func:`load_image_folder`).

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> x, y = ds[0]
    >>> tuple(x.shape)
    (1, 8, 8)
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"name must be one of {sorted(DATASETS)}; got {name!r}")
    name = name.lower()
    if name == "imagefolder":
        return load_image_folder(root, train=train, **options)
    if options:
        raise TypeError(f"options {sorted(options)} apply to 'imagefolder' only; got name {name!r}")
    if name == "digits":
        return _load_digits(train)
    root_path = data_root(root)
    if name == "mnist":
        return _load_mnist(root_path, train, download)
    return _load_cifar10(root_path, train, download)


def _load_digits(train: bool) -> ImageDataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    x, y = (x_tr, y_tr) if train else (x_te, y_te)
    mean, std = STATS["digits"]
    return ImageDataset(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y), mean, std,
                        classes=[str(k) for k in range(10)], scale=1.0, name="digits")


def _missing(name: str, looked: list[Path], how: str) -> FileNotFoundError:
    where = "\n  ".join(str(p) for p in looked)
    return FileNotFoundError(
        f"{name} data not found and could not be downloaded. Looked in:\n  {where}\n{how}"
    )


_MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_MAGIC = {3: 2051, 1: 2049}  # unsigned bytes, 3-D images / 1-D labels


def _load_mnist(root: Path, train: bool, download: bool) -> ImageDataset:
    raw = root / "MNIST" / "raw"
    image_file, label_file = (raw / name for name in _MNIST_FILES[train])
    if not (image_file.exists() and label_file.exists()):
        _download_mnist(root, train, download, raw)
    images = _read_idx(image_file, ndim=3)
    labels = _read_idx(label_file, ndim=1)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"MNIST file {image_file} holds {images.shape[1]}x{images.shape[2]} "
                         "images; MNIST images are 28x28")
    if len(images) != len(labels):
        raise ValueError(f"MNIST files disagree: {image_file.name} has {len(images)} images but "
                         f"{label_file.name} has {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        row = int(np.argmax(labels > 9))
        raise ValueError(f"MNIST file {label_file} has label {int(labels[row])} at row {row}; "
                         "labels must be 0-9 (the file is damaged)")
    mean, std = STATS["mnist"]
    return ImageDataset(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(
        labels.astype(np.int64)), mean, std, classes=[str(k) for k in range(10)], name="mnist")


def _download_mnist(root: Path, train: bool, download: bool, raw: Path) -> None:
    """Fetch MNIST's IDX files with torchvision, or say where to stage them."""
    how = ("Stage it offline by copying the four IDX files (train-images-idx3-ubyte, "
           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) into "
           "ROOT/MNIST/raw/ and pass root=ROOT or set MINT_TEACH_DATA=ROOT.")
    if not download:
        raise _missing("MNIST", [raw], how)
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=train, download=True)
    except (RuntimeError, OSError) as exc:  # no network
        raise _missing("MNIST", [raw], f"{how} ({exc})") from exc


def _read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), checked: magic number, size."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, f"cannot read MNIST file {path}: {exc.strerror}") from None
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise ValueError(f"MNIST file {path} is truncated: {len(blob)} bytes, shorter than its "
                         f"{header}-byte header; copy or download it again")
    magic = int.from_bytes(blob[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(f"MNIST file {path} has magic number {magic}, expected "
                         f"{_IDX_MAGIC[ndim]}: it is not an IDX file of {ndim}-D unsigned bytes "
                         "(a compressed .gz must be unpacked first)")
    dims = [int.from_bytes(blob[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    size = header + int(np.prod(dims))
    if len(blob) != size:
        state = "truncated" if len(blob) < size else "longer than its header says"
        raise ValueError(f"MNIST file {path} is {state}: {len(blob)} bytes, its header "
                         f"({' x '.join(map(str, dims))}) needs {size}; copy or download it again")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _load_cifar10(root: Path, train: bool, download: bool) -> ImageDataset:
    split = "train" if train else "test"
    folder, tarball = root / "cifar10-jpg", root / "cifar10-jpg.tar.gz"
    pickled = root / "cifar-10-batches-py"
    arrays = None
    if pickled.is_dir() or (download and not folder.is_dir() and not tarball.is_file()):
        arrays = _cifar10_torchvision(root, train, download)
    if arrays is None and (folder.is_dir() or tarball.is_file()):
        arrays = _cifar10_image_folder(folder if folder.is_dir() else tarball, split)
    if arrays is None:
        raise _missing("CIFAR-10", [pickled, folder, tarball], (
            "Stage it offline as torchvision's cifar-10-batches-py folder, or as an image-folder "
            "tree cifar10-jpg/{train,test}/<class>/*.jpg (or its .tar.gz), inside ROOT, and pass "
            "root=ROOT or set MINT_TEACH_DATA=ROOT."
        ))
    images, targets = arrays
    mean, std = STATS["cifar10"]
    return ImageDataset(images, targets, mean, std, classes=CIFAR10_CLASSES, name="cifar10")


def _cifar10_torchvision(root: Path, train: bool, download: bool):
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=train, download=download)
    except (RuntimeError, OSError):
        return None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(ds.targets)


def _source_key(source: Path) -> str:
    """What the decoded arrays depend on: a tarball's size and content hash; for an extracted
    folder, every file's relative path, size and modification time."""
    digest = hashlib.sha256()
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = path.stat()
                digest.update(f"{path.relative_to(source)}:{info.st_size}:"
                              f"{info.st_mtime_ns}\n".encode())
    else:
        digest.update(f"{source.stat().st_size}:".encode())
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _cifar10_image_folder(source: Path, split: str):
    """Decode the image-folder tree (or its tarball) once; later loads read a cached .npz.

    The cache is keyed by the source's content (``_source_key``), and a cached file is used
    only when it records that key and holds arrays of the right shape.
    """
    key = _source_key(source)
    cached = cache_dir() / f"cifar10-{split}-{key[:16]}.npz"
    if cached.is_file():
        arrays = _read_cache(cached, key)
        if arrays is not None:
            return arrays
    images, targets = _decode_cifar_tree(source, split)
    try:
        write_atomic(cached, lambda f: np.savez(f, images=images, targets=targets,
                                                key=np.array(key)))
    except OSError as exc:  # read-only or full cache folder: still return the decoded data
        warnings.warn(f"could not cache decoded CIFAR-10 in {cached.parent}: {exc}", stacklevel=3)
    return torch.from_numpy(images), torch.from_numpy(targets)


def _read_cache(cached: Path, key: str):
    """The cached (images, targets), or None when the file is unreadable, of another source
    or of the wrong shape (then the caller decodes again and rewrites it)."""
    try:
        with np.load(cached) as z:
            if "key" not in z.files or str(z["key"]) != key:
                return None
            images, targets = z["images"], z["targets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32) or images.dtype != np.uint8 \
            or targets.shape != (len(images),) or len(images) == 0:
        return None
    return torch.from_numpy(images), torch.from_numpy(targets)


def _cifar_items(source: Path, split: str) -> list[tuple[str, int, bytes]]:
    """(name, label, encoded bytes) of every image of ``split`` in a folder tree or tarball.

    Links in a folder tree are followed only when they stay inside it; a tarball's links are
    never followed (only regular members are read). A damaged tarball is a ValueError.
    """
    index = {c: k for k, c in enumerate(CIFAR10_CLASSES)}
    items: list[tuple[str, int, bytes]] = []
    if source.is_dir():
        inside = source.resolve()
        for cls in CIFAR10_CLASSES:
            for path in sorted((source / split / cls).glob("*")):
                target = path.resolve()
                if not target.is_relative_to(inside):
                    raise ValueError(f"CIFAR-10 image {path} is a link to {target}, outside "
                                     f"{source}; it is not followed (copy the file in instead)")
                if target.is_file():
                    items.append((str(path.relative_to(source)), index[cls], target.read_bytes()))
        return items
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 3 and parts[-3] == split and parts[-2] in index:
                    items.append((member.name, index[parts[-2]], tar.extractfile(member).read()))
    except (EOFError, tarfile.TarError, zlib.error, OSError) as exc:
        raise ValueError(f"CIFAR-10 archive {source} is truncated or damaged "
                         f"({type(exc).__name__}: {exc}); copy or download it again") from None
    items.sort(key=lambda t: (t[1], t[0]))
    return items


def _decode_cifar_tree(source: Path, split: str):
    from PIL import Image
    from tqdm.auto import tqdm

    items = _cifar_items(source, split)
    if not items:
        raise FileNotFoundError(f"no CIFAR-10 {split} images found in {source}")
    images = np.empty((len(items), 3, 32, 32), dtype=np.uint8)
    for k, (name, _, blob) in enumerate(tqdm(items, desc=f"decoding CIFAR-10 {split}",
                                             leave=False)):
        try:
            img = Image.open(io.BytesIO(blob)).convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"CIFAR-10 image {name} in {source} cannot be decoded "
                             f"({type(exc).__name__}: {exc})") from None
        if img.size != (32, 32):
            raise ValueError(f"CIFAR-10 image {name} in {source} is {img.size[0]}x{img.size[1]}; "
                             "CIFAR-10 images are 32x32")
        images[k] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    targets = np.array([t[1] for t in items], dtype=np.int64)
    return images, targets


# ----------------------------------------------------------------------------- image folders

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def load_image_folder(root: str | os.PathLike | None = None, *, train: bool = True,
                      image_size: int = 224, augment: bool = False,
                      num_workers: int | None = None):
    """An ImageNet-style tree ``ROOT/train/<class>/*.JPEG`` and ``ROOT/val/<class>/*.JPEG``.

    Images stream from disk: nothing is decoded until a batch asks for it, and loaders made
    by the toolkit read with ``num_workers`` worker processes (default: up to 8, one per
    CPU). Every image is resized so its short side is ``image_size * 256 / 224``, then
    centre-cropped to ``image_size`` (the usual ImageNet evaluation transform); with
    ``augment=True`` a random resized crop and horizontal flip replace it (the usual
    training transform). Pixels are normalised with ImageNet's channel means and deviations.

    Parameters
    ----------
    root : the folder holding ``train/`` and ``val/``; default MINT_TEACH_DATA/imagenet.
    train : the ``train`` split when True, else ``val``.
    image_size : side of the square crop (224 for ImageNet; small for tests).
    augment : random crop and flip instead of the centre crop.
    num_workers : reader processes for loaders built by the toolkit.

    Returns
    -------
    ImageFolderDataset, a ``torchvision.datasets.ImageFolder`` with ``input_shape``.
    """
    folder = data_root(root) if root is not None else data_root() / "imagenet"
    check_count("image_size", image_size, low=8)
    split = "train" if train else "val"
    classes = _check_image_tree(folder, split)
    check_optional_count("num_workers", num_workers, low=0, none_means="up to 8 readers")
    workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
    return _image_folder_class()(folder / split, classes, image_size, augment, workers)


def _check_image_tree(folder: Path, split: str) -> list[str]:
    """The class names of ``folder/split``, or an error that shows the expected layout."""
    layout = ("expected ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG with the same "
              "class folders in both (ILSVRC2012's flat val/ folder must first be sorted into "
              "class folders; see docs/reproduction.md, Staging ImageNet)")
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder root {str(folder)!r} does not exist; {layout}")
    found = {}
    for part in ("train", "val"):
        where = folder / part
        if not where.is_dir():
            raise FileNotFoundError(f"no {part}/ folder in {str(folder)!r}; {layout}")
        found[part] = sorted(p.name for p in where.iterdir() if p.is_dir())
        if not found[part]:
            raise ValueError(f"{str(where)!r} has no class folders; {layout}")
    if found["train"] != found["val"]:
        extra = sorted(set(found["train"]) ^ set(found["val"]))
        raise ValueError(f"train/ and val/ of {str(folder)!r} hold different classes "
                         f"(in one only: {extra[:5]}{' ...' if len(extra) > 5 else ''}); {layout}")
    for name in found[split]:
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / split / name).iterdir()):
            raise ValueError(f"class folder {str(folder / split / name)!r} holds no images "
                             f"({', '.join(IMAGE_SUFFIXES)}); {layout}")
    return found[split]


def _image_folder_class() -> type:
    """The ImageFolderDataset class, built on first use so that importing the toolkit does not
    import torchvision; cached under this module's name (pickling finds it there)."""
    cached = globals().get("_ImageFolderDataset")
    if cached is not None:
        return cached
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    class ImageFolderDataset(ImageFolder):
        """Images read from disk per item, resized, cropped, normalised (load_image_folder)."""

        def __init__(self, folder: Path, classes: list[str], image_size: int, augment: bool,
                     num_workers: int):
            mean, std = IMAGENET_STATS
            if augment:
                crop = [transforms.RandomResizedCrop(image_size),
                        transforms.RandomHorizontalFlip()]
            else:
                crop = [transforms.Resize(round(image_size * 256 / 224)),
                        transforms.CenterCrop(image_size)]
            super().__init__(str(folder), transform=transforms.Compose(
                [*crop, transforms.ToTensor(), transforms.Normalize(mean, std)]),
                is_valid_file=_is_image)
            if self.classes != classes:
                raise ValueError(f"class folders of {str(folder)!r} changed while reading them")
            self.image_size, self.augment, self.num_workers = image_size, augment, num_workers
            self.name = "imagefolder"

        @property
        def input_shape(self) -> tuple[int, ...]:
            return (3, self.image_size, self.image_size)

        def __repr__(self) -> str:
            return (f"ImageFolderDataset({self.root!r}, {len(self)} images, "
                    f"{len(self.classes)} classes, {self.image_size}px)")

    ImageFolderDataset.__module__ = __name__
    ImageFolderDataset.__qualname__ = "ImageFolderDataset"
    globals()["_ImageFolderDataset"] = ImageFolderDataset
    return ImageFolderDataset


def __getattr__(name: str):
    if name == "ImageFolderDataset":
        return _image_folder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


def synthetic_image_tree(root: str | os.PathLike, *, classes: int = 3, train_per_class: int = 8,
                         val_per_class: int = 4, size: int = 40, seed: int = 0) -> Path:
    """Write a small ImageNet-style JPEG tree under ``root`` (tests and dry runs, no ImageNet).

    Every class has its own mean colour plus noise, so a network can learn to tell them
    apart. Returns ``root``, ready for ``load_dataset("imagefolder", root=root)``.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    colours = rng.uniform(40, 215, size=(classes, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                pixels = colours[c] + rng.normal(0, 30, size=(size, size + 8, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
                    folder / f"{split}_{c}_{k}.JPEG", quality=90)
    return root


def targets_of(dataset) -> torch.Tensor:
    """Labels of a dataset (ImageDataset, Subset of one, or any (x, y) dataset)."""
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[torch.as_tensor(dataset.indices)]
    t = getattr(dataset, "targets", None)
    if t is not None:
        return torch.as_tensor(t)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])


# ----------------------------------------------------------------------------- batches

class _TensorBatches:
    """Batches of an in-memory ImageDataset (or a Subset of one) by tensor indexing.

    Does what a DataLoader does for these datasets without per-item Python work.
    """

    def __init__(self, data, batch_size: int, shuffle: bool, generator):
        base, rows = data, None
        if isinstance(data, Subset):
            base, rows = data.dataset, torch.as_tensor(data.indices)
        self.base, self.rows = base, rows
        self.n = len(data)
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        if self.rows is not None:
            order = self.rows[order]
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.base.batch(idx)


def make_loader(data, *, batch_size: int = 256, shuffle: bool = False,
                generator: torch.Generator | None = None):
    """Batches of ``data``: a DataLoader is returned unchanged, a Dataset gets one.

    An in-memory :class:`ImageDataset` (or a Subset of one) is cut into batches by tensor
    indexing, without per-item Python work; any other dataset gets a torch DataLoader (with
    the ``num_workers`` a disk-backed dataset asks for).

    Examples
    --------
    >>> batches = make_loader(load_dataset("digits"), batch_size=500)
    >>> len(batches), tuple(next(iter(batches))[0].shape)
    (3, (500, 1, 8, 8))
    """
    if isinstance(data, DataLoader):
        return data
    batch_size = check_count("batch_size", batch_size)
    base = data.dataset if isinstance(data, Subset) else data
    if isinstance(base, ImageDataset):
        return _TensorBatches(data, batch_size, shuffle, generator)
    workers = getattr(base, "num_workers", 0)  # datasets read from disk (data.load_image_folder)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=workers, persistent_workers=False)


def balanced_indices(targets, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """Sorted row indices with ``per_class`` rows of every class, drawn without replacement."""
    per_class = check_count("per_class", per_class)
    targets = torch.as_tensor(targets)
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(targets).tolist():
        rows = torch.nonzero(targets == c).flatten()
        if len(rows) < per_class:
            raise ValueError(
                f"per_class={per_class} but class {c} has only {len(rows)} rows; "
                f"use per_class <= {len(rows)}"
            )
        chosen.append(rows[torch.randperm(len(rows), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


def class_balanced_subset(dataset, per_class: int, *, seed: int = 0) -> Subset:
    """A subset with ``per_class`` items of every class, drawn without replacement (quick mode)."""
    rows = balanced_indices(targets_of(dataset), per_class, seed=seed)
    if isinstance(dataset, Subset):  # flatten, so fast batching still sees the base dataset
        return Subset(dataset.dataset, [dataset.indices[r] for r in rows.tolist()])
    return Subset(dataset, rows.tolist())


def random_crop_flip(x: torch.Tensor, *, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard CIFAR augmentation on a batch: random crop after zero padding, random h-flip.

    ``x`` is a batch ``(batch, channels, height, width)``; for one image use ``x[None]``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a batch of images, a tensor (batch, channels, height, "
                         f"width); got {shape} (for one image pass x[None])")
    padding = check_count("padding", padding, low=0)
    b, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(dev)
    flip = torch.rand(b, generator=generator).to(dev) < 0.5
    rows = torch.arange(h, device=dev)[None, :] + dy[:, None]            # (b, h)
    cols = torch.arange(w, device=dev)[None, :]
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # (b, w)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(c, device=dev)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
