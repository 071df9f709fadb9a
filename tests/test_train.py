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


def _images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 3, 8, 8, generator=g) * 255).to(torch.uint8)
    return data.ImageDataset(x, torch.arange(n) % 10, mean=(0.5,) * 3, std=(0.25,) * 3,
                             classes=range(10))


def test_recalibrate_batchnorm_measures_the_pruned_networks_own_statistics():
    torch.manual_seed(0)
    net = models.ClassroomCNN(widths=(8, 16), pools=1)
    ds = _images()
    conv, bn = net.features.conv1, net.features.bn1
    stale = bn.running_mean.clone()  # statistics of a network that never ran
    with torch.no_grad():
        conv.weight[:4] = 0  # "prune" half of the first layer's filters
    net.eval()
    train.recalibrate_batchnorm(net, ds, batches=None, batch_size=32)
    assert not net.training and not bn.training  # the mode it had
    x = ds.batch(torch.arange(len(ds)))[0]
    with torch.no_grad():
        pre = conv(x)  # what bn1 sees, over all of the data
    assert torch.allclose(bn.running_mean, pre.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.equal(bn.running_mean[:4], torch.zeros(4))  # pruned filters output exactly 0
    assert (bn.running_mean[4:] - stale[4:]).abs().max() > 1e-3
    assert bn.momentum == 0.1  # restored


def test_recalibrate_batchnorm_leaves_other_models_and_rejects_bad_batches():
    mlp = _digits_mlp()
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    assert train.recalibrate_batchnorm(mlp, data.load_dataset("digits")) is mlp
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    with pytest.raises(ValueError, match="batches must be a positive int or None.*got 0"):
        train.recalibrate_batchnorm(mlp, data.load_dataset("digits"), batches=0)
