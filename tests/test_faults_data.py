"""Fault suite, data files: damaged MNIST IDX files, damaged or swapped CIFAR-10 archives.

Every test builds a tiny dataset in a temporary folder (nothing is read from the staged data)
and points the decode cache at a temporary folder too. Names carry the fault's class as in
test_faults.py.
"""
from __future__ import annotations

import io
import os
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from mint_teach import data

CLASSES = data.CIFAR10_CLASSES


# ----------------------------------------------------------------------------- MNIST

def _idx(magic: int, array: np.ndarray) -> bytes:
    dims = b"".join(struct.pack(">I", s) for s in array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 20)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            _idx(2051, rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(_idx(2049, np.arange(n) % 10))
    return tmp_path


def _load_mnist_test(root):
    return data.load_dataset("mnist", root=root, train=False, download=False)


def test_small_mnist_files_load(mnist_root):
    ds = _load_mnist_test(mnist_root)
    assert len(ds) == 20 and ds.input_shape == (1, 28, 28)
    assert ds.targets.tolist() == [k % 10 for k in range(20)]


def test_message_truncated_mnist_file_says_truncated_and_names_it(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*truncated|truncated.*t10k"):
        _load_mnist_test(mnist_root)


def test_message_bad_magic_number_names_the_file(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">I", 1234) + path.read_bytes()[4:])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*magic"):
        _load_mnist_test(mnist_root)


def test_wrong_mnist_label_out_of_range_is_refused_at_load(mnist_root):
    labels = np.arange(20) % 10
    labels[7] = 200
    (mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, labels))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*200"):
        _load_mnist_test(mnist_root)


def test_message_unreadable_mnist_file_is_not_called_missing(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.unlink()
    path.mkdir()  # present but unreadable as a file
    with pytest.raises(OSError) as info:
        _load_mnist_test(mnist_root)
    assert not isinstance(info.value, FileNotFoundError)
    assert "t10k-labels-idx1-ubyte" in str(info.value) and "not found" not in str(info.value)


# ----------------------------------------------------------------------------- CIFAR-10

def _jpeg(colour, size=32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")  # lossless pixels
    return buf.getvalue()


def _members(colour, per_class=2, split="test"):
    return {f"cifar10-jpg/{split}/{cls}/{k:03d}.jpg": _jpeg(colour)
            for cls in CLASSES for k in range(per_class)}


def _write_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MINT_TEACH_CACHE", str(folder))
    return folder


def _load_cifar_test(root):
    return data.load_dataset("cifar10", root=root, train=False, download=False)


def test_wrong_cifar_cache_is_keyed_by_content_not_mtime(tmp_path, cache):
    root = tmp_path / "data"
    root.mkdir()
    tarball = root / "cifar10-jpg.tar.gz"
    _write_tar(tarball, _members((200, 0, 0)))
    first = _load_cifar_test(root)
    assert int(first.images[:, 0].float().mean()) == 200
    stat = os.stat(tarball)
    _write_tar(tarball, _members((0, 0, 200)))  # another archive with the old mtime
    os.utime(tarball, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = _load_cifar_test(root)
    assert int(second.images[:, 2].float().mean()) == 200
    assert int(second.images[:, 0].float().mean()) == 0


def test_wrong_cifar_cache_with_the_wrong_count_is_not_returned(tmp_path, cache):
    root = tmp_path / "data"
    root.mkdir()
    _write_tar(root / "cifar10-jpg.tar.gz", _members((10, 20, 30)))
    assert len(_load_cifar_test(root)) == 20
    npz = list(cache.glob("cifar10-test-*.npz"))
    assert npz
    for path in npz:  # a valid archive of the wrong size under the cache's name
        np.savez(path, images=np.zeros((5, 3, 32, 32), np.uint8), targets=np.zeros(5, np.int64))
    again = _load_cifar_test(root)
    assert len(again) == 20 and int(again.images[:, 1].float().mean()) == 20


def test_message_corrupt_cifar_image_names_the_member(tmp_path, cache):
    members = _members((1, 2, 3))
    members["cifar10-jpg/test/cat/bad.jpg"] = b"this is not an image"
    _write_tar(tmp_path / "cifar10-jpg.tar.gz", members)
    with pytest.raises(ValueError, match="bad.jpg"):
        _load_cifar_test(tmp_path)


def test_message_cifar_image_of_the_wrong_size_names_the_member_and_size(tmp_path, cache):
    members = _members((1, 2, 3))
    members["cifar10-jpg/test/dog/big.jpg"] = _jpeg((1, 2, 3), size=64)
    _write_tar(tmp_path / "cifar10-jpg.tar.gz", members)
    with pytest.raises(ValueError, match="big.jpg.*64"):
        _load_cifar_test(tmp_path)


def test_message_truncated_cifar_archive_names_the_file(tmp_path, cache):
    tarball = tmp_path / "cifar10-jpg.tar.gz"
    _write_tar(tarball, _members((1, 2, 3), per_class=4))
    tarball.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    with pytest.raises(ValueError, match="cifar10-jpg.tar.gz"):
        _load_cifar_test(tmp_path)


def test_wrong_cifar_folder_link_out_of_the_tree_is_not_followed(tmp_path, cache):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(_jpeg((9, 9, 9)))
    root = tmp_path / "data"
    for name, blob in _members((1, 2, 3)).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    os.symlink(outside / "secret.jpg", root / "cifar10-jpg" / "test" / "cat" / "link.jpg")
    with pytest.raises(ValueError, match="link.jpg"):
        _load_cifar_test(root)
