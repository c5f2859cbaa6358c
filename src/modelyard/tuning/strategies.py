"""Search strategies: which Optuna sampler proposes trials and which pruner stops bad ones early.

- ``bayesian``: TPE (Optuna's Tree-structured Parzen Estimator), the role SageMaker's Bayesian
  strategy plays.
- ``random``: independent uniform (or log-uniform) draws.
- ``grid``: every point of the grid, each once, in random order.
- ``hyperband``: TPE proposals with Hyperband pruning on the per-round objective.

``early_stopping`` adds median-rule pruning (SageMaker's ``TrainingJobEarlyStoppingType=Auto``)
to the first three. Samplers keep no state of their own that matters (the history is in the
study), so each trial gets a fresh sampler seeded from the job's seed and its slot: trials
proposed by several processes at once do not repeat each other, and a run is reproducible.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput
from modelyard.tuning.space import SearchSpace

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

STRATEGIES = ("bayesian", "random", "grid", "hyperband")
#: Trials with random proposals before TPE starts modelling (Optuna's default is 10).
TPE_STARTUP_TRIALS = 10


def check_strategy(strategy: str) -> str:
    """Raises InvalidInput for an unknown strategy."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return strategy


def prunes(strategy: str, early_stopping: bool) -> bool:
    """Whether trials report per-round values and may be stopped early."""
    return strategy == "hyperband" or early_stopping


def trial_seed(seed: int, slot: int) -> int:
    """The sampler seed for the trial in ``slot`` (0, 1, …) of a job seeded with ``seed``."""
    return (seed * 1_000_003 + slot * 7_919 + 1) % (2**32)


def make_sampler(strategy: str, space: SearchSpace, seed: int, slot: int) -> BaseSampler:
    """A sampler for the trial in ``slot`` of a job seeded with ``seed``."""
    import optuna

    check_strategy(strategy)
    if strategy in ("random", "grid"):  # a grid trial's point is enqueued (grid_point)
        return optuna.samplers.RandomSampler(seed=trial_seed(seed, slot))
    return optuna.samplers.TPESampler(
        seed=trial_seed(seed, slot), n_startup_trials=TPE_STARTUP_TRIALS
    )


def grid_point(space: SearchSpace, seed: int, slot: int) -> dict[str, Any]:
    """The grid point of trial ``slot``: every point once, in an order shuffled by ``seed``.

    Raises:
        InvalidInput: the space is not a grid (see ``SearchSpace.grid``).
    """
    grid = space.grid()
    names = list(grid)
    sizes = [len(grid[n]) for n in names]
    order = list(range(math.prod(sizes)))
    random.Random(seed).shuffle(order)
    index = order[slot % len(order)]
    point: dict[str, Any] = {}
    for name, size in zip(reversed(names), reversed(sizes), strict=True):
        index, position = divmod(index, size)
        point[name] = grid[name][position]
    return point


def make_pruner(strategy: str, early_stopping: bool, max_rounds: int | None) -> BasePruner:
    """The study's pruner. ``max_rounds`` is the most rounds a trial trains (Hyperband's
    maximum resource), when known."""
    import optuna

    if strategy == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_rounds or "auto", reduction_factor=3
        )
    if early_stopping:
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()
