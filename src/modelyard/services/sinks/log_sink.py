"""The log sink: an alarm's state changes as lines on the ``modelyard.alarms`` logger
(WARNING on entering ALARM, INFO otherwise)."""

from __future__ import annotations

import logging

from modelyard.domain.alarms import AlarmEvent, AlarmRule, AlarmState
from modelyard.errors import InvalidInput

log = logging.getLogger("modelyard.alarms")


class LogSink:
    """Writes each state change to the log. Takes no target."""

    def __init__(self, target: str | None = None) -> None:
        if target is not None:
            raise InvalidInput(f"the log sink takes no target, got {target!r}")

    def notify(self, event: AlarmEvent, rule: AlarmRule) -> None:
        """Log ``event``; never fails."""
        level = logging.WARNING if event.new is AlarmState.ALARM else logging.INFO
        log.log(
            level,
            "alarm %s (endpoint %s) %s -> %s: %s",
            event.alarm,
            rule.endpoint,
            event.old.value,
            event.new.value,
            event.reason,
        )
