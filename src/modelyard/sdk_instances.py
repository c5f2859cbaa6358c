"""The SageMaker SDK's instance arguments (``instance_count``, ``instance_type``), which a
modelyard estimator, predictor or transformer takes and says what they cannot mean here."""

from __future__ import annotations

import warnings

from modelyard.errors import InvalidInput

#: The SageMaker SDK's local mode: the machine the code runs on, as modelyard's are.
LOCAL_INSTANCE_TYPES = frozenset({"local", "local_cpu"})


def sdk_instances(
    count: object,
    instance_type: object,
    *,
    count_name: str,
    count_unused: str,
    type_unused: str,
    stacklevel: int,
) -> None:
    """Check the SageMaker SDK's instance count and type (None: not given) and say, with a
    warning, what they cannot mean here: a count above 1 (``count_unused`` says why) or a
    type other than the SDK's local mode (``type_unused``).

    Raises:
        InvalidInput: a count that is not a whole number of 1 or more, or an empty type.
    """
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInput(f"{count_name} must be a whole number of 1 or more, got {count!r}")
        if count > 1:
            warnings.warn(
                f"{count_name}={count} is not used: {count_unused}",
                UserWarning,
                stacklevel=stacklevel,
            )
    if instance_type is not None:
        if not isinstance(instance_type, str) or not instance_type.strip():
            raise InvalidInput(f"instance_type must be a name, got {instance_type!r}")
        if instance_type not in LOCAL_INSTANCE_TYPES:
            warnings.warn(
                f"instance_type {instance_type!r} is not used: {type_unused}",
                UserWarning,
                stacklevel=stacklevel,
            )
