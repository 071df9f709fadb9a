"""MINT past one machine, with PyTorch's own engine: ``torch.distributed`` under ``torchrun``.

The same steps as on one process, spread over ranks (one per GPU, or per CPU process with the
gloo backend):

- activations (section 2): each rank runs the network on its own contiguous share of the
  class-balanced rows; the shares are gathered, in order, so every rank holds the same
  ``(rows, units)`` matrices a single process would;
- dependencies (section 4): each layer pair's child groups are cut into runs, the runs are
  dealt to the ranks (largest first, to the least loaded rank), each rank estimates its runs
  with :func:`mint_teach.mi.dependency_matrix` and the pieces are gathered, so every rank holds
  the same matrices ``D``; one shuffle of the rows per pair and seed makes a run of child
  groups exactly the rows of the whole matrix;
- fine-tuning (section 6): :func:`fit` trains with ``DistributedDataParallel`` and a
  ``DistributedSampler``; rank 0 alone writes checkpoints (atomically) and shows progress,
  and a checkpoint resumes on any number of ranks.

Launch any script or the command line with ``torchrun --nproc_per_node N`` (several nodes:
torchrun's ``--nnodes`` and ``--rdzv-endpoint``). Without torchrun every function here
falls back to the single-process one.
"""
from __future__ import annotations

import datetime
import math
import os
import time
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from ._validation import check_choice, check_count
from .config import resolve_device, write_atomic
from .groups import split_groups
from .train import lr_schedule, sgd_step

__all__ = [
    "all_gather_rows",
    "barrier",
    "cleanup",
    "collect_activations",
    "compute_dependencies",
    "evaluate",
    "fit",
    "is_main",
    "local_device",
    "local_rank",
    "rank",
    "save_atomic",
    "check_environment",
    "setup",
    "shard",
    "split_work",
    "timed",
    "world_size",
]


# ----------------------------------------------------------------------------- ranks

def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; 0 otherwise)."""
    return _env_int("LOCAL_RANK", 0)


_LAUNCH = "start the ranks with torchrun (e.g. torchrun --nproc_per_node 2 ...)"
TIMEOUT_ENV = "MINT_TEACH_DIST_TIMEOUT"  # seconds setup() waits for every rank to join
DEFAULT_TIMEOUT_S = 300.0


def _env_int(name: str, default: int | None = None, *, low: int = 0) -> int:
    """An integer environment variable of torchrun, checked; ValueError naming it otherwise."""
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        if default is None:
            raise ValueError(f"{name} is not set, but WORLD_SIZE={os.environ.get('WORLD_SIZE')} "
                             f"asks for several ranks; {_LAUNCH}, which sets it")
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{name} must be an integer >= {low}; got {text!r}") from None
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value}")
    return value


def check_environment() -> tuple[int, int]:
    """Check torchrun's variables before joining a process group; return (rank, world size).

    WORLD_SIZE unset or 1 means one process and nothing else is read. With WORLD_SIZE above
    1, RANK (0 <= RANK < WORLD_SIZE), LOCAL_RANK (>= 0, default 0), MASTER_ADDR and
    MASTER_PORT (1 to 65535) must be set, as torchrun sets them; anything else raises
    ValueError naming the variable, instead of a wait that never ends.
    """
    world = _env_int("WORLD_SIZE", 1, low=1)
    if world == 1:
        return 0, 1
    rank_ = _env_int("RANK")
    if rank_ >= world:
        raise ValueError(f"RANK must be below WORLD_SIZE={world} (ranks 0 to {world - 1}); "
                         f"got {rank_}")
    _env_int("LOCAL_RANK", 0)
    if not os.environ.get("MASTER_ADDR", "").strip():
        raise ValueError(f"MASTER_ADDR is not set, but WORLD_SIZE={world} asks for several "
                         f"ranks; it names the host of rank 0; {_LAUNCH}, which sets it")
    port = _env_int("MASTER_PORT", low=1)
    if port > 65535:
        raise ValueError(f"MASTER_PORT must be a port number from 1 to 65535; got {port}")
    return rank_, world


def _timeout_s(timeout: float | None) -> float:
    """The rendezvous timeout: the argument, else MINT_TEACH_DIST_TIMEOUT, else 300 s."""
    name, value = "timeout", timeout
    if value is None:
        name, text = TIMEOUT_ENV, os.environ.get(TIMEOUT_ENV, "").strip()
        try:
            value = float(text) if text else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds > 0; got {text!r}"
                             ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
    return float(value)


def is_main() -> bool:
    """True on rank 0, the one rank that writes files, logs and shows progress."""
    return rank() == 0


def setup(backend: str | None = None, *, timeout: float | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    A no-op returning False when the process was not started by torchrun with more than one
    rank (``WORLD_SIZE`` unset or 1). The variables are checked first (``check_environment``):
    a RANK outside the world, a missing MASTER_ADDR or a port that is not a number raise
    ValueError naming it. ``backend`` defaults to NCCL with GPUs, else gloo; with GPUs each
    rank uses the one of its LOCAL_RANK, so ``device="cuda"`` means that GPU. ``timeout``
    (seconds; default the environment variable MINT_TEACH_DIST_TIMEOUT, else 300) bounds the
    wait for the other ranks: a rendezvous that cannot complete raises TimeoutError saying
    who was waited for. Returns True when a process group is active.
    """
    if _active():
        return True
    rank_, world = check_environment()
    if world == 1:
        return False
    seconds = _timeout_s(timeout)
    cuda = torch.cuda.is_available()
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None (auto); got {backend!r}")
    if cuda:
        if local_rank() >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank()} has no GPU: this machine has "
                             f"{torch.cuda.device_count()} (cuda:0 to "
                             f"cuda:{torch.cuda.device_count() - 1})")
        torch.cuda.set_device(local_rank())
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
    except dist.DistError as err:  # the store or the other ranks never answered
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        raise TimeoutError(
            f"rank {rank_} of WORLD_SIZE={world} could not join the process group at {where} "
            f"within {seconds:g} s ({' '.join(str(err).split())[:200]}); every rank 0 to "
            f"{world - 1} must start with the same MASTER_ADDR and MASTER_PORT, rank 0 "
            f"first; {_LAUNCH}, or set {TIMEOUT_ENV} to wait longer") from None
    return True


