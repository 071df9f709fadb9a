"""Tests for mint_teach.data, the training loop and the model zoo's layer bookkeeping.

Digits (ships with scikit-learn) is tested always. MNIST and CIFAR-10 are tested when staged in
MINT_TEACH_DATA (../shared/data in CI) and skipped with a reason otherwise. The first CIFAR-10
load of a fresh cache decodes the image tarball once (seconds to tens of seconds); every later
load reads the cached arrays.
"""
from __future__ import annotations

import time
from collections import Counter

import pytest
import torch
from conftest import needs_cifar, needs_mnist
from torch import nn

from mint_teach import config, data, models, train
from mint_teach.data import class_balanced_subset, load_dataset, random_crop_flip

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]


def _check_normalised(ds, n: int = 2000) -> None:
    """A batch spread over the dataset is normalised: per-channel mean ~0 and std ~1."""
    idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).long()
    x, y = ds.batch(idx)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert torch.all(mean.abs() < 0.1), mean
    assert torch.all((std - 1).abs() < 0.1), std
    # item access and batch access agree
    xi, yi = ds[int(idx[3])]
    assert torch.allclose(xi, x[3]) and int(yi) == int(y[3])


# ----------------------------------------------------------------------------- digits

def test_digits_shapes_and_stratified_split():
    tr, te = load_dataset("digits", train=True), load_dataset("digits", train=False)
    assert (len(tr), len(te)) == (1347, 450)
    for ds in (tr, te):
        x, _ = ds[0]
        assert tuple(x.shape) == (1, 8, 8) and ds.input_shape == (1, 8, 8)
        assert x.dtype == torch.float32
        assert ds.classes == [str(k) for k in range(10)]
        assert ds.targets.dtype == torch.int64
        assert sorted(ds.targets.unique().tolist()) == list(range(10))
    # stratified: every class keeps its share of the 1,797 images in the test quarter. The
    # classes are not equal in size (class 8 has 174 images, so 43.5 expected), hence the
    # bound is 1 around each class's own expected count, and 2 around the flat 45.
    test_counts = torch.bincount(te.targets, minlength=10).double()
    all_counts = test_counts + torch.bincount(tr.targets, minlength=10).double()
    assert all_counts.sum() == 1797
    assert torch.all((test_counts - 450 * all_counts / 1797).abs() <= 1), test_counts.tolist()
    assert torch.all((test_counts - 45).abs() <= 2), test_counts.tolist()
    _check_normalised(tr)


def test_digits_split_is_deterministic_and_disjoint():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    te = load_dataset("digits", train=False)
    train_rows = {tuple(r.flatten().tolist()) for r in a.images}
    test_rows = [tuple(r.flatten().tolist()) for r in te.images]
    # the 1,797 digits contain a handful of exact duplicates; almost none may cross the split
    assert sum(r in train_rows for r in test_rows) <= 5


# ----------------------------------------------------------------------------- MNIST

@needs_mnist
def test_mnist_shapes_labels_and_normalisation():
    tr, te = load_dataset("mnist", train=True), load_dataset("mnist", train=False)
    assert (len(tr), len(te)) == (60000, 10000)
    for ds in (tr, te):
        assert ds.images.dtype == torch.uint8
        assert tuple(ds.images.shape[1:]) == (1, 28, 28)
        assert int(ds.targets.min()) == 0 and int(ds.targets.max()) == 9
        assert len(ds.targets.unique()) == 10
        x, _ = ds[0]
        assert tuple(x.shape) == (1, 28, 28) and x.dtype == torch.float32
    _check_normalised(tr)
    _check_normalised(te)


# ----------------------------------------------------------------------------- CIFAR-10

@pytest.fixture(scope="module")
def cifar():
    """Both CIFAR-10 splits (decodes the tarball on a fresh cache, reads the cache after)."""
    return load_dataset("cifar10", train=True), load_dataset("cifar10", train=False)


@needs_cifar
def test_cifar10_shapes_labels_classes(cifar):
    tr, te = cifar
    assert tuple(tr.images.shape) == (50000, 3, 32, 32)
    assert tuple(te.images.shape) == (10000, 3, 32, 32)
    for ds, per_class in ((tr, 5000), (te, 1000)):
        assert ds.images.dtype == torch.uint8 and ds.targets.dtype == torch.int64
        assert ds.classes == CIFAR_CLASSES
        assert torch.bincount(ds.targets, minlength=10).tolist() == [per_class] * 10
        assert int(ds.targets.min()) == 0 and int(ds.targets.max()) == 9
        x, _ = ds[0]
        assert tuple(x.shape) == (3, 32, 32) and x.dtype == torch.float32
    assert not torch.equal(tr.images[:100], te.images[:100])
    _check_normalised(tr, 5000)
    _check_normalised(te, 5000)


