"""``modelyard train`` and ``modelyard jobs …``: training jobs from the command line.

``train`` submits a job (a worker process runs it) and, unless ``--no-wait``, follows it: a
progress bar from the job's log on a terminal, nothing but the result in a pipe or a log.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
from modelyard.domain import Job, JobStatus, Trust
from modelyard.domain.counts import MAX_LIMIT
from modelyard.errors import JobFailed
from modelyard.services.jobs import JobService, failure_of

app = typer.Typer(
    name="jobs",
    help="List, inspect, follow, stop and resume jobs (training, tuning, batch).",
    no_args_is_help=True,
)

JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Job name (from `jobs list`).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
_LONGEST_PROGRESS_LINE = 4096


def _service() -> JobService:
    return platform().jobs


def train(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model to register the result as.")],
    train_data: TrainData,
    algorithm: AlgorithmOpt = None,
    script: ScriptOpt = None,
    validation: ValidationOpt = None,
    target: TargetOpt = None,
    hp: Annotated[
        list[str] | None, typer.Option("--hp", help="Hyperparameter k=v (repeatable).")
    ] = None,
    flavor: FlavorOpt = None,
    metric_definition: MetricDefinitionsOpt = None,
    alias: Annotated[
        list[str] | None, typer.Option(help="Alias to point at the new version (repeatable).")
    ] = None,
    description: DescriptionOpt = None,
    trust_pickle: TrustPickleOpt = False,
    trust_code: TrustCodeOpt = False,
    wait: WaitOpt = True,
    json_: JsonFlag = False,
) -> None:
    """Train a model in a job of its own and register the result as the next version of NAME."""
    service = _service()
    job = platform().training.submit(
        name,
        train=train_data,
        algorithm=algorithm,
        script=str(script) if script is not None else None,
        validation=validation,
        target=target,
        hyperparameters=pairs(hp, "--hp"),
        flavor=flavor,
        metric_definitions=tuple(metric_definition or ()),
        aliases=tuple(alias or ()),
        trust=Trust(pickle=trust_pickle, user_code=trust_code),
        description=description,
    )
    if not wait:
        _show_submitted(job, json_)
        return
    if not json_:  # on stderr: stdout carries only the result
        typer.echo(
            f"job {job.name} started (pid {job.pid}); follow it with "
            f"`modelyard jobs logs -f {job.name}`",
            err=True,
        )
    with interrupted_says_so(job):
        job = _follow(service, job) if console.is_terminal and not json_ else service.wait(job.name)
    _report(job, json_)


def _show_submitted(job: Job, json_: bool) -> None:
    if json_:
        print_json(job)
    else:
        console.print(f"job {job.name} submitted ({job.status.value})")


def _follow(service: JobService, job: Job) -> Job:
    """Draw a progress bar from the job's progress lines until it ends."""
    from modelyard.training.runner import parse_progress

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"training {job.model_name}", total=None)
        partial = ""
        for chunk in service.follow_log(job.name, poll_s=0.3):
            *lines, partial = (partial + chunk).split("\n")
            if len(partial) > _LONGEST_PROGRESS_LINE:
                partial = ""  # not a progress line: no need to keep it
            for line in lines:
                step = parse_progress(line)
                if step is not None:
                    bar.update(task, completed=step[0], total=step[1])
    return service.get(job.name)


def _report(job: Job, json_: bool) -> None:
    if json_:
        print_json(job)
    elif job.status is JobStatus.COMPLETED:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(job.metrics.items()))
        console.print(
            f"job {job.name} completed in {job.duration_s or 0:.1f}s: registered "
            f"{job.model_name}:{job.model_version}" + (f" ({metrics})" if metrics else ""),
            markup=False,
        )
    failed = failure_of(job)
    if failed is not None:
        raise JobFailed(f"{failed.message} (see `modelyard jobs logs {job.name}`)")


@app.command("list")
def list_jobs(
    model: Annotated[str | None, typer.Option(help="Only jobs of this model.")] = None,
    limit: Annotated[int, typer.Option(help=f"How many, newest first (1 to {MAX_LIMIT:,}).")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Jobs, newest first."""
    jobs = _service().list_jobs(model, limit)
    if json_:
        print_json(jobs)
        return
    table = Table("job", "kind", "model", "status", "version", "duration", "metrics")
    for job in jobs:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(job.metrics.items())[:3])
        duration = f"{job.duration_s:.1f}s" if job.duration_s is not None else ""
        table.add_row(
            job.name,
            job.kind.value,
            job.model_name,
            job.status.value,
            str(job.model_version or ""),
            duration,
            metrics,
        )
    console.print(table)


@app.command("show")
def show(job_name: JobArg, json_: JsonFlag = False) -> None:
    """A job's state, hyperparameters, metrics and outcome."""
    job = _service().get(job_name)
    if json_:
        print_json(job)
        return
    data: dict[str, Any] = to_jsonable(job)
    for key in (
        "name",
        "model_name",
        "status",
        "model_version",
        "created_at",
        "started_at",
        "ended_at",
        "pid",
        "host",
    ):
        shown = data.get(key) if data.get(key) is not None else ""
        console.print(f"{key:14} {shown}", markup=False)
    # Paths, hyperparameters and metric names are the user's text: never Rich markup.
    console.print(f"{'spec':14} {data['spec']}", markup=False)
    console.print(f"{'hyperparams':14} {data['hyperparameters']}", markup=False)
    console.print(f"{'metrics':14} {data['metrics']}", markup=False)
    if data["failure_reason"]:
        console.print(f"{'failure':14} {data['failure_reason']}", markup=False)


@app.command("logs")
def logs(
    job_name: JobArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, metavar="N", help="Only the last N lines.")
    ] = None,
    head: Annotated[
        int | None, typer.Option("--head", min=0, metavar="N", help="Only the first N lines.")
    ] = None,
) -> None:
    """Print a job's log (with -f, follow it as it grows).

    A long log keeps its first and last lines; a line in it says how much was cut between.
    """
    if head is not None and (tail is not None or follow):
        raise typer.BadParameter("cannot go with --tail or --follow", param_hint="'--head'")
    service = _service()
    if follow:
        chunks = service.follow_log(job_name, tail=tail)
    else:
        chunks = service.read_log(job_name, head=head, tail=tail)
    for chunk in chunks:
        typer.echo(chunk, nl=False)


@app.command("stop")
def stop(job_name: JobArg, json_: JsonFlag = False) -> None:
    """Ask a running job to stop; it ends Stopped once its worker has cleaned up."""
    job = _service().stop(job_name)
    if json_:
        print_json(job)
    else:
        console.print(f"job {job.name}: {job.status.value}")


@app.command("resume")
def resume(
    job_name: JobArg,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job until it ends.")
    ] = True,
    json_: JsonFlag = False,
) -> None:
    """Run a Failed or Stopped batch job again; only the work it did not finish is redone."""
    from modelyard.cli import batch

    job = _service().resume(job_name)
    if not wait:
        if json_:
            print_json(job)
        else:
            console.print(f"job {job.name} resumed ({job.status.value})")
        return
    with interrupted_says_so(job):
        job = batch.follow(job) if console.is_terminal and not json_ else _service().wait(job.name)
    batch.report(job, json_)
