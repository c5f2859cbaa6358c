"""Batch transform: files and folders of any size through a model, resumable, in parallel.

The engine behind ``modelyard batch`` (the job service records and controls the jobs)::

    from modelyard.batch import ModelSource, transform
    counts = transform(request, ModelSource(artifacts, spec, scratch), job="b-1", stop=event)

Public names (loaded on first use, so importing this package stays cheap):
:func:`transform`, :class:`ModelSource`, :func:`list_inputs`, :func:`check_output`,
:func:`check_request`, :class:`Executor`, :class:`LocalExecutor`, :class:`InputFile`,
:class:`JobSpec`, :class:`WorkUnit`, :class:`UnitResult`, :class:`UnitRunner`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Executor",
    "InputFile",
    "JobSpec",
    "LocalExecutor",
    "ModelSource",
    "RayExecutor",
    "UnitResult",
    "UnitRunner",
    "WorkUnit",
    "check_output",
    "check_request",
    "list_inputs",
    "transform",
]

_WHERE = {
    "Executor": "executor",
    "LocalExecutor": "executor",
    "RayExecutor": "ray_executor",
    "InputFile": "inputs",
    "list_inputs": "inputs",
    "JobSpec": "plan",
    "WorkUnit": "plan",
    "ModelSource": "model",
    "UnitResult": "sink",
    "UnitRunner": "runner",
    "check_output": "checks",
    "check_request": "checks",
    "transform": "coordinator",
}

if TYPE_CHECKING:
    from modelyard.batch.checks import check_output, check_request
    from modelyard.batch.coordinator import transform
    from modelyard.batch.executor import Executor, LocalExecutor
    from modelyard.batch.inputs import InputFile, list_inputs
    from modelyard.batch.model import ModelSource
    from modelyard.batch.plan import JobSpec, WorkUnit
    from modelyard.batch.ray_executor import RayExecutor
    from modelyard.batch.runner import UnitRunner
    from modelyard.batch.sink import UnitResult


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.batch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.batch.{module}"), name)
