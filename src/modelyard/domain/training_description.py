"""A training job as SageMaker's ``DescribeTrainingJob`` answers: the dict the SageMaker SDK's
``estimator.latest_training_job.describe()`` returns, so code reading it finds its keys.

Only what a modelyard job knows is there: no ARN, role, instance or S3 output settings. The
URLs of its data and its failure reason have their credentials masked, as ``Job.to_dict``
shows them.
"""

from __future__ import annotations

from typing import Any

from modelyard.domain.jobs import Job, JobStatus

#: SageMaker has no Pending training job: one not yet started is InProgress, Starting.
_STATUS = {JobStatus.PENDING: JobStatus.IN_PROGRESS}
_SECONDARY = {
    JobStatus.PENDING: "Starting",
    JobStatus.IN_PROGRESS: "Training",
    JobStatus.COMPLETED: "Completed",
    JobStatus.FAILED: "Failed",
    JobStatus.STOPPING: "Stopping",
    JobStatus.STOPPED: "Stopped",
}


def describe_training_job(job: Job) -> dict[str, Any]:
    """``job`` under DescribeTrainingJob's names: TrainingJobName, TrainingJobStatus,
    SecondaryStatus, FailureReason (a failed job's), HyperParameters, AlgorithmSpecification
    (the built-in's AlgorithmName, the metric definitions), InputDataConfig,
    FinalMetricDataList, CreationTime, TrainingStartTime, TrainingEndTime, LastModifiedTime
    and TrainingTimeInSeconds (those a job has reached so far)."""
    shown = job.to_dict()
    spec = shown["spec"]
    algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
    if spec.get("algorithm"):
        algorithm["AlgorithmName"] = spec["algorithm"]
    definitions = [d.partition("=") for d in spec.get("metric_definitions") or ()]
    if definitions:
        # A bare NAME (read from NAME=value lines) has no regex of its own: None.
        algorithm["MetricDefinitions"] = [
            {"Name": name.strip(), "Regex": regex if sep else None}
            for name, sep, regex in definitions
        ]
    described: dict[str, Any] = {
        "TrainingJobName": job.name,
        "TrainingJobStatus": _STATUS.get(job.status, job.status).value,
        "SecondaryStatus": _SECONDARY[job.status],
        "HyperParameters": dict(job.hyperparameters),
        "AlgorithmSpecification": algorithm,
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec[channel]}},
            }
            for channel in ("train", "validation")
            if spec.get(channel)
        ],
        "CreationTime": job.created_at,
        "LastModifiedTime": max(
            t for t in (job.created_at, job.started_at, job.ended_at, job.heartbeat_at) if t
        ),
    }
    if job.status is JobStatus.FAILED:
        described["FailureReason"] = shown["failure_reason"] or "no reason recorded"
    if job.started_at is not None:
        described["TrainingStartTime"] = job.started_at
    if job.ended_at is not None:
        described["TrainingEndTime"] = job.ended_at
        if job.duration_s is not None:
            described["TrainingTimeInSeconds"] = round(job.duration_s)
    if job.metrics:
        described["FinalMetricDataList"] = [
            {"MetricName": name, "Value": value, "Timestamp": job.ended_at or job.created_at}
            for name, value in job.metrics.items()
        ]
    return described
