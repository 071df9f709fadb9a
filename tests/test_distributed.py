"""MINT over several processes with torch.distributed: shares, the deal of work, DDP, torchrun."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mint_teach import data, distributed, mi, models

ROOT = Path(__file__).resolve().parents[1]


def test_shards_cover_the_rows_in_order():
    for n, world in [(10, 3), (7, 7), (100, 8), (5, 2)]:
        parts = [distributed.shard(n, rank_=r, world=world) for r in range(world)]
        assert [i for p in parts for i in p] == list(range(n))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_the_deal_covers_every_block_once_and_balances():
    groups = {("a", "b"): (7, 5), ("b", "c"): (3, 9), ("c", "d"): (1, 2), ("d", "e"): (16, 16)}
    world = 3
    deal = distributed.split_work(groups, world)
    assert len(deal) == world
    runs = sorted(item for part in deal for item in part)
    for pair, (g_c, g_p) in groups.items():
        mine = sorted((c0, c1) for p, c0, c1 in runs if p == pair)
        covered = [j for c0, c1 in mine for j in range(c0, c1)]
        assert covered == list(range(g_c))  # contiguous runs, each child group once
    loads = [sum((c1 - c0) * groups[p][1] for p, c0, c1 in part) for part in deal]
    biggest = max((c1 - c0) * groups[p][1] for p, c0, c1 in runs)
    assert max(loads) - min(loads) <= biggest
    assert distributed.split_work(groups, world) == deal  # every rank deals the same


@pytest.mark.parametrize("estimator", ["faithful", "published"])
def test_runs_of_child_groups_give_the_rows_of_the_whole_matrix(estimator):
    # the premise of the split: one shuffle per pair and seed, whatever the child columns
    g = torch.Generator().manual_seed(0)
    parent, child = torch.randn(45, 12, generator=g), torch.randn(45, 10, generator=g)
    child[:, :5] += parent[:, :5]
    whole = mi.dependency_matrix(parent, child, parent_groups=4, child_groups=5, seed=7,
                                 progress=False, estimator=estimator)
    bounds = mi.split_groups(10, 5)
    pieces = [mi.dependency_matrix(parent, child[:, bounds[c0][0]:bounds[c1 - 1][1]],
                                   parent_groups=4, child_groups=c1 - c0, seed=7, progress=False,
                                   estimator=estimator)
              for c0, c1 in [(0, 2), (2, 3), (3, 5)]]
    assert torch.equal(torch.cat(pieces), whole)
    assert whole.std() > 0


def test_one_process_fit_resumes_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("mlp", in_features=12, num_classes=3)  # dropout: RNG state too
    x, y = torch.randn(24, 12), torch.arange(24) % 3
    ds = torch.utils.data.TensorDataset(x, y)
    kw = dict(epochs=2, lr=0.05, batch_size=8, seed=1, progress=False, device="cpu")
    straight = copy.deepcopy(model)
    distributed.fit(straight, ds, **kw)
    path = tmp_path / "state.pt"
    first = copy.deepcopy(model)
    distributed.fit(first, ds, **kw, checkpoint=path, max_steps=3)  # stops after epoch 1
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    resumed = copy.deepcopy(model)
    history = distributed.fit(resumed, ds, **kw, checkpoint=path)
    assert len(history["loss"]) == 2
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert not torch.equal(straight.fc3.weight, model.fc3.weight)


def test_fit_rejects_bad_arguments():
    model = torch.nn.Linear(2, 2)
    ds = torch.utils.data.TensorDataset(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="batchnorm must be"):
        distributed.fit(model, ds, batchnorm="sync", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        distributed.fit(model, ds, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="schedule"):
        distributed.fit(model, ds, schedule="linear", epochs=1, progress=False)


def _run(args: list[str], out: Path, checkpoint: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "WORKER_CHECKPOINT": str(checkpoint)}
    done = subprocess.run([sys.executable, *args, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return torch.load(out, weights_only=False)


def test_torchrun_two_ranks_match_one_process(tmp_path):
    tree = data.synthetic_image_tree(tmp_path / "tree", classes=4, train_per_class=12,
                                     val_per_class=2, size=36)
    worker = [str(ROOT / "tests" / "distributed_worker.py"), str(tree)]
    checkpoint = tmp_path / "finetune.state.pt"
    two = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                *worker], tmp_path / "two.pt", checkpoint)
    assert torch.load(checkpoint, weights_only=True)["world_size"] == 2
    one = _run(worker, tmp_path / "one.pt", checkpoint)  # resumes the 2-rank checkpoint
    assert (one["world"], two["world"]) == (1, 2)
    assert one["deps"].keys() == two["deps"].keys() and len(one["deps"]) == 32
    for pair, d in one["deps"].items():
        assert torch.equal(d, two["deps"][pair]), pair  # the same matrices, bit for bit
        assert torch.equal(one["published"][pair], two["published"][pair]), pair
    assert not all(torch.equal(d, one["published"][p]) for p, d in one["deps"].items())
    moved, masked = 0.0, 0
    for name, w in one["state"].items():
        torch.testing.assert_close(two["state"][name], w, atol=1e-6, rtol=1e-5, msg=name)
        if name.endswith("weight_orig"):
            moved = max(moved, (w - one["before"][name]).abs().max().item())
            masked += int((one["state"][name.replace("_orig", "_mask")] == 0).sum())
    assert masked > 0  # the step ran on a pruned network
    assert moved > 1e-3  # the step changed the weights, well above the tolerance
    # epoch 1 on two ranks, epoch 2 resumed on one process == both epochs on one process
    for name, w in one["straight"].items():
        assert torch.isfinite(w.float()).all(), name
        torch.testing.assert_close(one["resumed"][name], w, atol=1e-5, rtol=1e-4, msg=name)
    assert (one["straight"]["fc.weight"] - one["before"]["fc.weight"]).abs().max() > 1e-3
