"""Fault suite, command line: every configuration error is one line naming the flag, exit 2.

Each bad command line is checked in-process with training replaced by a function that fails
the test, so "reported before any training" is checked too; a few run as real subprocesses to
show that no traceback reaches the terminal.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mint_teach import pipeline
from mint_teach.__main__ import main

REPO = Path(__file__).resolve().parents[1]
DIGITS = ["run", "--dataset", "digits", "--no-progress", "--out", ""]
BAD = [
    (["--fractions", "1.5"], "--fractions"),
    (["--fractions", "nan"], "--fractions"),
    (["--model", "resnet9"], "--model"),
    (["--baselines", "magnitude", "lottery"], "--baselines"),
    (["--samples-per-class", "1"], "--samples-per-class"),
    (["--samples-per-class", "500"], "--samples-per-class"),  # digits has ~133 a class
    (["--finetune-epochs", "-1"], "--finetune-epochs"),
    (["--pairs", "fc1:fc9"], "--pairs"),
    (["--pairs", "fc1:fc3"], "--pairs"),  # not adjacent
    (["--groups", "0"], "--groups"),
    (["--max-pair-fraction", "2"], "--max-pair-fraction"),
    (["--device", "bogus"], "--device"),
    (["--epochs", "-3"], "--epochs"),
    (["--finetune-lr", "0"], "--finetune-lr"),
]
if not torch.cuda.is_available():
    BAD.append((["--device", "cuda"], "--device"))


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started before the configuration was checked")

    monkeypatch.setattr(pipeline, "train_baseline", fail)


@pytest.mark.parametrize("extra, flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_message_cli_error_is_one_line_naming_the_flag(extra, flag, capsys, no_training):
    code, err = _run(DIGITS + extra, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and flag in lines[0], err
    assert "Traceback" not in err


def test_lost_cli_out_that_is_a_file_is_refused_before_training(tmp_path, capsys, no_training):
    blocker = tmp_path / "results"
    blocker.write_text("")
    code, err = _run(["run", "--dataset", "digits", "--no-progress", "--out", str(blocker)],
                     capsys)
    assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1


def _subprocess(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MINT_TEACH_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mint_teach", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)


@pytest.mark.parametrize("extra, flag", [(["--model", "resnet9"], "--model"),
                                         (["--pairs", "fc1:fc3"], "--pairs")],
                         ids=["parser", "feasibility"])
def test_message_cli_subprocess_prints_no_traceback(extra, flag, tmp_path):
    proc = _subprocess(DIGITS + ["--epochs", "1"] + extra, tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert flag in proc.stderr


def test_message_cli_digits_runs_with_its_defaults(tmp_path):
    """``run --dataset digits`` used to fail after training: 250 rows a class, digits has 133."""
    proc = _subprocess(["run", "--dataset", "digits", "--epochs", "2", "--finetune-epochs", "0",
                        "--baselines", "--no-progress", "--out", "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MINT q=0.90" in proc.stdout
    assert (tmp_path / "out" / "digits-mlp" / "result.json").is_file()