def cleanup() -> None:
    """Leave the process group (safe to call when there is none)."""
    if _active():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for on one process)."""
    if _active():
        dist.barrier()


def local_device(device=None) -> torch.device:
    """This rank's device: its own GPU (LOCAL_RANK) when CUDA is asked for or auto, else CPU."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and _active():
        return torch.device("cuda", local_rank())
    return dev


def _comm_device() -> torch.device:
    """Where tensors must live for collectives: the GPU for NCCL, the CPU for gloo."""
    if _active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ----------------------------------------------------------------------------- shards and gathers

def shard(n: int, *, rank_: int | None = None, world: int | None = None) -> range:
    """This rank's contiguous share of ``range(n)``; shares differ in size by at most one."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return range(n * r // w, n * (r + 1) // w)


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order, on every rank.

    Ranks may hold different numbers of rows (the other dims must agree). Returns ``tensor``
    itself on one process; the result is on the CPU.
    """
    if not _active():
        return tensor.cpu()
    dev = _comm_device()
    local = tensor.to(dev).contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=dev) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], device=dev))
    most = int(max(s.item() for s in sizes))
    padded = torch.zeros((most, *local.shape[1:]), dtype=local.dtype, device=dev)
    padded[:local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(s.item())] for p, s in zip(parts, sizes)]).cpu()


def _gather_objects(obj) -> list:
    if not _active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def _rows_subset(rows, keep: Sequence[int]) -> Subset:
    """``rows[keep]`` as a flat Subset of the base dataset (fast batching still applies)."""
    if isinstance(rows, Subset):
        return Subset(rows.dataset, [rows.indices[i] for i in keep])
    return Subset(rows, list(keep))


# ----------------------------------------------------------------------------- activations

