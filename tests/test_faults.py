"""Fault suite: bad input and damaged files, one test per case of the toolkit's fault review.

Test names carry the class of the fault before it was fixed: ``test_wrong_*`` (a silently
wrong result), ``test_crash_*`` (an exception from deep inside a library), ``test_lost_*``
(finished work lost) and ``test_message_*`` (an error a user cannot act on). Data-file faults
are in test_faults_data.py, the command line in test_faults_cli.py, concurrent checkpoint
writes in test_faults_concurrency.py and the property-based tests in
test_faults_properties.py.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mint_teach import data, mi, models, pipeline, pruning, train

CUDA = torch.cuda.is_available()


def _digits_mlp():
    torch.manual_seed(0)
    return models.build_model("mlp", in_features=64)


def _empty_digits():
    full = data.load_dataset("digits", train=False)
    return data.ImageDataset(full.images[:0], full.targets[:0], full.mean.flatten().tolist(),
                             full.std.flatten().tolist(), full.classes, scale=1.0)


def _layers(seed=0, n=60, width=(12, 6)):
    g = torch.Generator().manual_seed(seed)
    parent = torch.randn(n, width[0], generator=g)
    child = torch.relu(parent[:, : width[1]] * 2 + 0.3 * torch.randn(n, width[1], generator=g))
    return parent, child


# ----------------------------------------------------------------------------- masks and pairs

def test_wrong_apply_masks_rejects_a_pair_that_is_not_adjacent():
    model = models.build_model("tiny_vgg")
    keep = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="features.conv2.*features.conv3|valid pairs"):
        pruning.apply_masks(model, {("features.conv1", "features.conv3"): keep})


def test_wrong_layer_pairs_rejects_a_pair_that_is_not_adjacent():
    model = models.build_model("mlp", in_features=64)
    with pytest.raises(ValueError, match=r"\('fc1', 'fc2'\)"):
        models.layer_pairs(model, [("fc1", "fc3")])
    assert models.layer_pairs(model, [("fc2", "fc3")]) == [("fc2", "fc3")]


def test_wrong_run_mint_rejects_a_non_adjacent_pair_before_training(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the layer pairs")

    monkeypatch.setattr(pipeline, "train_baseline", no_training)
    cfg = pipeline.MintConfig(dataset="digits", layer_pairs=[("fc1", "fc3")], out_dir=None,
                              progress=False)
    with pytest.raises(ValueError, match="does not feed") as info:
        pipeline.run_mint(cfg)
    assert info.value.field == "layer_pairs"  # the command line names --pairs


# ----------------------------------------------------------------------------- training

def test_wrong_resume_from_a_longer_run_is_refused(tmp_path):
    ds = data.load_dataset("digits")
    state = tmp_path / "state.pt"
    train.fit(_digits_mlp(), ds, epochs=3, progress=False, checkpoint=state)
    assert state.is_file()
    with pytest.raises(ValueError, match="state.pt"):
        train.fit(_digits_mlp(), ds, epochs=2, progress=False, checkpoint=state)


def test_wrong_fit_on_empty_data_is_refused():
    with pytest.raises(ValueError, match="train_data.*empty|empty.*train_data"):
        train.fit(_digits_mlp(), _empty_digits(), epochs=1, progress=False)


def test_crash_evaluate_on_empty_data_names_the_argument():
    with pytest.raises(ValueError, match="data is empty"):
        train.evaluate(_digits_mlp(), _empty_digits())


def test_crash_threshold_explorer_on_empty_data_names_the_argument():
    widgets = pytest.importorskip("mint_teach.widgets")
    model = _digits_mlp()
    deps = {("fc1", "fc2"): torch.rand(4, 4), ("fc2", "fc3"): torch.rand(10, 4)}
    with pytest.raises(ValueError, match="eval_data"):
        widgets.threshold_explorer(model, deps, _empty_digits())


def test_message_corrupt_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "weights.pt"
    train.save_checkpoint(_digits_mlp(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="weights.pt"):
        train.load_checkpoint(_digits_mlp(), path)


def test_crash_corrupt_cached_baseline_is_moved_aside_and_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    cfg = pipeline.MintConfig(dataset="digits", train={"epochs": 1}, progress=False)
    tr, te = data.load_dataset("digits"), data.load_dataset("digits", train=False)
    pipeline.train_baseline(cfg, tr, te)
    (cached,) = (tmp_path / "checkpoints").glob("*.pt")
    cached.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match=cached.name):
        _, acc, reused = pipeline.train_baseline(cfg, tr, te)
    assert reused is False and acc > 0.5
    assert any(p.name.startswith(cached.name) and "corrupt" in p.name
               for p in cached.parent.iterdir())
    assert pipeline.train_baseline(cfg, tr, te)[2] is True  # the retrained one is reused


# ----------------------------------------------------------------------------- estimators

@pytest.mark.parametrize("scale", [1e19, 1e-25], ids=["huge", "tiny"])
def test_wrong_dependency_matrix_does_not_depend_on_scale(scale):
    parent, child = _layers()
    d = mi.dependency_matrix(parent, child, parent_groups=3, child_groups=2, seed=0,
                             device="cpu", progress=False)
    assert d.abs().max() > 0.05  # the layers do depend on each other
    scaled = mi.dependency_matrix(parent * scale, child * scale, parent_groups=3,
                                  child_groups=2, seed=0, device="cpu", progress=False)
    assert torch.allclose(scaled, d, atol=0.05), (scaled, d)


def test_crash_gmi_of_huge_values_is_the_gmi_of_the_values():
    parent, child = _layers(n=40)
    expected = mi.gmi(parent.double(), child.double(), seed=0)
    assert mi.gmi(parent.double() * 1e200, child.double() * 1e200, seed=0) == expected


@pytest.mark.parametrize("device", ["bogus", pytest.param(
    "cuda", marks=pytest.mark.skipif(CUDA, reason="CUDA is available here"))])
def test_wrong_gmi_checks_device_on_the_networkx_path(device):
    x = torch.randn(20, 2)
    with pytest.raises(ValueError, match="device"):
        mi.gmi(x, x + 1, seed=0, device=device)


def test_crash_hp_from_count_with_an_empty_sample_names_it():
    with pytest.raises(ValueError, match="m"):
        mi.hp_from_count(1, 0, 5)


# ----------------------------------------------------------------------------- loose types

def test_wrong_boolean_prune_fraction_is_refused():
    with pytest.raises(TypeError, match="prune_fraction"):
        pipeline.MintConfig(prune_fraction=True)


@pytest.mark.parametrize("field, value", [
    ("prune_fraction", "0.5"), ("max_pair_fraction", "0.5"), ("groups", "20"),
    ("samples_per_class", 100.0), ("finetune_epochs", True), ("finetune_lr", "0.1"),
    ("seed", 1.5), ("baselines", "magnitude")])
def test_message_config_rejects_loose_types_naming_the_field(field, value):
    with pytest.raises(TypeError, match=field):
        pipeline.MintConfig(**{field: value})


@pytest.mark.parametrize("field, value, word", [
    ("prune_fraction", float("nan"), "prune_fraction"), ("max_pair_fraction", 2.0, "max_pair"),
    ("groups", 0, "groups"), ("finetune_epochs", -1, "finetune_epochs"),
    ("finetune_lr", 0.0, "finetune_lr"), ("device", "bogus", "device")])
def test_message_config_rejects_bad_values_naming_the_field(field, value, word):
    with pytest.raises(ValueError, match=word):
        pipeline.MintConfig(**{field: value})


def test_message_threshold_of_the_wrong_type_names_it():
    deps = {("fc1", "fc2"): torch.rand(3, 3)}
    with pytest.raises(TypeError, match="threshold.*'abc'"):
        pruning.masks_from_dependencies(deps, threshold="abc")


def test_message_random_crop_flip_on_a_single_image_names_the_shape():
    with pytest.raises(ValueError, match=r"\(3, 32, 32\)"):
        data.random_crop_flip(torch.zeros(3, 32, 32))


# ----------------------------------------------------------------------------- output folder

def test_lost_out_dir_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking out_dir")

    monkeypatch.setattr(pipeline, "train_baseline", no_training)
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    cfg = pipeline.MintConfig(dataset="digits", out_dir=str(blocker), progress=False)
    with pytest.raises(ValueError, match="out_dir.*taken"):
        pipeline.run_mint(cfg)


def test_lost_results_survive_a_failing_write(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "_write", broken)
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path / "cache"))
    cfg = pipeline.MintConfig(dataset="digits", groups=4, samples_per_class=20,
                              prune_fraction=0.5, finetune_epochs=0, baselines=(),
                              train={"epochs": 1}, out_dir=str(tmp_path / "out"),
                              progress=False)
    with pytest.warns(UserWarning, match="No space left"):
        result = pipeline.run_mint(cfg)
    assert "MINT q=0.50" in result.table()


def test_lost_result_json_is_written_atomically(tmp_path, monkeypatch):
    """A write that fails half way leaves the earlier result.json whole."""
    folder = tmp_path / "digits-mlp"
    folder.mkdir()
    (folder / "result.json").write_text('{"earlier": 1}')
    real_dumps = pipeline.json.dumps

    class Boom(Exception):
        pass

    def dumps_then_fail(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(pipeline.json, "dumps", dumps_then_fail)
    try:
        with pytest.raises(Boom):
            pipeline._write_text_atomic(folder / "result.json", {"later": 2})
    finally:
        monkeypatch.setattr(pipeline.json, "dumps", real_dumps)
    assert (folder / "result.json").read_text() == '{"earlier": 1}'
    assert sorted(p.name for p in folder.iterdir()) == ["result.json"]


# ----------------------------------------------------------------------------- devices

@pytest.mark.skipif(CUDA, reason="CUDA is available here")
def test_message_unavailable_device_is_one_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        train.fit(_digits_mlp(), data.load_dataset("digits"), epochs=1, device="cuda",
                  progress=False)


def test_message_device_index_out_of_range():
    from mint_teach._validation import check_device

    with pytest.raises(ValueError, match="device"):
        check_device(f"cuda:{max(torch.cuda.device_count(), 1) + 7}")
    assert check_device("cpu") == torch.device("cpu")


def test_valid_estimator_input_raises_no_warning():
    """The scale and device checks stay quiet for ordinary, valid calls."""
    parent, child = _layers()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = mi.dependency_matrix(parent, child, parent_groups=2, child_groups=2, seed=0,
                                 device="cpu", progress=False)
    assert torch.isfinite(d).all()
    assert np.isfinite(mi.gmi(parent, child, seed=0))
