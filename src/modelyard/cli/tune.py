"""``modelyard tune NAME …`` and ``modelyard tune show|list|stop``: hyperparameter tuning.

``tune NAME`` submits a tuning job (its coordinator runs in a worker process) and, unless
``--no-wait``, follows it: a progress bar of finished trials on a terminal, only the result in
a pipe or a log.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from modelyard.cli.context import platform
from modelyard.cli.options import pairs
from modelyard.cli.render import console, print_json, to_jsonable
from modelyard.cli.training_options import (
    AlgorithmOpt,
    DescriptionOpt,
    FlavorOpt,
    MetricDefinitionsOpt,
    ScriptOpt,
    TargetOpt,
    TrainData,
    TrustCodeOpt,
    TrustPickleOpt,
    ValidationOpt,
    WaitOpt,
)
from modelyard.cli.waiting import interrupted_says_so
from modelyard.domain import Job, Trust
from modelyard.domain.counts import MAX_LIMIT
from modelyard.errors import JobFailed
from modelyard.services.jobs import failure_of
from modelyard.services.tuning import TuningService, TuningSummary


class _StartByDefault(TyperGroup):
    """``tune NAME …`` starts a job; ``tune show|list|stop …`` are subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="tune",
    cls=_StartByDefault,
    help=(
        "Tune hyperparameters: `modelyard tune NAME --algorithm xgboost --train … "
        "--objective validation:auc --range max_depth=int:3:10 …`; then "
        "`tune show JOB`, `tune list`, `tune stop JOB`, `tune join JOB` (on another machine)."
    ),
    no_args_is_help=True,
)

JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Tuning job name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]


def _service() -> TuningService:
    return platform().tuning


@app.command("start", hidden=True)
def start(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model to register the best as.")],
    train_data: TrainData,
    objective: Annotated[
        str, typer.Option(help="Metric to optimise, e.g. validation:auc (a trial metric).")
    ],
    range_: Annotated[
        list[str],
        typer.Option(
            "--range",
            help="NAME=int:LOW:HIGH[:log|:step=S], NAME=float:LOW:HIGH[:log|:step=S] or "
            "NAME=cat:A,B (repeatable).",
        ),
    ],
    algorithm: AlgorithmOpt = None,
    script: ScriptOpt = None,
    validation: ValidationOpt = None,
    target: TargetOpt = None,
    maximize: Annotated[
        bool | None,
        typer.Option("--maximize/--minimize", help="Direction (default: from the metric's name)."),
    ] = None,
    hp: Annotated[
        list[str] | None, typer.Option("--hp", help="Fixed hyperparameter k=v (repeatable).")
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="bayesian (TPE), random, grid or hyperband.")
    ] = "bayesian",
    max_trials: Annotated[int, typer.Option(help="Trials to run.")] = 20,
    parallel: Annotated[int, typer.Option(help="Trials at once, each in its own process.")] = 1,
    early_stopping: Annotated[
        bool, typer.Option(help="Prune trials whose per-round objective trails the median.")
    ] = False,
    max_failed_trials: Annotated[
        int | None,
        typer.Option(help="Failed trials tolerated before the job fails (default max_trials/5)."),
    ] = None,
    warm_start: Annotated[
        str | None, typer.Option(help="A finished tuning job whose trials seed this search.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the proposals.")] = None,
    flavor: FlavorOpt = None,
    metric_definition: MetricDefinitionsOpt = None,
    alias: Annotated[
        list[str] | None, typer.Option(help="Alias to point at the best version (repeatable).")
    ] = None,
    description: DescriptionOpt = None,
    trust_pickle: TrustPickleOpt = False,
    trust_code: TrustCodeOpt = False,
    wait: WaitOpt = True,
    json_: JsonFlag = False,
) -> None:
    """Tune hyperparameters with trials run as training jobs; register the best model."""
    service = _service()
    job = service.submit(
        name,
        train=train_data,
        objective=objective,
        ranges=range_,
        algorithm=algorithm,
        script=str(script) if script is not None else None,
        validation=validation,
        target=target,
        maximize=maximize,
        hyperparameters=pairs(hp, "--hp"),
        strategy=strategy,
        max_trials=max_trials,
        parallel=parallel,
        early_stopping=early_stopping,
        max_failed_trials=max_failed_trials,
        warm_start=warm_start,
        seed=seed,
        flavor=flavor,
        metric_definitions=tuple(metric_definition or ()),
        aliases=tuple(alias or ()),
        trust=Trust(pickle=trust_pickle, user_code=trust_code),
        description=description,
    )
    if not wait:
        if json_:
            print_json(job)
        else:
            console.print(f"tuning job {job.name} submitted ({job.status.value})")
        return
    if not json_:
        typer.echo(
            f"tuning job {job.name} started; follow it with `modelyard tune show {job.name}`",
            err=True,
        )
    with interrupted_says_so(job):
        job = _follow(service, job) if console.is_terminal and not json_ else service.wait(job.name)
    summary = service.summary(job.name)
    if json_:
        print_json(_as_json(summary))
    else:
        _print_summary(summary)
    _raise_unless_completed(job)


