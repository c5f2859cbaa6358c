"""``Transformer`` takes the SageMaker SDK's constructor as SDK code writes it:
``Transformer(model_name, instance_count, instance_type, strategy=…, assemble_with="Line",
output_path=…, max_payload=None)`` runs (the instance type with a warning saying it is not
used), and what cannot mean anything here is refused with the argument named, before any job.

Real registry (SQLite), real batch jobs in their own worker processes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelyard import Transformer
from modelyard.bootstrap import Platform
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import InvalidInput
from tests.batch.support import Model, csv_text, features

ROWS = features(30, seed=31)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "rows.csv"
    path.parent.mkdir()
    path.write_bytes(csv_text(ROWS))
    return path


def test_sdk_code_runs_as_it_is(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"instance_type 'ml\.m5\.xlarge' is not used"):
        t = Transformer(
            model.ref,
            1,
            "ml.m5.xlarge",
            strategy="MultiRecord",
            assemble_with="Line",
            output_path=str(out),
            max_payload=None,  # the SDK's default: the service's 6 MB
            platform=platform,
        )
    t.transform(str(source), content_type="text/csv", split_type="Line")
    assert t.counts_.rows_out == len(ROWS)
    assert (out / "rows.csv.out").read_bytes() == model.csv(ROWS)
    assert t.latest_transform_job is not None
    assert t.latest_transform_job.spec["max_payload_mb"] == 6.0
    assert t.latest_transform_job.spec["workers"] == 1


def test_local_instance_types_say_nothing(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    t = Transformer(
        model.ref, instance_count=1, instance_type="local", output_path=str(tmp_path / "out"),
        platform=platform,
    )  # fmt: skip
    t.transform(str(source))  # filterwarnings=error: a warning fails the test
    assert t.counts_.rows_out == len(ROWS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instance_count": 0}, r"instance_count must be a whole number of 1 or more, got 0"),
        ({"instance_count": "out/"}, r"instance_count .* got 'out/'; output_path goes as a"),
        ({"instance_count": True}, r"instance_count must be a whole number"),
        ({"instance_type": ""}, r"instance_type must be a name"),
        ({"assemble_with": "Lines"}, r"assemble_with must be 'Line' or 'None', got 'Lines'"),
        ({"output_path": None}, r"output_path is required"),
        # the argument the caller wrote, not the request field it becomes (max_payload_mb)
        ({"max_payload": "6"}, r"^max_payload must be a number of MB, got '6'$"),
        ({"max_payload": True}, r"^max_payload must be a number of MB, got True$"),
        ({"max_payload": 0}, r"^max_payload must be more than 0 and at most 1024 \(MB\), got 0$"),
        ({"max_payload": 2000}, r"^max_payload must be more than 0 .* got 2000$"),
    ],
)
def test_what_cannot_mean_anything_is_refused(
    platform: Platform, model: Model, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"output_path": str(tmp_path / "out"), **kwargs}
    with pytest.raises(InvalidInput, match=message):
        Transformer(model.ref, platform=platform, **args)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_records_run_together_are_refused_on_lines(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    # SageMaker's AssembleWith=None joins the records' outputs with nothing between them;
    # modelyard writes a line a record, so that is refused where records are lines.
    t = Transformer(
        model.ref, assemble_with="None", output_path=str(tmp_path / "out"), platform=platform
    )
    with pytest.raises(InvalidInput, match=r"assemble_with='None' .* assemble_with='Line'"):
        t.transform(str(source), split_type="Line")
    assert t.latest_transform_job is None
    assert not (tmp_path / "out").exists()


def test_paths_are_taken_as_paths(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    # pathlib paths for data and output_path (a TypeError deep inside the request check)
    t = Transformer(model.ref, output_path=tmp_path / "out", platform=platform)
    t.transform(source)
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_errors": None}, r"max_errors must be a whole number, got None"),
        ({"max_errors": 1.5}, r"max_errors must be a whole number, got 1\.5"),
        ({"overwrite": "yes"}, r"overwrite must be True or False, got 'yes'"),
        ({"model_name": None}, r"model must be a text, got None"),
    ],
)
def test_values_of_the_wrong_type_are_refused_by_name(
    platform: Platform, model: Model, source: Path, tmp_path: Path,
    kwargs: dict[str, object], message: str,
) -> None:  # fmt: skip
    args: dict[str, object] = {"model_name": model.ref, "output_path": str(tmp_path / "out")}
    t = Transformer(platform=platform, **{**args, **kwargs})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        t.transform(str(source))
    assert t.latest_transform_job is None
    assert not (tmp_path / "out").exists()
    assert all(j.spec.get("output") != str(tmp_path / "out") for j in platform.jobs.list_jobs())


def test_transform_takes_the_sdks_arguments_in_the_sdks_places(
    platform: Platform, model: Model, source: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # transform(data, data_type, content_type, compression_type, split_type, job_name, ...)
    # as SDK code may write it positionally; accept is the output's format (the input's here)
    out = tmp_path / "out"
    t = Transformer(model.ref, accept="text/csv", output_path=str(out), platform=platform)
    t.transform(str(source), "S3Prefix", "text/csv", None, "Line", "churn-scores-1", logs=False)
    assert t.latest_transform_job is not None
    assert t.latest_transform_job.name == "churn-scores-1"
    assert (out / "rows.csv.out").read_bytes() == model.csv(ROWS)
    assert capsys.readouterr().out == ""  # logs=False: nothing shown


def test_logs_shows_the_jobs_log_once_it_ends(
    platform: Platform, model: Model, source: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    t = Transformer(model.ref, output_path=str(tmp_path / "out"), platform=platform)
    t.transform(str(source))  # the SDK's default: wait=True, logs=True
    assert t.latest_transform_job is not None
    log = platform.jobs.logs(t.latest_transform_job.name)
    assert log.strip()
    assert log in capsys.readouterr().out


def test_gzip_inputs_are_read_as_gzip(platform: Platform, model: Model, tmp_path: Path) -> None:
    import gzip

    data = tmp_path / "in" / "rows.csv.gz"
    data.parent.mkdir()
    data.write_bytes(gzip.compress(csv_text(ROWS)))
    t = Transformer(model.ref, output_path=str(tmp_path / "out"), platform=platform)
    t.transform(str(data), content_type="text/csv", compression_type="Gzip", logs=False)
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)


def test_sdk_arguments_with_no_meaning_here_are_taken_with_a_warning(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    t = Transformer(model.ref, output_path=str(tmp_path / "out"), platform=platform)
    with pytest.warns(UserWarning) as caught:
        t.transform(
            str(source),
            experiment_config={"ExperimentName": "churn"},
            model_client_config={"InvocationsMaxRetries": 1},
            logs=False,
        )
    said = [str(w.message) for w in caught]
    assert any(m.startswith("experiment_config is not used: ") for m in said), said
    assert any(m.startswith("model_client_config is not used: ") for m in said), said
    assert t.counts_.rows_out == len(ROWS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_type": "ManifestFile"}, r"data_type='ManifestFile' is not supported"),
        ({"data_type": "S3Prefx"}, r"data_type must be 'S3Prefix' or 'ManifestFile', got 'S3P"),
        ({"compression_type": "Zip"}, r"compression_type must be 'Gzip' or None, got 'Zip'"),
        ({"compression_type": "Gzip"}, r"rows\.csv: compression_type is Gzip, but its name"),
        ({"job_name": "no spaces"}, r"invalid job name 'no spaces': use 1-128 letters"),
        ({"job_name": 7}, r"invalid job name: it must be text, got int 7"),
        ({"batch_data_capture_config": {"DestinationS3Uri": "s3://b/"}},
         r"batch_data_capture_config is not supported"),
        ({"wait": "yes"}, r"wait must be True or False, got 'yes'"),
        ({"logs": None}, r"logs must be True or False, got None"),
        ({"accept": "application/json", "content_type": "text/csv"},
         r"accept='application/json' cannot be honoured.*\(text/csv\)"),
        ({"accept": "text/csv"}, r"accept='text/csv' needs content_type"),
    ],
)  # fmt: skip
def test_transform_arguments_it_cannot_honour_are_refused_by_name(
    platform: Platform, model: Model, source: Path, tmp_path: Path,
    kwargs: dict[str, object], message: str,
) -> None:  # fmt: skip
    accept = kwargs.pop("accept", None)
    t = Transformer(
        model.ref,
        accept=accept,
        output_path=str(tmp_path / "out"),
        platform=platform,  # type: ignore[arg-type]
    )
    before = len(platform.jobs.list_jobs(limit=1000))
    with pytest.raises(InvalidInput, match=message):
        t.transform(str(source), **kwargs)  # type: ignore[arg-type]
    assert t.latest_transform_job is None
    assert not (tmp_path / "out").exists()
    assert len(platform.jobs.list_jobs(limit=1000)) == before


def test_sdk_wait_and_stop_transform_job_run_as_sdk_code_writes_them(
    platform: Platform,
    model: Model,
    source: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The SDK's ``Transformer.wait(logs=True)`` and ``stop_transform_job(wait=True)``:
    ``wait(logs=False)`` was a TypeError and ``stop_transform_job`` an AttributeError."""
    t = Transformer(model.ref, 1, output_path=str(tmp_path / "out"), platform=platform)
    t.transform(str(source), wait=False)
    t.wait(logs=False)
    assert t.counts_.rows_out == len(ROWS)
    assert capsys.readouterr().out == ""
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)
    again = Transformer(model.ref, 1, output_path=str(tmp_path / "again"), platform=platform)
    again.transform(str(source), wait=False)
    again.wait()  # logs=True, the SDK's default: the job's log once it ends
    assert again.latest_transform_job is not None
    assert platform.jobs.logs(again.latest_transform_job.name) in capsys.readouterr().out

    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(6):
        (folder / f"part-{index}.csv").write_bytes(csv_text(features(3000, seed=index)))
    slow = Transformer(
        model.ref, 1, strategy="SingleRecord", output_path=str(tmp_path / "slow"),
        platform=platform,
    )  # fmt: skip
    slow.transform(str(folder), wait=False)
    assert slow.latest_transform_job is not None
    name = slow.latest_transform_job.name
    # At once, while its worker starts (about a second, against the 18,000 single-record
    # calls of the job): waiting for it to run first left a fast machine time to finish it.
    slow.stop_transform_job()  # wait=True: returns once the job has ended, as the SDK does
    assert slow.latest_transform_job.status is JobStatus.STOPPED
    assert platform.jobs.get(name).status is JobStatus.STOPPED
    with pytest.raises(ValueError, match="No transform job"):
        Transformer(model.ref, output_path=str(tmp_path / "x"), platform=platform).wait()


