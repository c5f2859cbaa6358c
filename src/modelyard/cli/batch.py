"""``modelyard batch``: a batch transform job over files or folders (SageMaker's batch transform).

It submits a job (a worker process runs it) and, unless ``--no-wait``, follows it: a progress
bar of rows, files and rows/s on a terminal, nothing but the result in a pipe or a log.
``schedules create … -- batch …`` reads the same command line through
:func:`request_from_args`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.exceptions import TyperException

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.cli.waiting import interrupted_says_so
from modelyard.domain import Job, JobStatus
from modelyard.domain.batch import (
    BatchCounts,
    BatchExecutor,
    BatchStrategy,
    JoinSource,
    SplitType,
    TransformRequest,
)
from modelyard.errors import InvalidInput, JobFailed
from modelyard.services.jobs import failure_of


def batch(
    model: Annotated[
        str, typer.Argument(metavar="MODEL_REF", help="NAME, NAME:VERSION or NAME@ALIAS.")
    ],
    input_: Annotated[
        list[str],
        typer.Option(
            "--input",
            metavar="PATH",
            help="A file, a folder or a glob; local or any fsspec URL (given once).",
            callback=lambda ctx, param, value: _once(param, value),
        ),
    ],
    output: Annotated[
        list[str],
        typer.Option(
            "--output",
            metavar="FOLDER",
            help="The folder that receives <input name>.out per input (given once).",
            callback=lambda ctx, param, value: _once(param, value),
        ),
    ],
    content_type: Annotated[
        str | None,
        typer.Option(
            "--content-type",
            metavar="TYPE",
            help="The inputs' format: text/csv, application/jsonlines (or application/json "
            "split by line), application/x-parquet (default: from the file extension).",
        ),
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header",
            help="CSV inputs start with a header line (default: only if it names the "
            "model's columns).",
        ),
    ] = None,
    split_type: Annotated[
        SplitType,
        typer.Option(
            "--split-type", case_sensitive=False, help="Records are lines, or whole files."
        ),
    ] = SplitType.LINE,
    batch_strategy: Annotated[
        BatchStrategy,
        typer.Option(
            "--batch-strategy",
            case_sensitive=False,
            help="Records per model call: as many as fit --max-payload-mb, or one.",
        ),
    ] = BatchStrategy.MULTI_RECORD,
    max_payload_mb: Annotated[
        float,
        typer.Option("--max-payload-mb", min=0.001, help="Largest model call, in MB."),
    ] = 6.0,
    join_source: Annotated[
        JoinSource,
        typer.Option(
            "--join-source",
            case_sensitive=False,
            help="input: each output record holds its input beside its prediction.",
        ),
    ] = JoinSource.NONE,
    input_filter: Annotated[
        str | None,
        typer.Option("--input-filter", metavar="EXPR", help="JSONPath of what the model gets."),
    ] = None,
    output_filter: Annotated[
        str | None,
        typer.Option("--output-filter", metavar="EXPR", help="JSONPath of what is written."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Worker processes (default: one per core)."),
    ] = None,
    max_errors: Annotated[
        int,
        typer.Option(
            "--max-errors",
            min=0,
            help="Bad records allowed (each goes to <name>.errors.jsonl); 0: fail on the first.",
        ),
    ] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outputs that already exist.")
    ] = False,
    executor: Annotated[
        BatchExecutor,
        typer.Option(
            "--executor",
            case_sensitive=False,
            help="local: worker processes here; ray: Ray Data on a cluster (same outputs).",
        ),
    ] = BatchExecutor.LOCAL,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="URL",
            help="The Ray cluster (ray://host:10001); default: a local Ray for this job.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job until it ends.")
    ] = True,
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Predict every record of a file, folder or glob in a batch job; one output file each."""
    request = _request(locals())
    job = platform().batch.submit(request)
    if not wait:
        if json_:
            print_json(job)
        else:
            console.print(f"batch job {job.name} submitted ({job.status.value})")
        return
    if not json_:
        typer.echo(
            f"batch job {job.name} started; follow it with `modelyard jobs show {job.name}`",
            err=True,
        )
    with interrupted_says_so(job):
        job = follow(job) if console.is_terminal and not json_ else platform().jobs.wait(job.name)
    report(job, json_)


