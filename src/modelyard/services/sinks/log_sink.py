"""The log sink: an alarm's state changes as lines on the ``modelyard.alarms`` logger
(WARNING on entering ALARM, INFO otherwise), and the messages about it (a deployment watching
it rolled back) as WARNING lines."""

from __future__ import annotations

import logging

from modelyard.domain.alarms import STATE_CHANGE, AlarmEvent, AlarmRule, AlarmState
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
        if event.kind != STATE_CHANGE:  # a message about the alarm (a rollback), in ALARM or not
            what = event.kind.replace("_", " ")
            log.warning(
                "alarm %s (endpoint %s) %s: %s", event.alarm, rule.endpoint, what, event.reason
            )
            return
        log.log(
            level,
            "alarm %s (endpoint %s) %s -> %s: %s",
            event.alarm,
            rule.endpoint,
            event.old.value,
            event.new.value,
            event.reason,
        )
