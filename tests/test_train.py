"""Training resumes exactly from its per-epoch checkpoint (long GPU runs get interrupted)."""
from __future__ import annotations

import pytest
import torch

from mint_teach import data, models, train


class _Stop(Exception):
    pass


def _digits_mlp():
    torch.manual_seed(0)
    return models.build_model("mlp", in_features=64)


def test_fit_resumes_after_an_interruption_with_identical_weights(tmp_path, monkeypatch):
    ds = data.load_dataset("digits")
    plain = _digits_mlp()
    expected = train.fit(plain, ds, epochs=4, progress=False, seed=3)

    ck = tmp_path / "state.pt"
    real_save, calls = torch.save, []

    def save_then_crash(obj, f, *a, **k):  # the job dies right after epoch 2 is saved
        real_save(obj, f, *a, **k)
        calls.append(f)
        if len(calls) == 2:
            raise _Stop

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(_Stop):
        train.fit(_digits_mlp(), ds, epochs=4, progress=False, seed=3, checkpoint=ck)
    monkeypatch.setattr(torch, "save", real_save)

    resumed = _digits_mlp()
    history = train.fit(resumed, ds, epochs=4, progress=False, seed=3, checkpoint=ck)
    assert history["loss"] == pytest.approx(expected["loss"])
    for a, b in zip(plain.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_rejects_bad_arguments():
    ds = data.load_dataset("digits")
    with pytest.raises(ValueError, match="epochs"):
        train.fit(_digits_mlp(), ds, epochs=-1)
    with pytest.raises(ValueError, match="schedule"):
        train.fit(_digits_mlp(), ds, epochs=1, schedule="linear")
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(_digits_mlp(), ds, epochs=1, batch_size=0)