def collect_activations(model: nn.Module, rows, layers: Sequence[str], *, device=None,
                        progress: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`mint_teach.activations.collect` with the rows shared out over the ranks (sec. 2).

    Each rank records the activations of its contiguous share of ``rows`` (see :func:`shard`)
    and the shares are gathered, so every rank returns the matrices of all rows in their
    original order, as one process would.
    """
    from .activations import collect

    world = world_size()
    if len(rows) < world:
        raise ValueError(f"rows has {len(rows)} items, fewer than the {world} ranks")
    mine = _rows_subset(rows, shard(len(rows)))
    acts, labels = collect(model, mine, layers, device=local_device(device),
                           progress=progress and is_main())
    return {name: all_gather_rows(a) for name, a in acts.items()}, all_gather_rows(labels)


# ----------------------------------------------------------------------------- dependencies

def split_work(groups: dict, world: int) -> list[list[tuple[tuple[str, str], int, int]]]:
    """Deal the dependency work of all pairs to ``world`` ranks (section 4d).

    Each pair's child groups are cut into at most ``world`` contiguous runs ``[c0, c1)``;
    a run costs ``(c1 - c0) * G_p`` estimates. Runs go, largest first, to the rank with the
    least work so far. Returns one list of ``(pair, c0, c1)`` per rank; every rank computes
    the same deal from the same ``groups``.
    """
    items = []
    for pair, (g_c, g_p) in groups.items():
        for c0, c1 in ((g_c * k // world, g_c * (k + 1) // world) for k in range(world)):
            if c1 > c0:
                items.append((pair, c0, c1, (c1 - c0) * g_p))
    items.sort(key=lambda it: -it[3])  # stable: ties keep pair order
    load, deal = [0] * world, [[] for _ in range(world)]
    for pair, c0, c1, cost in items:
        r = min(range(world), key=lambda k: (load[k], k))
        load[r] += cost
        deal[r].append((pair, c0, c1))
    return deal


def compute_dependencies(model: nn.Module, rows, pairs, groups, *, seed: int = 0, device=None,
                         progress: bool = True, estimator: str = "faithful",
                         child_rows=None) -> dict:
    """:func:`mint_teach.pipeline.compute_dependencies` spread over the ranks (sections 2-4).

    Activations are collected by shares (:func:`collect_activations`), the runs of child
    groups are dealt out (:func:`split_work`) and estimated on each rank's own device with
    :func:`mint_teach.mi.dependency_matrix` (``estimator`` is passed to it; ``child_rows`` as
    in the pipeline's function), and the pieces are gathered: every rank returns the same
    ``{(parent, child): D}``, equal to the single-process result for the same seed. On one
    process this is the pipeline's function.
    """
    from . import mi, pipeline

    if world_size() == 1:
        return pipeline.compute_dependencies(model, rows, pairs, groups, seed=seed,
                                             device=device, progress=progress,
                                             estimator=estimator, child_rows=child_rows)
    dev = local_device(device)
    layers = list(dict.fromkeys(name for pair in pairs for name in pair))
    acts, _ = collect_activations(model, rows, layers, device=dev, progress=progress)
    child_acts = acts
    if child_rows is not None:
        child_acts, _ = collect_activations(model, child_rows, layers, device=dev,
                                            progress=progress)
    mine = split_work({tuple(p): groups[tuple(p)] for p in pairs}, world_size())[rank()]
    pieces = {}
    for (parent, child), c0, c1 in tqdm(mine, desc=f"dependencies (rank 0 of {world_size()})",
                                        disable=not (progress and is_main())):
        g_c, g_p = groups[(parent, child)]
        bounds = split_groups(child_acts[child].shape[1], g_c)
        cols = slice(bounds[c0][0], bounds[c1 - 1][1])
        pieces[((parent, child), c0)] = mi.dependency_matrix(
            acts[parent], child_acts[child][:, cols], parent_groups=g_p, child_groups=c1 - c0,
            seed=seed, device=dev, progress=False, estimator=estimator).cpu()
    gathered = {}
    for part in _gather_objects(pieces):
        gathered.update(part)
    return {tuple(pair): torch.cat([d for (p, _), d in sorted(
        ((key, d) for key, d in gathered.items() if key[0] == tuple(pair)),
        key=lambda kv: kv[0][1])]) for pair in pairs}


# ----------------------------------------------------------------------------- fine-tuning

def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through ``config.write_atomic`` (a unique temporary file, then
    ``os.replace``); rank 0 only (other ranks return at once)."""
    if is_main():
        write_atomic(path, lambda f: torch.save(obj, f))


def _loader(data, batch_size: int, seed: int) -> tuple[DataLoader, DistributedSampler]:
    base = data.dataset if isinstance(data, Subset) else data
    sampler = DistributedSampler(data, num_replicas=world_size(), rank=rank(), shuffle=True,
                                 seed=seed, drop_last=False)
    workers = getattr(base, "num_workers", 0)
    loader = DataLoader(data, batch_size=batch_size // world_size(), sampler=sampler,
                        num_workers=workers, pin_memory=torch.cuda.is_available(),
                        persistent_workers=workers > 0)
    return loader, sampler


def _check_fit_args(epochs, batch_size, batchnorm) -> None:
    check_count("epochs", epochs, low=0)
    if check_count("batch_size", batch_size) % world_size():
        raise ValueError(f"batch_size must be a positive multiple of the {world_size()} ranks "
                         f"(it is the global batch); got {batch_size!r}")
    check_choice("batchnorm", batchnorm, ("local", "frozen"))


def fit(model: nn.Module, train_data, *, epochs: int = 10, lr: float = 0.05,
        momentum: float = 0.9, weight_decay: float = 5e-4, batch_size: int = 128,
        schedule: str = "cosine", augment=None, device=None, seed: int = 0,
        progress: bool = True, desc: str = "train", checkpoint: str | os.PathLike | None = None,
        batchnorm: str = "local", max_steps: int | None = None, eval_data=None,
        milestones: Sequence[float] = (0.5, 0.75)) -> dict:
    """:func:`mint_teach.train.fit` with ``DistributedDataParallel`` over all ranks (section 6).

    ``batch_size`` is the global batch: each of the ``N`` ranks takes ``batch_size / N`` rows
    of it. A ``DistributedSampler`` seeded with ``seed`` draws one permutation per epoch, so
    step ``s`` trains on the same global batch for any ``N`` and DDP's averaged gradient is the
    one process's gradient of that batch. ``schedule="step"`` multiplies the learning rate by
    0.1 at each of ``milestones`` (fractions of all steps). ``batchnorm="local"`` (the usual
    DDP recipe) has each rank normalise its own share of the batch; ``"frozen"`` keeps batch
    norm in eval mode, and then the weights equal one process's to float rounding. Masks set by
    :func:`mint_teach.pruning.apply_masks` stay exactly zero. ``checkpoint``: rank 0 writes the
    training state there after every epoch (:func:`save_atomic`) and a run with the same path
    resumes, on any number of ranks. ``max_steps`` stops early (timing runs). On one process it
    is the same loop without DDP. Returns the history (``loss``, ``train_acc``, and
    ``test_acc`` with ``eval_data``), summed over ranks.
    """
    from .train import seed_everything

    _check_fit_args(epochs, batch_size, batchnorm)
    dev = local_device(device)
    seed_everything(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1 + rank())
    loader, sampler = _loader(train_data, batch_size, seed)
    model.to(dev)
    net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
        if _active() else model
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay, nesterov=momentum > 0)
    sched = lr_schedule(opt, schedule, max(1, epochs * len(loader)), tuple(milestones))
    history, first = {"loss": [], "train_acc": []}, 0
    if eval_data is not None:
        history["test_acc"] = []
    barrier()  # a checkpoint being replaced by rank 0 is never read half-way
    if checkpoint is not None and os.path.isfile(checkpoint):
        state = torch.load(checkpoint, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, first = state["history"], state["epoch"]
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
    bar = tqdm(total=epochs * len(loader), initial=first * len(loader), desc=desc,
               disable=not (progress and is_main()), leave=False, mininterval=1.0)
    steps = 0
    for epoch in range(first, epochs):
        sampler.set_epoch(epoch)
        stats = _epoch(net, model, loader, opt, sched, dev, augment, aug_gen, batchnorm, bar,
                       None if max_steps is None else max_steps - steps)
        steps += int(stats[3].item())
        history["loss"].append(stats[0].item() / max(stats[2].item(), 1))
        history["train_acc"].append(stats[1].item() / max(stats[2].item(), 1))
        if eval_data is not None:
            history["test_acc"].append(evaluate(model, eval_data, device=dev))
        if checkpoint is not None and int(stats[3].item()) == len(loader):  # a whole epoch
            save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "history": history,
                         "epoch": epoch + 1, "world_size": world_size(),
                         "torch_rng": torch.get_rng_state()}, checkpoint)
            barrier()
        if max_steps is not None and steps >= max_steps:
            break
    bar.close()
    return history