@needs_cifar
def test_cifar10_second_load_reads_the_cache(cifar, monkeypatch):
    assert list(config.cache_dir().glob("cifar10-train-*.npz"))
    assert list(config.cache_dir().glob("cifar10-test-*.npz"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("CIFAR-10 was decoded again instead of read from the cache")

    monkeypatch.setattr(data, "_decode_cifar_tree", no_decoding)
    start = time.perf_counter()
    again = load_dataset("cifar10", train=False)
    assert time.perf_counter() - start < 5.0  # well under a second on an idle machine
    assert torch.equal(again.images, cifar[1].images)
    assert torch.equal(again.targets, cifar[1].targets)


@needs_cifar
def test_cifar10_fresh_cache_is_written_and_a_broken_one_is_rebuilt(cifar, tmp_path, monkeypatch):
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    fresh = load_dataset("cifar10", train=False)  # decodes the 10,000 test images again
    assert torch.equal(fresh.images, cifar[1].images)
    assert torch.equal(fresh.targets, cifar[1].targets)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("cifar10-test-") and files[0].endswith(".npz")
    (tmp_path / files[0]).write_bytes(b"an interrupted write")
    rebuilt = load_dataset("cifar10", train=False)
    assert torch.equal(rebuilt.images, cifar[1].images)
    assert sorted(p.name for p in tmp_path.iterdir()) == files


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name", ["svhn", "CIFAR-10", "", None, 3])
def test_unknown_dataset_name_lists_the_choices(name):
    with pytest.raises(ValueError) as err:
        load_dataset(name)
    message = str(err.value)
    for choice in ("digits", "mnist", "cifar10"):
        assert choice in message
    assert repr(name) in message


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_data_names_the_folder_and_how_to_stage(name, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "MINT_TEACH_DATA" in message and "root=" in message


# ----------------------------------------------------------------------------- class_balanced_subset

def test_class_balanced_subset_exact_counts_no_duplicates_and_seeded():
    ds = load_dataset("digits")
    sub = class_balanced_subset(ds, 7, seed=3)
    rows = list(sub.indices)
    assert len(rows) == 70 and len(set(rows)) == 70
    assert Counter(ds.targets[rows].tolist()) == {c: 7 for c in range(10)}
    assert torch.equal(data.targets_of(sub), ds.targets[rows])
    assert list(class_balanced_subset(ds, 7, seed=3).indices) == rows
    assert list(class_balanced_subset(ds, 7, seed=4).indices) != rows


def test_class_balanced_subset_too_large_names_the_class():
    targets = torch.tensor([0] * 5 + [1] * 5 + [7] * 2 + [3] * 5)
    ds = data.ImageDataset(torch.zeros(len(targets), 1, 2, 2), targets, (0.0,), (1.0,),
                           classes=[str(k) for k in range(10)], scale=1.0)
    with pytest.raises(ValueError, match=r"class 7 has only 2"):
        class_balanced_subset(ds, 3)
    assert len(class_balanced_subset(ds, 2)) == 8


@pytest.mark.parametrize("per_class", [0, -1, 2.5, True, "5"])
def test_class_balanced_subset_rejects_bad_per_class(per_class):
    with pytest.raises(ValueError, match="per_class"):
        class_balanced_subset(load_dataset("digits"), per_class)


# ----------------------------------------------------------------------------- random_crop_flip

def test_random_crop_flip_keeps_shape_and_is_seeded():
    x = torch.randn(16, 3, 32, 32)
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(0))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(0))
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_crop_flip_gives_padded_crops_and_mirrors():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 2, 6, 5)
    out = random_crop_flip(x, padding=2, generator=g)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    for k in range(len(x)):
        windows = [img[:, dy:dy + 6, dx:dx + 5]
                   for img in (padded[k], padded[k].flip(-1))
                   for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[k], w) for w in windows), k
    # padding 0: every image is either itself or its mirror image
    flipped = random_crop_flip(x, padding=0, generator=g)
    for k in range(len(x)):
        assert torch.equal(flipped[k], x[k]) or torch.equal(flipped[k], x[k].flip(-1))


# ----------------------------------------------------------------------------- training

