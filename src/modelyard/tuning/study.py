"""The Optuna study of a tuning job, kept in the metadata database through Optuna's RDB storage,
so that trial runners in several processes (or on several machines) share one history.

Optuna's tables live beside modelyard's (they share no names; modelyard keeps its schema
revision in its own version table so that Optuna can have Alembic's default one).
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, MissingDependency
from modelyard.training.runner import EarlyStopped
from modelyard.tuning.space import SearchSpace

if TYPE_CHECKING:
    import optuna
    from optuna.pruners import BasePruner
    from optuna.trial import FrozenTrial

#: SQLite writers from several processes wait for each other this long before giving up.
_SQLITE_TIMEOUT_S = 60
_STORAGE_ATTEMPTS = 5
# The storages of the studies open in this process (see close_connections).
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


def _storage(optuna: Any, url: str, engine_kwargs: dict[str, Any]) -> Any:
    """Optuna's storage on ``url``, retried while another process is creating its tables.

    ``RDBStorage`` checks whether its tables exist and then creates them, so processes opening
    a database Optuna has not used yet (two ``tune`` commands at once) can clash: "table
    studies already exists" on SQLite, a duplicate table or key on PostgreSQL. The loser's next
    try finds the tables made. The error is the database driver's own (this layer may not
    import SQLAlchemy), so it is recognised by its words; anything else is raised at once.
    """
    for attempt in range(_STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:
            text = str(exc).lower()
            clash = any(word in text for word in ("already exists", "duplicate", "unique"))
            if not clash or attempt == _STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class TrialPruned(EarlyStopped):
    """Raised from a trial's per-round hook when the pruner stops it; the message says why."""


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # a slimmed-down install
        raise MissingDependency(f"tuning needs optuna ({exc}): pip install optuna") from exc
    return optuna


@contextlib.contextmanager
def open_study(
    url: str,
    name: str,
    *,
    direction: str,
    pruner: BasePruner | None = None,
    create: bool = False,
) -> Iterator[optuna.Study]:
    """The study ``name`` on the database at ``url`` (created when ``create``); its
    connections are closed on exit.

    Raises:
        InvalidInput: the study does not exist (and ``create`` is False).
    """
    optuna = _optuna()
    optuna.logging.set_verbosity(logging.WARNING)  # the job log says what happens, once
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": _SQLITE_TIMEOUT_S}
    storage = _storage(optuna, url, kwargs)
    _OPEN.add(storage)
    try:
        if create:
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction=direction,
                pruner=pruner,
                load_if_exists=True,
            )
        else:
            try:
                study = optuna.load_study(storage=storage, study_name=name, pruner=pruner)
            except KeyError:
                raise InvalidInput(f"tuning job {name!r} has no study") from None
        yield study
    finally:
        storage.remove_session()
        storage.engine.dispose()


def close_connections() -> None:
    """Close the database connections of the studies open in this process; they reconnect on
    next use. Called before a fork: a database connection must not cross into a child (SQLite
    forbids it outright; a PostgreSQL socket would be shared)."""
    for storage in list(_OPEN):
        storage.remove_session()
        storage.engine.dispose()


class PruningHook:
    """A training job's per-round hook: reports the objective to the study and raises
    :class:`TrialPruned` when the pruner says the trial is not worth finishing."""

    def __init__(self, trial: optuna.Trial, objective: str) -> None:
        self._trial = trial
        self._objective = objective
        self.pruned = False

    def __call__(self, step: int, total: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self._objective)
        if value is None:
            return
        self._trial.report(value, step)
        if self._trial.should_prune():
            self.pruned = True
            raise TrialPruned(f"pruned at round {step}/{total}: {self._objective}={value:.6g}")


def warm_start(study: optuna.Study, parent: optuna.Study, space: SearchSpace) -> int:
    """Copy ``parent``'s finished trials whose parameters fit ``space`` into ``study``, as
    prior knowledge for its sampler (SageMaker's warm start). Returns how many were copied."""
    optuna = _optuna()
    distributions = space.distributions()
    copied = []
    for old in parent.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        params = {k: v for k, v in old.params.items() if k in distributions}
        if set(params) != set(distributions):
            continue
        try:  # Optuna refuses a value outside the new range
            copied.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=old.value,
                    user_attrs={"warm_start_from": f"{parent.study_name}#{old.number}"},
                )
            )
        except ValueError:
            continue
    study.add_trials(copied)
    return len(copied)


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the study knows it."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    job: str | None
    intermediate: dict[int, float]


def trial_records(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of the study, in order."""
    return [_record(t) for t in study.get_trials(deepcopy=False)]


def _record(trial: FrozenTrial) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        job=trial.user_attrs.get("job"),
        intermediate=dict(trial.intermediate_values),
    )
