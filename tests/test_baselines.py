"""The quick-mode baselines shipped in mint_teach/baselines: intact, current, accurate, used.

A student's first run loads these weights instead of training (issue: a first run trained for
minutes). Each file is named by the recipe key of the configuration the notebooks use, so a
changed recipe, seed or architecture shows here as a missing file; ``benchmarks/train_baselines.py
--course`` remakes them.
"""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from mint_teach import config, data, pipeline, train

MANIFEST = pipeline.SHIPPED_DIR / "MANIFEST.json"
REMAKE = "python benchmarks/train_baselines.py --course"
FLOOR = {"mnist-mlp": 0.95, "cifar10-cnn": 0.65}  # test accuracy the course's text relies on


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def _data(name):
    try:
        return (data.load_dataset(name, train=True, download=False),
                data.load_dataset(name, train=False, download=False))
    except (FileNotFoundError, OSError, RuntimeError) as exc:
        pytest.skip(f"{name} not staged here ({exc})")


def test_every_shipped_file_is_listed_intact_and_small():
    manifest = _manifest()
    files = sorted(p.name for p in pipeline.SHIPPED_DIR.glob("*.pt"))
    assert files == sorted(manifest), f"files and MANIFEST.json disagree; run {REMAKE}"
    for name, entry in manifest.items():
        blob = (pipeline.SHIPPED_DIR / name).read_bytes()
        assert len(blob) <= 2_000_000, name
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"], f"{name} changed; run {REMAKE}"
        state = torch.load(pipeline.SHIPPED_DIR / name, weights_only=True)["state_dict"]
        assert all(v.dtype in (torch.float16, torch.int64) for v in state.values()), name


@pytest.mark.parametrize("label", sorted(pipeline.COURSE_BASELINES))
def test_the_notebooks_configuration_has_a_shipped_file(label):
    cfg = pipeline.MintConfig(**pipeline.COURSE_BASELINES[label], out_dir=None)
    train_set, _ = _data(cfg.dataset)
    _, name, key = pipeline.baseline_file(cfg, train_set)
    entry = _manifest().get(name)
    assert entry is not None, f"no shipped weights for {label} ({name}); run {REMAKE}"
    assert entry["label"] == label
    assert json.loads(torch.load(pipeline.SHIPPED_DIR / name,
                                 weights_only=True)["meta"]["recipe"]) == json.loads(key)


@pytest.mark.slow
@pytest.mark.parametrize("label", sorted(pipeline.COURSE_BASELINES))
def test_a_fresh_cache_loads_the_shipped_weights_without_training(label, tmp_path, monkeypatch):
    """From an empty cache, train_baseline loads the file, trains nothing, and the network
    scores on the test set exactly the accuracy recorded in the manifest."""
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    cfg = pipeline.MintConfig(**pipeline.COURSE_BASELINES[label], progress=False, out_dir=None)
    train_set, test_set = _data(cfg.dataset)

    def no_training(*args, **kwargs):
        raise AssertionError("train_baseline trained although weights are shipped")

    monkeypatch.setattr(pipeline, "_fit", no_training)
    assert pipeline.baseline_available(cfg, train_set) == "shipped"
    model, acc, reused = pipeline.train_baseline(cfg, train_set, test_set)
    assert reused
    _, name, _ = pipeline.baseline_file(cfg, train_set)
    recorded = _manifest()[name]["test_acc"]
    assert acc == pytest.approx(recorded, abs=1e-6)
    assert train.evaluate(model, test_set) == pytest.approx(recorded, abs=1e-6)
    assert recorded >= FLOOR[label]
    assert not (config.cache_dir() / "checkpoints" / name).exists()  # nothing written


def test_turning_reuse_off_trains(tmp_path, monkeypatch):
    """reuse_checkpoint=False ignores the shipped file (watching the network train)."""
    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    cfg = pipeline.MintConfig(**pipeline.COURSE_BASELINES["mnist-mlp"], progress=False,
                              reuse_checkpoint=False, out_dir=None)
    train_set, test_set = _data("mnist")
    calls = []
    monkeypatch.setattr(pipeline, "_fit", lambda model, subset, **kw: calls.append(len(subset)))
    pipeline.train_baseline(cfg, train_set, test_set)
    assert calls == [10_000]  # 1,000 images per class in quick mode
