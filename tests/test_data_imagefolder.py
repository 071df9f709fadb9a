"""ImageNet-style image folders: layout, transforms, errors (data.load_dataset("imagefolder"))."""
from __future__ import annotations

import shutil

import pytest
import torch

from mint_teach import data


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return data.synthetic_image_tree(tmp_path_factory.mktemp("imagenet"), classes=3,
                                     train_per_class=5, val_per_class=2, size=40)


def test_splits_classes_and_shapes(tree):
    tr = data.load_dataset("imagefolder", root=tree, train=True, image_size=32, num_workers=0)
    va = data.load_dataset("imagefolder", root=tree, train=False, image_size=32)
    assert (len(tr), len(va)) == (15, 6)
    assert tr.classes == va.classes == ["n00000000", "n00000001", "n00000002"]
    assert data.targets_of(tr).tolist() == [0] * 5 + [1] * 5 + [2] * 5
    x, y = tr[7]
    assert x.shape == (3, 32, 32) == tr.input_shape and y == 1
    # ImageNet normalisation: a class's mean colour comes back as (colour/255 - mean) / std
    means = torch.stack([tr[k][0].mean(dim=(1, 2)) for k in range(5)]).mean(0)
    assert means.abs().max() < 3 and means.std() > 0


def test_centre_crop_is_deterministic_and_augment_is_not(tree):
    plain = data.load_dataset("imagefolder", root=tree, image_size=24)
    assert torch.equal(plain[0][0], plain[0][0])
    aug = data.load_dataset("imagefolder", root=tree, image_size=24, augment=True)
    torch.manual_seed(0)
    draws = [aug[0][0] for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


def test_loader_reads_with_worker_processes(tree):
    ds = data.load_dataset("imagefolder", root=tree, image_size=16, num_workers=2)
    loader = data.make_loader(ds, batch_size=4)
    assert loader.num_workers == 2
    batches = list(loader)
    assert sum(len(y) for _, y in batches) == 15 and batches[0][0].shape == (4, 3, 16, 16)
    balanced = data.class_balanced_subset(ds, 2, seed=0)
    assert sorted(data.targets_of(balanced).tolist()) == [0, 0, 1, 1, 2, 2]


def test_wrong_layouts_name_what_is_expected(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_dataset("imagefolder", root=tmp_path / "nowhere")
    flat = tmp_path / "flat"
    (flat / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no val/ folder"):
        data.load_dataset("imagefolder", root=flat)
    (flat / "val").mkdir()
    with pytest.raises(ValueError, match="has no class folders"):
        data.load_dataset("imagefolder", root=flat)
    other = tmp_path / "other"
    shutil.copytree(tree, other)
    shutil.rmtree(other / "val" / "n00000002")
    with pytest.raises(ValueError, match="different classes.*n00000002"):
        data.load_dataset("imagefolder", root=other)
    empty = tmp_path / "empty"
    shutil.copytree(tree, empty)
    for f in (empty / "train" / "n00000001").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="holds no images"):
        data.load_dataset("imagefolder", root=empty)
    with pytest.raises(ValueError, match="image_size"):
        data.load_dataset("imagefolder", root=tree, image_size=4)
    with pytest.raises(TypeError, match="imagefolder"):
        data.load_dataset("digits", image_size=32)