def test_content_types_as_sdk_code_writes_them(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    """application/json split by line (each line a JSON record, as SageMaker's examples write
    it) is JSON Lines, and a content type's parameters or case do not matter: both were refused
    as invalid content types."""
    import orjson

    lines = tmp_path / "json" / "rows.jsonl"
    lines.parent.mkdir()
    lines.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in ROWS.tolist()))
    t = Transformer(model.ref, output_path=str(tmp_path / "out-json"), platform=platform)
    t.transform(str(lines), content_type="application/json", split_type="Line")
    assert t.counts_.rows_out == len(ROWS)
    assert t.latest_transform_job is not None
    assert t.latest_transform_job.spec["content_type"] == "application/jsonlines"
    c = Transformer(model.ref, output_path=str(tmp_path / "out-csv"), platform=platform)
    c.transform(str(source), content_type="Text/CSV; charset=utf-8", split_type="Line")
    assert (tmp_path / "out-csv" / "rows.csv.out").read_bytes() == model.csv(ROWS)
    whole = Transformer(model.ref, output_path=str(tmp_path / "out-none"), platform=platform)
    with pytest.raises(InvalidInput, match="application/json is read a record a line"):
        whole.transform(str(lines), content_type="application/json", split_type="None")
    with pytest.raises(InvalidInput, match="invalid content-type 'text/plain'"):
        whole.transform(str(lines), content_type="text/plain")
    assert whole.latest_transform_job is None


