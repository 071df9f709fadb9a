"""One MINT step on a reduced-width ResNet-50, run alone or by torchrun (test_distributed.py).

``python tests/distributed_worker.py TREE OUT`` computes, on one process, what
``torchrun --nproc_per_node N tests/distributed_worker.py TREE OUT`` computes over N ranks:
the dependency matrices of every layer pair (faithful, and published mode with its
independent parent and child rows), then one fine-tuning step of the masked network
with the same global batch. Rank 0 writes both to OUT with the time each took. With
WORKER_CHECKPOINT=PATH, a run on several ranks also trains one epoch of two and leaves its
checkpoint there, and a run on one process resumes it and trains the same two epochs
without a break, to compare. Optional
arguments PER_CLASS GROUPS BATCH STEPS enlarge the work (for timing; defaults 10 4 8 1).
"""
from __future__ import annotations

import copy
import os
import sys

import torch

from mint_teach import data, distributed, models, pipeline, pruning


def main(tree: str, out: str, per_class: int = 10, groups_per_layer: int = 4,
         batch_size: int = 8, steps: int = 1) -> None:
    torch.set_num_threads(1)
    distributed.setup()
    torch.manual_seed(0)
    model = models.build_model("tiny_resnet50", num_classes=4)
    train_set = data.load_dataset("imagefolder", root=tree, image_size=32, num_workers=0)
    rows = data.class_balanced_subset(train_set, per_class, seed=0)
    pairs = models.layer_pairs(model)
    groups = pipeline.pair_groups(model, pairs, groups_per_layer)
    deps, dep_seconds = distributed.timed(distributed.compute_dependencies, model, rows, pairs,
                                          groups, seed=3, device="cpu", progress=False)
    parent_rows, child_rows = pipeline.published_rows(train_set, per_class, seed=0)
    published = distributed.compute_dependencies(model, parent_rows, pairs, groups, seed=3,
                                                 device="cpu", progress=False,
                                                 estimator="published", child_rows=child_rows)
    masks = pruning.masks_from_dependencies(deps, prune_fraction=0.5)
    def fresh():  # the masked network before any step (a pruned one cannot be deep-copied)
        return pruning.apply_masks(copy.deepcopy(model), masks)

    pruned = fresh()
    before = _state(pruned)
    fit = dict(lr=0.1, batch_size=batch_size, seed=5, device="cpu", progress=False,
               batchnorm="frozen")
    history, fit_seconds = distributed.timed(distributed.fit, pruned, rows, epochs=1,
                                             max_steps=steps, **fit)
    result = {"deps": deps, "state": _state(pruned), "loss": history["loss"],
              "world": distributed.world_size(), "dep_seconds": dep_seconds,
              "fit_seconds": fit_seconds, "before": before, "published": published}
    checkpoint = os.environ.get("WORKER_CHECKPOINT")
    if checkpoint and distributed.world_size() > 1:  # stop after epoch 1 of 2, checkpointed
        distributed.fit(fresh(), rows, epochs=2, checkpoint=checkpoint,
                        max_steps=-(-len(rows) // batch_size), **{**fit, "lr": 0.005})
    elif checkpoint:  # resume the other run's checkpoint here, and run the two epochs straight
        resumed, straight = fresh(), fresh()
        distributed.fit(resumed, rows, epochs=2, checkpoint=checkpoint, **{**fit, "lr": 0.005})
        distributed.fit(straight, rows, epochs=2, **{**fit, "lr": 0.005})
        result.update(resumed=_state(resumed), straight=_state(straight))
    if distributed.is_main():
        torch.save(result, out)
    distributed.cleanup()


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))  # optional sizes, for timing
