"""One MINT step on a reduced-width ResNet-50, run alone or by torchrun (test_distributed.py).

``python tests/distributed_worker.py TREE OUT`` computes, on one process, what
``torchrun --nproc_per_node N tests/distributed_worker.py TREE OUT`` computes over N ranks:
the dependency matrices of every layer pair (faithful, and published mode with its
independent parent and child rows), then one fine-tuning step of the masked network
with the same global batch. Rank 0 writes both to OUT with the time each took. Optional
arguments PER_CLASS GROUPS BATCH STEPS enlarge the work (for timing; defaults 10 4 8 1).
"""
from __future__ import annotations

import copy
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
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    before = {k: v.detach().clone() for k, v in pruned.state_dict().items()}
    history, fit_seconds = distributed.timed(
        distributed.fit, pruned, rows, epochs=1, lr=0.1, batch_size=batch_size, seed=5,
        device="cpu", progress=False, batchnorm="frozen", max_steps=steps)
    if distributed.is_main():
        state = {k: v.detach().clone() for k, v in pruned.state_dict().items()}
        torch.save({"deps": deps, "state": state, "loss": history["loss"],
                    "world": distributed.world_size(), "dep_seconds": dep_seconds,
                    "fit_seconds": fit_seconds, "before": before,
                    "published": published}, out)
    distributed.cleanup()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))  # optional sizes, for timing
