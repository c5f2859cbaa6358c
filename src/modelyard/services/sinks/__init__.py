"""Alarm sinks: where an alarm's state changes go. A plug-in interface of one method, one
implementation per file (``log_sink.py``, ``webhook_sink.py``), found by kind name.

A sink raises when it could not deliver; the alarm service logs and records that in the
alarm's history and goes on (a failing sink never stops the scheduler loop).
"""

from __future__ import annotations

import importlib
from typing import Protocol

from modelyard.domain.alarms import AlarmEvent, AlarmRule, SinkSpec
from modelyard.errors import InvalidInput

#: Sink kind → ``module:class``; a module is imported only when its kind is used.
KINDS: dict[str, str] = {
    "log": "modelyard.services.sinks.log_sink:LogSink",
    "webhook": "modelyard.services.sinks.webhook_sink:WebhookSink",
}


class AlarmSink(Protocol):
    """Delivers one state change of an alarm.

    Implementations take the sink's target (``SinkSpec.target``) in their constructor and
    raise :class:`~modelyard.errors.InvalidInput` there when it is not usable.
    """

    def notify(self, event: AlarmEvent, rule: AlarmRule) -> None:
        """Deliver ``event`` (a state change of ``rule``).

        Raises:
            ModelyardError: it could not be delivered (the message says why).
        """
        ...


def open_sink(spec: SinkSpec) -> AlarmSink:
    """The sink ``spec`` names, ready to notify.

    Raises:
        InvalidInput: an unknown kind (naming the known ones), or a target the sink refuses.
    """
    where = KINDS.get(spec.kind)
    if where is None:
        raise InvalidInput(f"unknown alarm sink {spec.kind!r}; known: {', '.join(sorted(KINDS))}")
    module, _, name = where.partition(":")
    sink: AlarmSink = getattr(importlib.import_module(module), name)(spec.target)
    return sink
