"""Answer checkers for the notebooks' exercises: right or not, and if not, what is off.

Every check takes the exercise's inputs and the student's ``answer``, prints one friendly line
and returns ``True`` (right) or ``False`` (not yet). A right answer prints a line starting with
``✔ correct``; anything else starts with ``✘ not yet`` and says what looks off, recognising the
usual slips (a fraction instead of a percent, a missing ``1 -``, a per-layer instead of a
global threshold, ...). An ``answer`` still set to ``None`` gets a reminder, not an error.

The reference answers come from the package's own functions, so a check never disagrees with
what the rest of the course computes. Each notebook's checkers sit in one module a teacher can
read beside the notebook; ``common`` holds the verdict line and the answer readers they share.
Every checker is importable from here, as the notebooks call them (``mt.checks.check_hp``):

- ``nb00_quickstart``: ``check_sparsity``, the share of zero weights in some layers (section 7)
- ``nb01_activations``: ``check_conv_average``, a conv layer's maps averaged over space;
  ``check_per_class``, a class-balanced sample of rows, no repeats (section 2)
- ``nb02_graphs``: ``check_cross_edges``, the Friedman-Rafsky count R of a tree (4a, 4c; used
  in notebook 03 too); ``check_hp``, the Henze-Penrose divergence from R, m and n (4a)
- ``nb03_mutual_information``: ``check_gaussian_mi``, the Shannon MI of a bivariate Gaussian
- ``nb04_mint_mnist``: ``check_groups``, contiguous unit groups (section 3);
  ``check_threshold``, the global threshold delta for a fraction q (section 5)
- ``nb05_mint_cifar10``: ``check_dead_units``, parent units with no connection left (5)
- ``nb06_beyond_accuracy``: ``check_ece``, the expected calibration error (section 8)
- ``nb07_reproduction``: ``check_block_pvalues``, block p-values against the permuted-child
  null (section 4e)

Examples
--------
>>> from mint_teach import checks
>>> checks.check_hp(3, 4, 4, 0.25)
✔ correct: D_HP = 1 - 3 * (4 + 4) / (2 * 4 * 4) = 0.2500.
True
>>> checks.check_gaussian_mi(0.5, None)
✘ not yet: `answer` is still None. Replace None with your code and run the cell again.
False
"""
from __future__ import annotations

from .common import CORRECT, NOT_YET
from .nb00_quickstart import check_sparsity
from .nb01_activations import check_conv_average, check_per_class
from .nb02_graphs import check_cross_edges, check_hp
from .nb03_mutual_information import check_gaussian_mi
from .nb04_mint_mnist import check_groups, check_threshold
from .nb05_mint_cifar10 import check_dead_units
from .nb06_beyond_accuracy import check_ece
from .nb07_reproduction import check_block_pvalues

__all__ = [
    "CORRECT",
    "NOT_YET",
    "check_block_pvalues",
    "check_conv_average",
    "check_cross_edges",
    "check_dead_units",
    "check_ece",
    "check_gaussian_mi",
    "check_groups",
    "check_hp",
    "check_per_class",
    "check_sparsity",
    "check_threshold",
]