@pytest.fixture
def one_thread():
    """Train on one intra-op thread: on a shared two-core machine, two spinning OpenMP threads
    competing with other processes can make these tiny steps ten times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _digits_mlp(seed: int = 0):
    tr, te = load_dataset("digits"), load_dataset("digits", train=False)
    torch.manual_seed(seed)  # fit seeds shuffling and dropout; the initial weights are ours
    model = models.build_model("mlp", in_features=64)
    train.fit(model, tr, epochs=10, lr=0.05, progress=False, seed=seed)
    return model, te


def test_digits_mlp_trains_to_95_percent_and_is_reproducible(one_thread):
    model, te = _digits_mlp(seed=0)
    assert train.evaluate(model, te) >= 0.95
    again, _ = _digits_mlp(seed=0)
    for (name, p), q in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name


def test_checkpoint_round_trip_gives_equal_outputs(tmp_path, one_thread):
    torch.manual_seed(0)
    model = models.build_model("cnn")
    train.fit(model, [(torch.randn(3, 32, 32), k % 10) for k in range(8)], epochs=1,
              batch_size=4, progress=False)  # moves the batch-norm statistics off their init
    path = tmp_path / "sub" / "cnn.pt"
    train.save_checkpoint(model, path, meta={"epochs": 1, "note": "round trip"})
    fresh = models.build_model("cnn")
    meta = train.load_checkpoint(fresh, path)
    assert meta == {"epochs": 1, "note": "round trip"}
    x = torch.randn(4, 3, 32, 32)
    model.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(fresh, tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- model zoo

ZOO = [(name, {}, (2, 1, 28, 28) if name == "mlp" else (2, 3, 32, 32)) for name in models.MODELS]
ZOO.append(("mlp", {"in_features": 64}, (2, 1, 8, 8)))


def _units(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


@pytest.mark.parametrize("name,kwargs,shape", ZOO, ids=[f"{n}{kw.get('in_features', '')}"
                                                        for n, kw, _ in ZOO])
def test_models_output_shape_and_layer_bookkeeping(name, kwargs, shape):
    torch.manual_seed(0)
    model = models.build_model(name, **kwargs).eval()
    modules = dict(model.named_modules())
    prunable = models.prunable_layers(model)
    assert len(prunable) >= 2 and len(set(prunable)) == len(prunable)
    for layer in prunable:
        assert isinstance(modules.get(layer), (nn.Linear, nn.Conv2d)), layer
    assert set(model.activation_of) == set(prunable)
    for layer, act in model.activation_of.items():
        assert act in modules, (layer, act)
    assert model.activation_of[prunable[-1]] == prunable[-1]  # the logits

    calls: list[str] = []
    outputs: dict[str, torch.Tensor] = {}

    def recorder(module_name):
        def hook(module, inputs, output):
            calls.append(module_name)
            outputs[module_name] = output
        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in modules.items() if n]
    with torch.no_grad():
        out = model(torch.randn(*shape))
    for h in handles:
        h.remove()
    assert tuple(out.shape) == (2, 10)

    # prunable layers run in the listed order, each exactly once
    assert [c for c in calls if c in set(prunable)] == prunable
    # each activation module runs after its layer and before the next prunable layer,
    # and its output has one channel per unit of the layer
    position = {n: i for i, n in enumerate(calls)}
    for k, layer in enumerate(prunable):
        act = model.activation_of[layer]
        assert act in position, act
        assert position[layer] <= position[act]
        if k + 1 < len(prunable):
            assert position[act] < position[prunable[k + 1]]
        assert outputs[act].shape[1] == _units(modules[layer]), (layer, act)


def test_classroom_cnn_structure_and_small_inputs():
    net = models.build_model("cnn").eval()
    assert net.prunable == [f"features.conv{k}" for k in (1, 2, 3, 4)] + ["classifier"]
    assert [net.features[i].out_channels for i in range(len(net.features))
            if isinstance(net.features[i], nn.Conv2d)] == [32, 64, 128, 256]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 3
    # the same network runs on the 8x8 digits (8 -> 4 -> 2 -> 1, then a 1x1 stage)
    digits_net = models.build_model("cnn", in_channels=1).eval()
    with torch.no_grad():
        assert tuple(digits_net(torch.randn(2, 1, 8, 8)).shape) == (2, 10)
    # few widths: every stage pools, as in the three-stage network of earlier versions
    small = models.ClassroomCNN(widths=(6, 8, 10))
    assert sum(isinstance(m, nn.MaxPool2d) for m in small.modules()) == 3
    assert models.ClassroomCNN(widths=(6, 8), pools=0).features[-1].__class__ is nn.ReLU


@pytest.mark.parametrize("kwargs,word", [({"widths": ()}, "widths"), ({"widths": (8, 0)}, "widths"),
                                         ({"widths": (8, 2.5)}, "widths"), ({"pools": -1}, "pools"),
                                         ({"pools": True}, "pools")])
def test_classroom_cnn_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        models.ClassroomCNN(**kwargs)


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="cnn"):
        models.build_model("alexnet")
