"""Running one training job's work in the worker process: a built-in algorithm or a
script-mode script, with the job log and progress lines, producing what gets registered.

Progress lines in the log look like ``[progress] 12/100 validation:auc=0.9712`` so that a
watcher (``modelyard train``, ``jobs logs -f``) can draw a progress bar from the log alone.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modelyard.domain import Job
from modelyard.training.joblog import JobLog, LogLimits
from modelyard.training.script import JobStopped

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.training.data import Dataset

PROGRESS_PREFIX = "[progress] "
T = TypeVar("T")
#: ``on_round(step, total, metrics)``: called after each round; may raise to end the training.
RoundHook = Callable[[int, int, dict[str, float]], None]


class EarlyStopped(Exception):
    """Raised by an ``on_round`` hook to end a training early on purpose (a pruned tuning
    trial): the job ends Stopped, with this exception's message as the reason."""


class DataCache:
    """Datasets read once per process: a tuning runner trains many trials on the same
    channels."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str | None, bool], Dataset] = {}

    def read(self, uri: str, target: str | None, require_target: bool) -> Dataset:
        from modelyard.training.data import read_dataset

        key = (uri, target, require_target)
        if key not in self._data:
            self._data[key] = read_dataset(uri, target=target, require_target=require_target)
        return self._data[key]


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished training produced, ready for ``RegistryService.register``."""

    model: Any  # an in-memory model object, or a path to a model file
    flavor: str
    metrics: dict[str, float]
    input_example: Any = None
    #: The training features: the registry stores their profile, and the model's predictions
    #: on them, as the version's baseline (``training/baseline.py``).
    baseline: pd.DataFrame | None = None
    trusted_types: tuple[str, ...] = field(default_factory=tuple)
    #: For classifiers that predict class indices/probabilities: the label of each index.
    classes: tuple[str, ...] = field(default_factory=tuple)


def progress_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """The log line for one step of ``total``."""
    shown = " ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items()))
    return f"{PROGRESS_PREFIX}{step}/{total} {shown}".rstrip()


