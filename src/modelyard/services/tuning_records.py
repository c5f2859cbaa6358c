"""What the tuning service and its worker processes share: a tuning job's configuration as
recorded in its spec, its trials, and how the best one is chosen."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import InvalidInput
from modelyard.tuning.space import SearchSpace
from modelyard.tuning.strategies import prunes

ACTIVE = (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.STOPPING)
# Metrics where larger is better; everything else (loss, error, rmse…) is minimised unless
# the user says otherwise.
_LARGER_IS_BETTER = ("auc", "accuracy", "acc", "f1", "r2", "precision", "recall", "ndcg", "map")


#: The longest objective metric name (SageMaker's MetricName: 1 to 255 characters).
MAX_OBJECTIVE_CHARS = 255


def check_objective(objective: object) -> None:
    """Refuse an objective that is no metric name.

    Raises:
        InvalidInput: not a string, empty or blank, over ``MAX_OBJECTIVE_CHARS`` characters,
            or holding a control character (a line break); naming it.
    """
    if not isinstance(objective, str):
        raise InvalidInput(
            f"the objective must be a metric's name (validation:auc), got "
            f"{type(objective).__name__} {objective!r}"
        )
    if not objective.strip() or len(objective) > MAX_OBJECTIVE_CHARS:
        raise InvalidInput(
            f"the objective must be a metric's name of 1 to {MAX_OBJECTIVE_CHARS} characters, "
            f"got {objective[:300]!r}"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in objective):
        raise InvalidInput(f"the objective {objective!r} holds a control character")


def named_direction(objective: str) -> bool | None:
    """Whether ``objective`` (``validation:auc``) is better large (True) or small (False), as
    its metric's name says; None when the name does not say."""
    metric = objective.rsplit(":", 1)[-1].split("@")[0].lower()
    if metric in _LARGER_IS_BETTER:
        return True
    if any(word in metric for word in ("loss", "error", "rmse", "mae", "mse", "mape", "deviance")):
        return False
    return None


def infer_maximize(objective: str) -> bool:
    """Whether ``objective`` (``validation:auc``) is to be maximised, from its metric name.

    Raises:
        InvalidInput: when the name does not say; the user must pass the direction.
    """
    direction = named_direction(objective)
    if direction is None:
        raise InvalidInput(
            f"cannot tell whether {objective!r} is better large or small: say whether to "
            "maximize or minimize it"
        )
    return direction


@dataclass(frozen=True)
class TuningConfig:
    """A tuning job's request, as recorded in its spec."""

    objective: str
    maximize: bool
    space: SearchSpace
    static: dict[str, str]
    strategy: str
    max_trials: int
    parallel: int
    early_stopping: bool
    max_failed_trials: int
    seed: int
    warm_start: str | None
    max_rounds: int | None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    @property
    def prunes(self) -> bool:
        return prunes(self.strategy, self.early_stopping)

    @classmethod
    def of(cls, job: Job) -> TuningConfig:
        if job.kind is not JobKind.TUNING:
            raise InvalidInput(f"job {job.name!r} is a {job.kind.value} job, not a tuning job")
        t = job.spec["tuning"]
        return cls(
            objective=t["objective"],
            maximize=t["maximize"],
            space=SearchSpace.parse(t["ranges"]),
            static=dict(job.hyperparameters),
            strategy=t["strategy"],
            max_trials=t["max_trials"],
            parallel=t["parallel"],
            early_stopping=t["early_stopping"],
            max_failed_trials=t["max_failed_trials"],
            seed=t["seed"],
            warm_start=t.get("warm_start"),
            max_rounds=t.get("max_rounds"),
            training={k: v for k, v in job.spec.items() if k != "tuning"},
        )

    def pruner(self) -> Any:
        from modelyard.tuning.strategies import make_pruner

        return make_pruner(self.strategy, self.early_stopping, self.max_rounds)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


@dataclass(frozen=True)
class Trial:
    """One trial of a tuning job: its training job and what came of it."""

    job: Job
    state: str  # the job status, or "Pruned" for a trial the pruner stopped
    value: float | None  # the objective, for a completed trial

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class TuningSummary:
    """A tuning job, its trials (in slot order) and the best one so far."""

    job: Job
    config: TuningConfig
    trials: list[Trial]
    best: Trial | None

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    @classmethod
    def of(cls, job: Job, trial_jobs: Sequence[Job]) -> TuningSummary:
        """The summary of ``job`` from its trial jobs (any order)."""
        config = TuningConfig.of(job)
        trials = [trial_of(t, config) for t in sorted(trial_jobs, key=_slot)]
        return cls(job, config, trials, best_of(trials, config))


def _slot(job: Job) -> tuple[int, str]:
    slot = job.spec.get("trial")
    return (slot if isinstance(slot, int) else -1, job.name)


def trial_of(job: Job, config: TuningConfig) -> Trial:
    """A trial job as a :class:`Trial` (a pruned one is told apart from a stopped one)."""
    state = job.status.value
    if job.status is JobStatus.STOPPED and (job.failure_reason or "").startswith("pruned"):
        state = "Pruned"
    value = job.metrics.get(config.objective) if job.status is JobStatus.COMPLETED else None
    if value is not None and not math.isfinite(value):
        value = None
    return Trial(job, state, value)


def best_of(trials: Sequence[Trial], config: TuningConfig) -> Trial | None:
    """The completed trial with the best objective (the first of equals)."""
    best: Trial | None = None
    for trial in trials:
        if trial.value is None:
            continue
        if best is None or best.value is None or config.better(trial.value, best.value):
            best = trial
    return best


def missing_objective(trials: Sequence[Trial], config: TuningConfig) -> str | None:
    """The reason to give up when a completed trial does not report the objective at all."""
    for trial in trials:
        if trial.job.status is JobStatus.COMPLETED and config.objective not in trial.job.metrics:
            known = ", ".join(sorted(trial.job.metrics)) or "none"
            return (
                f"the objective {config.objective!r} is not among the metrics trial "
                f"{trial.name} reported ({known})"
            )
    return None
