"""How a job records its hyperparameters."""

from __future__ import annotations

import json

import numpy as np

from modelyard.domain import hyperparameter_texts


def test_strings_stay_and_other_values_are_json_as_the_sagemaker_sdk_sends_them() -> None:
    texts = hyperparameter_texts(
        {"eta": "0.1", "flag": False, "n": 3, "lr": 0.25, "layers": ["a", "b"], "opts": {"k": 1}}
    )
    assert texts == {
        "eta": "0.1",
        "flag": "false",
        "n": "3",
        "lr": "0.25",
        "layers": '["a", "b"]',
        "opts": '{"k": 1}',
    }


def test_numpy_values_count_as_the_numbers_they_hold() -> None:
    texts = hyperparameter_texts({"n": np.int64(5), "on": np.bool_(True), "w": np.arange(2)})
    assert {k: json.loads(v) for k, v in texts.items()} == {"n": 5, "on": True, "w": [0, 1]}


def test_a_value_json_cannot_hold_keeps_its_text() -> None:
    assert hyperparameter_texts({"s": {1, 2}}) == {"s": "{1, 2}"}


def test_a_failed_jobs_reason_is_shown_with_its_urls_credentials_masked() -> None:
    """A library's error (not one of ours, so not masked when raised) may quote a presigned
    input: every way the reason is shown masks it, the stored reason keeps it."""
    from datetime import UTC, datetime

    from modelyard.domain import Job, JobKind, JobStatus
    from modelyard.services.jobs import failure_of

    signed = "https://data.example/day.csv?X-Amz-Signature=s3cr3t&X-Amz-Expires=60"
    job = Job(
        name="b-1", kind=JobKind.BATCH, model_name="m", status=JobStatus.FAILED,
        spec={"request": {"input": signed, "output": "/tmp/out"}}, hyperparameters={},
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
        failure_reason=f"FileNotFoundError: {signed}",
    )  # fmt: skip
    failed = failure_of(job)
    assert failed is not None and "s3cr3t" not in failed.message, failed.message
    assert "X-Amz-Signature=***" in failed.message
    assert "s3cr3t" not in str(job.to_dict()["failure_reason"])
    assert job.failure_reason is not None and "s3cr3t" in job.failure_reason
