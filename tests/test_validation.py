"""Tests for mint_teach._validation, the one layer of argument checks, and its users."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from mint_teach import _validation as V
from mint_teach import data, models, train


def test_check_count_bounds_and_types():
    assert V.check_count("epochs", np.int64(3), low=0) == 3
    assert V.check_count("seed", -5, low=None) == -5
    with pytest.raises(ValueError, match="epochs must be at least 0; got -1"):
        V.check_count("epochs", -1, low=0)
    with pytest.raises(ValueError, match="k must be at most 4; got 5"):
        V.check_count("k", 5, low=None, high=4)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match="epochs must be an integer"):
            V.check_count("epochs", bad)


def test_check_optional_count_says_what_none_means():
    assert V.check_optional_count("batches", None, none_means="all of data") is None
    assert V.check_optional_count("workers", 0, low=0, none_means="default") == 0
    with pytest.raises(ValueError, match=r"batches must be a positive int or None \(all"):
        V.check_optional_count("batches", 0, none_means="all of data")
    with pytest.raises(TypeError, match=r"workers must be an int >= 0 or None.*got True"):
        V.check_optional_count("workers", True, low=0, none_means="default")


def test_check_blocks_keeps_dtype_and_refuses_bad_shapes():
    d = torch.tensor([[0.1, 0.3]], dtype=torch.float32)
    assert V.check_blocks("D", d).dtype == torch.float32
    assert V.check_blocks("keep", np.array([[True, False]])).dtype == torch.bool
    for bad, match in ((torch.rand(4), "non-empty 2-D"), (torch.empty(0, 3), "non-empty 2-D"),
                       ([[0.1, float("nan")]], "NaN"), ([["a"]], "block matrix"),
                       ([[1], [2, 3]], "could not read")):
        with pytest.raises(ValueError, match=f"D.*{match}"):
            V.check_blocks("D", bad)


def test_check_tensor_reads_any_shape():
    assert V.check_tensor("a", np.zeros((2, 3, 4), dtype=np.int32)).dtype == torch.float64
    assert V.check_tensor("a", torch.zeros(2, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(ValueError, match="a must be real-valued"):
        V.check_tensor("a", torch.zeros(2, dtype=torch.complex64))


def test_check_choice_names_the_choices():
    with pytest.raises(ValueError, match=r"model must be one of \[.*'mlp'.*\]; got 'mpl'"):
        models.build_model("mpl")
    with pytest.raises(TypeError, match="model must be one of"):
        models.build_model(None)


@pytest.mark.parametrize("call, match", [
    (lambda: models.ClassroomCNN(widths=(8, 0)), r"widths\[1\] must be at least 1"),
    (lambda: models.ClassroomCNN(widths=()), "widths must be a non-empty"),
    (lambda: models.ClassroomCNN(pools=-1), "pools must be at least 0"),
    (lambda: models.ClassroomCNN(pools=True), "pools must be an integer"),
    (lambda: train.seed_everything(1.0), "seed must be an integer"),
    (lambda: data.load_image_folder("/nonexistent", image_size=4), "image_size must be at least 8"),
])
def test_users_raise_through_the_shared_checks(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_docstring_examples_run():
    assert doctest.testmod(V).failed == 0