def parse_progress(line: str) -> tuple[int, int] | None:
    """``(step, total)`` from a progress line, else None."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        step, total = line[len(PROGRESS_PREFIX) :].split(" ", 1)[0].split("/")
        return int(step), int(total)
    except ValueError:
        return None


def run_job(
    job: Job,
    log_path: Path,
    stop: threading.Event,
    register: Callable[[TrainingOutcome], T],
    *,
    on_round: RoundHook | None = None,
    cache: DataCache | None = None,
    log_limits: LogLimits | None = None,
) -> tuple[TrainingOutcome, T]:
    """Do the job's training, writing its log to ``log_path``, and hand the result to
    ``register`` while its files still exist (scratch space is removed afterwards).

    Args:
        on_round: Called after each round of a built-in algorithm (a tuning trial's pruning).
        cache: Reuse datasets read by earlier jobs in this process.
        log_limits: How much of the log is kept (default: :class:`LogLimits`).

    Raises:
        JobStopped, whatever ``on_round`` raises, or any error of the job itself (bad data,
        a crashing script …).
    """
    with JobLog(log_path, log_limits) as log:
        log.write(f"job {job.name}: training model {job.model_name!r}\n")
        if job.spec.get("algorithm"):
            outcome = _builtin(job, log, stop, on_round, cache or DataCache())
            return outcome, register(outcome)
        work = Path(tempfile.mkdtemp(prefix=f"{job.name}-"))
        try:
            outcome = _script(job, log, stop, work)
            return outcome, register(outcome)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _builtin(
    job: Job,
    log: JobLog,
    stop: threading.Event,
    on_round: RoundHook | None,
    cache: DataCache,
) -> TrainingOutcome:
    from modelyard.training.algorithms import get_algorithm
    from modelyard.training.hyperparameters import validate

    spec = job.spec
    algorithm = get_algorithm(spec["algorithm"])
    hp = validate(algorithm.hyperparameters, job.hyperparameters)
    log.write(f"algorithm {algorithm.name}, hyperparameters {hp}\n")
    needs_target = algorithm.supervised
    train = cache.read(spec["train"], spec.get("target"), needs_target)
    validation = (
        cache.read(spec["validation"], spec.get("target"), needs_target)
        if spec.get("validation")
        else None
    )
    log.write(
        f"train: {len(train.features)} rows x {train.features.shape[1]} features "
        f"from {len(train.files)} file(s)\n"
    )

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        log.write(progress_line(step, total, metrics) + "\n")
        if stop.is_set():
            raise JobStopped()
        if on_round is not None:
            on_round(step, total, metrics)

    trained = algorithm.fit(train, validation, hp, progress)
    if stop.is_set():
        raise JobStopped()
    log.write(f"metrics: {trained.metrics}\n")
    return TrainingOutcome(
        model=trained.model,
        flavor=trained.flavor,
        metrics=dict(trained.metrics),
        input_example=trained.input_example,
        baseline=train.features,
        trusted_types=tuple(trained.trusted_types),
        classes=tuple(str(c) for c in trained.classes),
    )


def _script(job: Job, log: JobLog, stop: threading.Event, work: Path) -> TrainingOutcome:
    from modelyard.training.flavor_detect import detect_flavor, find_model_file
    from modelyard.training.metric_definitions import parse_metric_definition
    from modelyard.training.script import run_script

    spec = job.spec
    definitions = [parse_metric_definition(d) for d in spec.get("metric_definitions", [])]
    channels = {
        name: _local_channel(uri, work / "channels" / name)
        for name, uri in (("train", spec["train"]), ("validation", spec.get("validation")))
        if uri
    }
    result = run_script(
        Path(spec["script"]),
        channels=channels,
        hyperparameters=job.hyperparameters,
        work_dir=work / "job",
        log_file=log,
        metric_definitions=definitions,
        stop=stop,
        job_name=job.name,
    )
    if spec.get("flavor"):
        flavor, model_path = spec["flavor"], find_model_file(result.model_dir, spec["flavor"])
    else:
        flavor, model_path = detect_flavor(result.model_dir)
    example, baseline = _describe_data(spec["train"], spec.get("target"))
    return TrainingOutcome(
        model=model_path,
        flavor=flavor,
        metrics=dict(result.metrics),
        input_example=example,
        baseline=baseline,
    )


def _local_channel(uri: str, folder: Path) -> Path:
    """A local folder (or file) for a channel; remote data is copied down first."""
    if "://" not in uri or uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    import fsspec

    from modelyard.storage.filesystems import GLOB_CHARS, is_pattern

    fs, path = fsspec.core.url_to_fs(uri)
    folder.mkdir(parents=True, exist_ok=True)
    if any(c in path for c in GLOB_CHARS) and not is_pattern(fs, path):
        _get_literal(fs, path, folder)  # fsspec's get would read the name as a glob
    else:
        fs.get(path, str(folder) + "/", recursive=True)
    return folder


def _get_literal(fs: Any, path: str, folder: Path) -> None:
    """Copy the file or folder ``path`` (a name holding glob characters) into ``folder`` as
    ``fs.get`` lays a plain one out: ``folder/<its name>``, a folder's files below it."""
    root = str(fs.info(path)["name"]).rstrip("/")
    base = folder / posixpath.basename(root)
    if fs.isfile(root):
        fs.get_file(root, str(base))
        return
    for remote in fs.find(root):
        local = base / posixpath.relpath(remote, root)
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))


def _describe_data(uri: str, target: str | None) -> tuple[Any, pd.DataFrame | None]:
    """An input example and the features of a script's training data (for its baseline),
    when it is a table modelyard can read (a script may use any format; then there are
    none)."""
    from modelyard.errors import ModelyardError
    from modelyard.training.data import read_dataset

    try:
        data = read_dataset(uri, target=target, require_target=False)
    except ModelyardError:
        return None, None
    return data.features.head(5), data.features