def follow(job: Job, poll_s: float = 0.3) -> Job:
    """Draw a progress bar (rows, files, rows/s) from the job's counts until it ends."""
    jobs = platform().jobs
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
    )
    began = time.monotonic()
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"batch {job.model_name}", total=None, rows=0, rate=0.0)
        while not job.status.finished:
            counts = BatchCounts.from_metrics(job.metrics)
            elapsed = max(time.monotonic() - began, 1e-9)
            bar.update(
                task,
                completed=counts.files_done,
                total=counts.files_total or None,
                rows=counts.rows_in,
                rate=counts.rows_in / elapsed,
            )
            time.sleep(poll_s)
            job = jobs.get(job.name)
    return jobs.wait(job.name)


def report(job: Job, json_: bool) -> None:
    """Print how a batch job ended; raise JobFailed (exit code) if it did not complete."""
    counts = BatchCounts.from_metrics(job.metrics)
    if json_:
        print_json(job)
    elif job.status is JobStatus.COMPLETED:
        rate = counts.rows_in / job.duration_s if job.duration_s else 0.0
        console.print(
            f"batch job {job.name} completed in {job.duration_s or 0:.1f}s: "
            f"{counts.rows_in:,} rows in, {counts.rows_out:,} out, {counts.rows_failed:,} "
            f"failed, {counts.files_done} file(s), {rate:,.0f} rows/s; output in "
            f"{job.spec.get('output')}",
            markup=False,  # the output is the user's path: "[red]" in it is no style
        )
    failed = failure_of(job)
    if failed is not None:
        raise JobFailed(
            f"{failed.message} (resume it with `modelyard jobs resume {job.name}`; "
            f"log: `modelyard jobs logs {job.name}`)"
        )


def request_from_args(args: Sequence[str]) -> TransformRequest:
    """The request a ``modelyard batch …`` command line (without the word ``batch``) asks for,
    parsed by the same options, without running anything.

    Raises:
        InvalidInput: the command line does not parse, with click's message; it holds an
            option of the command itself (``--wait``, ``--no-wait``, ``--json``), naming it.
    """
    if "--help" in args:
        raise InvalidInput("the batch command line asked for help, not a batch job")
    single = typer.Typer(add_completion=False)
    single.command("batch")(batch)
    command = typer.main.get_command(single)
    try:
        with command.make_context("batch", list(args)) as ctx:
            params = dict(ctx.params)
            given = {p: ctx.get_parameter_source(p) for p in _COMMAND_ONLY}
    except typer.Exit:
        raise InvalidInput("the batch command line asked for help, not a batch job") from None
    except TyperException as exc:  # click's parse errors, as typer vendors them
        raise InvalidInput(f"invalid batch command line: {exc.format_message()}") from None
    for param, flags in _COMMAND_ONLY.items():
        source = given[param]
        if source is not None and source.name == "COMMANDLINE":
            flag = next((a for a in args if a in flags), flags[0])
            raise InvalidInput(
                f"{flag} is no option of a scheduled batch job: it says how `modelyard batch` "
                "waits and prints, and a schedule's runs never wait; leave it out"
            )
    return _request(params)


#: Options of the ``batch`` command itself, not of the request it submits (by parameter).
_COMMAND_ONLY = {"wait": ("--wait", "--no-wait"), "json_": ("--json",)}


def _once(param: Any, value: Sequence[str]) -> Sequence[str]:
    """Refuse an option given more than once: parsed as a single value, the last one would
    win and the others be dropped without a word (``--input a.csv --input b.csv`` read only
    ``b.csv``)."""
    if len(value) > 1:
        flag = param.opts[0]
        given = ", ".join(repr(v) for v in value)
        several = "; to read several inputs, put them in one folder or name them with a glob"
        raise typer.BadParameter(
            f"give {flag} once (it was given {len(value)} times: {given})"
            + (several if flag == "--input" else ""),
            param_hint=f"'{flag}'",
        )
    return value


def _request(params: dict[str, object]) -> TransformRequest:
    """The request from the values of :func:`batch`'s parameters (by their names)."""
    data = {_FIELD.get(k, k): v for k, v in params.items() if _FIELD.get(k, k) in _FIELDS}
    for key in ("input", "output"):  # options given once (see _once), parsed as lists
        value = data.get(key)
        if isinstance(value, list | tuple):
            data[key] = value[0]
    return TransformRequest.from_dict(data)


_FIELD = {"input_": "input"}
_FIELDS = set(TransformRequest.__dataclass_fields__)