def _epoch(net, model, loader, opt, sched, dev, augment, aug_gen, batchnorm, bar, limit):
    """One pass over this rank's share; returns (loss sum, correct, rows, steps) over all ranks."""
    net.train()
    if batchnorm == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    stats = torch.zeros(4, dtype=torch.float64)
    for x, y in loader:
        if limit is not None and stats[3] >= limit:
            break
        loss, right = sgd_step(net, x, y, opt, sched, device=dev, augment=augment,
                               generator=aug_gen)
        stats += torch.tensor([loss * len(y), right, len(y), 1], dtype=torch.float64)
        bar.update()
    if _active():
        steps = stats[3].clone()
        stats = stats.to(_comm_device())
        dist.all_reduce(stats)
        stats = stats.cpu()
        stats[3] = steps  # steps are per rank, not summed
    return stats


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 256, device=None) -> float:
    """Top-1 accuracy with the rows of ``data`` shared out over the ranks; the same on all."""
    from .train import predict

    if len(data) < world_size():
        raise ValueError(f"data has {len(data)} items, fewer than the {world_size()} ranks")
    logits, labels = predict(model, _rows_subset(data, shard(len(data))),
                             batch_size=batch_size, device=local_device(device))
    counts = torch.tensor([(logits.argmax(1) == labels).sum().item(), len(labels)],
                          dtype=torch.float64)
    if _active():
        counts = counts.to(_comm_device())
        dist.all_reduce(counts)
    return (counts[0] / counts[1]).item()


def timed(function, *args, **kwargs) -> tuple[object, float]:
    """``function(*args, **kwargs)`` and its wall-clock seconds, measured between barriers."""
    barrier()
    start = time.perf_counter()
    out = function(*args, **kwargs)
    barrier()
    return out, time.perf_counter() - start