# -- the SDK's other constructor arguments, and attach -------------------------------------


def test_the_sdks_constructor_runs_in_the_sdks_order(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    """``Transformer(model_name, instance_count, instance_type, strategy, assemble_with,
    output_path, output_kms_key, accept, max_concurrent_transforms, max_payload, tags, env,
    base_transform_job_name, sagemaker_session, volume_kms_key)``: SDK code passing
    ``sagemaker_session=``, ``max_concurrent_transforms=`` or ``base_transform_job_name=``
    was a TypeError."""
    out = tmp_path / "out"
    t = Transformer(
        model.ref, 2, "local", "MultiRecord", "Line", str(out), None, "text/csv", 3, None,
        None, None, "churn-nightly", platform,
    )  # fmt: skip
    assert t.sagemaker_session is platform
    t.transform(str(source), content_type="text/csv", logs=False)
    job = t.latest_transform_job
    assert job is not None
    # the SDK's name_from_base: the prefix, then the time to the millisecond
    assert re.fullmatch(r"churn-nightly-\d{4}(-\d\d){5}-\d{3}", job.name), job.name
    assert (job.spec["workers"], job.spec["max_concurrent_transforms"]) == (2, 3)
    # an instance runs max_concurrent_transforms model calls at once (each held to this
    # machine's cores): 2 x 3 workers on 3 cores or more
    from modelyard.batch.spawn import default_workers

    assert f"up to {2 * min(3, default_workers())} workers" in platform.jobs.logs(job.name)
    assert (out / "rows.csv.out").read_bytes() == model.csv(ROWS)

    # job_name, when given, is the name (as in the SDK); a long prefix is cut to fit
    named = Transformer(
        model.ref, output_path=str(tmp_path / "named"), base_transform_job_name="x" * 120,
        sagemaker_session=platform,
    )  # fmt: skip
    named.transform(str(source), job_name="scores-by-name", logs=False)
    assert named.latest_transform_job is not None
    assert named.latest_transform_job.name == "scores-by-name"
    named.output_path = str(tmp_path / "long")
    named.transform(str(source), logs=False)
    long_name = named.latest_transform_job.name
    # cut as the SDK's name_from_base cuts it: 63 characters in all
    assert len(long_name) == 63 and re.fullmatch(r"x+-\d{4}(-\d\d){5}-\d{3}", long_name)


def test_the_concurrency_reaches_the_workers_and_an_instance_is_held_to_the_cores() -> None:
    """What the log says is what runs: the local executor gets that many workers (and the job
    worker pre-starts that many helpers, up to the cores); SDK code passing 64 calls at once
    per instance gets one worker per core for it, not 64 processes each loading the model."""
    from modelyard.batch.spawn import default_workers
    from modelyard.domain.batch import TransformRequest
    from modelyard.services.batch import _executor, _worker_args

    cores = default_workers()
    given = TransformRequest("m", "/in", "/out", workers=2, max_concurrent_transforms=3)
    assert _executor(given).workers == 2 * min(3, cores)
    many = TransformRequest("m", "/in", "/out", max_concurrent_transforms=64)
    assert _executor(many).workers == cores
    assert given.concurrency() == 6  # no cap asked (Ray: the cluster's CPUs hold it)
    job = Job(
        name="j", kind=JobKind.BATCH, model_name="m", status=JobStatus.PENDING,
        spec=many.to_dict(), hyperparameters={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    helpers = cores - 1
    assert _worker_args(job) == (
        ["--prestart", f"modelyard.batch.spawn:{helpers}"] if helpers > 0 else []
    )


def test_max_concurrent_transforms_alone_is_the_job_s_concurrency(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    # no instance_count (one worker per core, modelyard's default): this machine is the one
    # instance, and max_concurrent_transforms its model calls at once
    t = Transformer(
        model.ref, output_path=str(tmp_path / "out"), max_concurrent_transforms=1,
        platform=platform,
    )  # fmt: skip
    t.transform(str(source), logs=False)
    assert t.latest_transform_job is not None
    assert "up to 1 worker" in platform.jobs.logs(t.latest_transform_job.name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tags": [{"Key": "team", "Value": "churn"}]}, r"^tags cannot be honoured: .*"),
        ({"env": {"OMP_NUM_THREADS": "1"}}, r"^env cannot be honoured: .*"),
        ({"output_kms_key": "arn:aws:kms:eu-west-1:1:key/k"},
         r"^output_kms_key cannot be honoured: .*"),
        ({"volume_kms_key": "k"}, r"^volume_kms_key cannot be honoured: .*"),
        ({"max_concurrent_transforms": -1},
         r"^max_concurrent_transforms must be a whole number of 0 or more, got -1$"),
        ({"max_concurrent_transforms": "4"}, r"^max_concurrent_transforms must be a whole"),
        ({"max_concurrent_transforms": True}, r"^max_concurrent_transforms must be a whole"),
        ({"base_transform_job_name": "no spaces"},
         r"^invalid base_transform_job_name 'no spaces': use 1-128 letters"),
        ({"base_transform_job_name": 7}, r"^invalid base_transform_job_name: it must be text"),
        ({"sagemaker_session": object()},
         r"^sagemaker_session must be a modelyard Platform .* got object$"),
    ],
)  # fmt: skip
def test_sdk_constructor_arguments_it_cannot_honour_are_refused_by_name(
    platform: Platform, model: Model, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"output_path": str(tmp_path / "out"), **kwargs}
    if "sagemaker_session" not in kwargs:
        args["platform"] = platform
    before = len(platform.jobs.list_jobs(limit=1000))
    with pytest.raises(InvalidInput, match=message):
        Transformer(model.ref, **args)  # type: ignore[arg-type]
    assert len(platform.jobs.list_jobs(limit=1000)) == before
    assert not (tmp_path / "out").exists()


def test_empty_tags_and_env_and_the_sdks_zero_say_nothing(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    # what SDK code passes when it has nothing to say: no tags, no variables, and
    # CreateTransformJob's MaxConcurrentTransforms 0 ("not set")
    t = Transformer(
        model.ref, 1, output_path=str(tmp_path / "out"), tags=[], env={},
        max_concurrent_transforms=0, sagemaker_session=platform,
    )  # fmt: skip
    t.transform(str(source), logs=False)  # filterwarnings=error: a warning fails the test
    assert t.latest_transform_job is not None
    assert "up to 1 worker" in platform.jobs.logs(t.latest_transform_job.name)


def test_sagemaker_session_and_platform_together_are_refused(
    platform: Platform, model: Model, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="give sagemaker_session or platform, not both"):
        Transformer(
            model.ref, output_path=str(tmp_path / "out"), sagemaker_session=platform,
            platform=platform,
        )  # fmt: skip


def test_attach_binds_a_transformer_to_an_existing_batch_job(
    platform: Platform, model: Model, source: Path, tmp_path: Path
) -> None:
    """The SDK's ``Transformer.attach(transform_job_name, sagemaker_session=None)``: the
    job's parameters, the job as ``latest_transform_job``, its name as the prefix of the next
    job's (as the SDK sets ``base_transform_job_name``)."""
    t = Transformer(
        model.ref, 2, strategy="SingleRecord", output_path=str(tmp_path / "out"),
        max_concurrent_transforms=2, max_payload=2, max_errors=3, platform=platform,
    )  # fmt: skip
    t.transform(str(source), job_name="attach-me", wait=False)
    attached = Transformer.attach("attach-me", sagemaker_session=platform)
    assert attached.sagemaker_session is platform
    assert attached.model_name == model.ref
    assert (attached.instance_count, attached.max_concurrent_transforms) == (2, 2)
    assert (attached.strategy, attached.max_payload, attached.max_errors) == (
        "single-record",
        2.0,
        3,
    )
    assert attached.output_path == str(tmp_path / "out")
    assert attached.base_transform_job_name == "attach-me"
    assert attached.latest_transform_job is not None
    assert attached.latest_transform_job.name == "attach-me"
    attached.wait(logs=False)  # the SDK's wait on the attached job
    assert attached.counts_.rows_out == len(ROWS)
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)

    attached.output_path = str(tmp_path / "again")
    attached.transform(str(source), logs=False)
    assert attached.latest_transform_job is not None
    assert re.fullmatch(r"attach-me-\d{4}(-\d\d){5}-\d{3}", attached.latest_transform_job.name)
    assert (tmp_path / "again" / "rows.csv.out").read_bytes() == model.csv(ROWS)


def test_attach_refuses_unknown_jobs_and_jobs_of_another_kind(platform: Platform) -> None:
    from datetime import UTC, datetime

    from modelyard.domain import Job, JobKind
    from modelyard.errors import JobNotFound

    with pytest.raises(JobNotFound):
        Transformer.attach("no-such-transform-job", sagemaker_session=platform)
    platform.jobs.store.create_job(
        Job(
            name="a-training-job",
            kind=JobKind.TRAINING,
            model_name="churn",
            status=JobStatus.PENDING,
            spec={},
            hyperparameters={},
            created_at=datetime.now(UTC),
        )
    )
    with pytest.raises(InvalidInput, match="'a-training-job' is a training job, not a batch"):
        Transformer.attach("a-training-job", sagemaker_session=platform)
    with pytest.raises(InvalidInput, match=r"^sagemaker_session must be a modelyard Platform"):
        Transformer.attach("a-training-job", sagemaker_session="an SDK Session")
