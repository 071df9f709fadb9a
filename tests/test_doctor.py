"""`python -m mint_teach check`: one line per item, then ready (exit 0) or what to do (exit 1)."""
from __future__ import annotations

import pytest

from mint_teach import doctor
from mint_teach.__main__ import main as cli

GB = 1024 ** 3


def _stage_mnist(root):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for pair in doctor._all_mnist_files():
        (raw / pair).write_bytes(b"")


def _stage_cifar(root):
    for split in ("train", "test"):
        (root / "cifar10-jpg" / split).mkdir(parents=True)


@pytest.fixture
def healthy(monkeypatch):
    """Everything but the data is fine: the data items decide."""
    monkeypatch.setattr(doctor, "check_packages", lambda: doctor.Item("packages", True, "all"))
    monkeypatch.setattr(doctor, "check_baselines", lambda: doctor.Item("baselines", True, "ok"))
    monkeypatch.setattr(doctor, "available_memory", lambda: 8 * GB)


def test_a_missing_dataset_is_not_ready_and_says_what_to_do(tmp_path, healthy, capsys):
    _stage_mnist(tmp_path)  # CIFAR-10 missing
    assert cli(["check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("data") and "ok" in line and "MNIST" in line for line in lines)
    assert any(line.startswith("data") and " -- " in line and "CIFAR-10" in line
               for line in lines)
    assert "ready" not in lines
    todo = out.split("not ready; to do:")[1]
    assert "CIFAR-10" in todo and "--download" in todo and str(tmp_path) in todo
    assert "MNIST" not in todo


def test_everything_present_is_ready(tmp_path, healthy, capsys):
    _stage_mnist(tmp_path)
    _stage_cifar(tmp_path)
    assert cli(["check", "--root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "ready"
    names = [line.split()[0] for line in lines[:-1]]
    assert names == ["python", "packages", "data", "data", "baselines", "memory", "disk"]
    assert all(line.split()[1] == "ok" for line in lines[:-1])


def test_the_data_root_comes_from_the_environment(tmp_path, healthy, monkeypatch, capsys):
    _stage_mnist(tmp_path)
    monkeypatch.setenv("MINT_TEACH_DATA", str(tmp_path))
    items = doctor.check_data()
    assert [i.ok for i in items] == [True, False]
    assert "MINT_TEACH_DATA" in items[1].todo  # no --root given: the variable is the way


def test_a_torchvision_cifar_folder_counts_only_when_whole(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)]:
        (folder / name).write_bytes(b"")
    assert doctor._cifar10_found(tmp_path) is None  # test_batch missing
    (folder / "test_batch").write_bytes(b"")
    assert doctor._cifar10_found(tmp_path) == folder


def test_a_package_that_does_not_import_is_named():
    item = doctor.check_packages({"numpy": "numpy", "no-such-dist": "no_such_module_xyz"})
    assert not item.ok
    assert "no-such-dist" in item.detail and "pip install" in item.todo
    item = doctor.check_packages({"numpy": "numpy"})
    assert item.ok and item.detail.startswith("numpy ")


def test_python_version_boundary():
    assert doctor.check_python((3, 9, 0)).ok
    old = doctor.check_python((3, 8, 18))
    assert not old.ok and "3.9" in old.todo


@pytest.mark.parametrize("gb, ok, words", [(4.0, True, "advised"), (1.7, True, "one notebook"),
                                           (1.0, False, "needed")])
def test_memory_thresholds(gb, ok, words):
    item = doctor.check_memory(int(gb * GB))
    assert item.ok is ok and words in item.detail


def test_meminfo_is_read_in_bytes():
    text = "MemTotal:  24683772 kB\nMemFree:  100 kB\nMemAvailable:   2097152 kB\n"
    assert doctor._meminfo_available(text) == 2 * GB
    assert doctor._meminfo_available("MemTotal: 1 kB\n") is None


def test_little_disk_is_not_ready(tmp_path):
    assert not doctor.check_disk(tmp_path, free=GB // 10).ok
    assert doctor.check_disk(tmp_path, free=5 * GB).ok


def test_missing_baselines_say_how_to_get_them(monkeypatch, tmp_path):
    from mint_teach import pipeline

    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setattr(pipeline, "SHIPPED_DIR", tmp_path / "none")  # nothing shipped
    item = doctor.check_baselines()
    assert not item.ok and "cifar10-cnn" in item.detail and "mnist-mlp" in item.detail
    assert "train_baselines.py --course" in item.todo


def test_shipped_and_cached_baselines_are_found(monkeypatch, tmp_path):
    from mint_teach import pipeline

    monkeypatch.setenv("MINT_TEACH_CACHE", str(tmp_path))
    item = doctor.check_baselines()  # the package's own files
    assert item.ok and item.detail.count("(shipped)") == 2
    monkeypatch.setattr(pipeline, "SHIPPED_DIR", tmp_path / "none")
    cfg = pipeline.MintConfig(**pipeline.COURSE_BASELINES["mnist-mlp"], out_dir=None)
    _, name, _ = pipeline.baseline_file(cfg, pipeline.SimpleNamespace(
        input_shape=(1, 28, 28), classes=list(range(10))))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / name.replace(".pt", ".state.pt")).write_bytes(b"")
    assert pipeline.baseline_available(cfg) is None  # an interrupted run's state: no baseline
    (tmp_path / "checkpoints" / name).write_bytes(b"")
    assert pipeline.baseline_available(cfg) == "cache"