def _follow(service: TuningService, job: Job) -> Job:
    """A progress bar of finished trials, with the best objective so far."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"tuning {job.model_name}", total=None)
        while True:
            summary = service.summary(job.name)
            done = sum(1 for t in summary.trials if t.job.status.finished)
            best = summary.best
            label = f"tuning {job.model_name}"
            if best is not None:
                label += f" (best {summary.config.objective}={best.value:.5g})"
            bar.update(task, completed=done, total=summary.config.max_trials, description=label)
            if summary.job.status.finished:
                return summary.job
            time.sleep(0.5)


def _raise_unless_completed(job: Job) -> None:
    failed = failure_of(job)
    if failed is not None:
        raise JobFailed(f"{failed.message} (see `modelyard jobs logs {job.name}`)")


def _as_json(summary: TuningSummary) -> dict[str, Any]:
    best = summary.best
    return {
        "job": to_jsonable(summary.job),
        "objective": summary.config.objective,
        "direction": summary.config.direction,
        "strategy": summary.config.strategy,
        "best_trial": None
        if best is None
        else {"name": best.name, "value": best.value, "hyperparameters": best.job.hyperparameters},
        "trials": [
            {
                "name": t.name,
                "state": t.state,
                "value": t.value,
                "hyperparameters": t.job.hyperparameters,
                "duration_s": t.job.duration_s,
                "failure_reason": t.job.failure_reason,
            }
            for t in summary.trials
        ],
    }


def _print_summary(summary: TuningSummary) -> None:
    config, job = summary.config, summary.job
    tuned = config.space.names
    table = Table("trial", "state", config.objective, *tuned, "duration")
    table.columns[2].no_wrap = True
    best_name = summary.best.name if summary.best else None
    for trial in summary.trials:
        style = "bold green" if trial.name == best_name else None
        value = "" if trial.value is None else f"{trial.value:.6g}"
        duration = f"{trial.job.duration_s:.1f}s" if trial.job.duration_s is not None else ""
        table.add_row(
            trial.name.removeprefix(job.name + "-"),
            trial.state,
            value,
            *(_short(trial.job.hyperparameters.get(n, "")) for n in tuned),
            duration,
            style=style,
        )
    console.print(table)
    counts = ", ".join(
        f"{summary.count(s)} {s.lower()}"
        for s in ("Completed", "Failed", "Pruned", "Stopped", "InProgress", "Pending")
        if summary.count(s)
    )
    console.print(
        f"tuning job {job.name}: {job.status.value}; {config.strategy}, "
        f"{config.direction} {config.objective}; {counts or 'no trials'}"
    )
    if summary.best is not None:
        best = summary.best
        params = ", ".join(f"{n}={best.job.hyperparameters.get(n)}" for n in tuned)
        console.print(f"best trial {best.name}: {config.objective}={best.value:.6g} ({params})")
    if job.model_version is not None:
        console.print(f"registered {job.model_name}:{job.model_version}")
    if job.failure_reason:
        console.print(f"reason: {job.failure_reason.splitlines()[0]}", markup=False)


def _short(value: str) -> str:
    """A float hyperparameter with 5 significant digits (the table is for reading)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() or "." not in value else f"{number:.5g}"


@app.command("show")
def show(
    job_name: JobArg,
    plots: Annotated[
        Path | None,
        typer.Option(help="Write optimisation history and importance plots (PNG, HTML) here."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """The trials table, the best hyperparameters and, with --plots, the plots."""
    service = _service()
    summary = service.summary(job_name)
    written = service.write_plots(job_name, plots) if plots is not None else []
    if json_:
        print_json({**_as_json(summary), "plots": [str(p) for p in written]})
        return
    _print_summary(summary)
    for path in written:
        console.print(f"wrote {path}")


@app.command("list")
def list_jobs(
    model: Annotated[str | None, typer.Option(help="Only tuning jobs of this model.")] = None,
    limit: Annotated[int, typer.Option(help=f"How many, newest first (1 to {MAX_LIMIT:,}).")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Tuning jobs, newest first."""
    jobs = _service().list_jobs(model, limit)
    if json_:
        print_json(jobs)
        return
    table = Table("job", "model", "status", "version", "duration", "objective")
    for job in jobs:
        tuning = job.spec.get("tuning", {})
        objective = tuning.get("objective", "")
        value = job.metrics.get(objective)
        duration = f"{job.duration_s:.1f}s" if job.duration_s is not None else ""
        table.add_row(
            job.name,
            job.model_name,
            job.status.value,
            str(job.model_version or ""),
            duration,
            f"{objective}={value:.5g}" if value is not None else objective,
        )
    console.print(table)


@app.command("join")
def join(job_name: JobArg) -> None:
    """Run trials of a running tuning job on this machine too, until none is left (Ctrl-C
    stops the current trial, which is recorded Stopped, and ends). Point this machine at the
    same database and artifact store; the job's data must be readable here (a shared URL, or
    the same path)."""
    stop = threading.Event()
    from modelyard.processes import set_on_signals

    set_on_signals(stop, signal.SIGINT, signal.SIGTERM)
    service = _service()
    job = service.get(job_name)
    typer.echo(f"joining tuning job {job.name}; Ctrl-C stops the current trial and ends", err=True)
    ran = service.join(job_name, stop)
    console.print(f"ran {ran} trial{'s' if ran != 1 else ''} of {job_name} here")


@app.command("stop")
def stop(job_name: JobArg, json_: JsonFlag = False) -> None:
    """Stop a tuning job: its running trials stop; the best finished trial is registered."""
    job = _service().stop(job_name)
    if json_:
        print_json(job)
    else:
        console.print(f"tuning job {job.name}: {job.status.value}")
