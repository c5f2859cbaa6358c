"""An alarm rule deleted and made again under its name while a pass judges the old one: the
old rule's result reaches neither the new rule's state and history nor its sinks. Real stores
(SQLite and PostgreSQL), injected clock."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from modelyard.domain.alarms import AlarmState
from modelyard.domain.metrics import MetricPoint
from tests.services.alarm_parts import FIVE, Series, create_rule
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import T0, Parts, open_parts

parts = parts_fixture(open_parts)


def test_a_rule_made_again_during_an_evaluation_keeps_none_of_the_old_ones_result(
    parts: Parts,
) -> None:
    """The rule is deleted and made again under its name (a new threshold) while a pass is
    judging the old one: the old rule's result was recorded on the new rule (its state, its
    reason naming the old threshold, a history entry, and the new rule's sinks told)."""
    made_again = threading.Event()

    class Racing(Series):
        def __call__(self, *args: Any, **kwargs: Any) -> list[MetricPoint]:
            read = super().__call__(*args, **kwargs)
            if not made_again.is_set():
                made_again.set()
                parts.alarm_store.delete("p99-high")
                parts.clock.now = T0 + FIVE + timedelta(seconds=40)
                create_rule(parts, threshold=10_000.0)
            return read

    series = Racing()
    series.set("latency_p99_ms", T0, [150.0] * 10)
    create_rule(parts)
    alarms = parts.alarms(series)
    assert alarms.evaluate(T0 + FIVE + timedelta(seconds=40)) == []
    assert made_again.is_set()
    status = alarms.state("p99-high")
    assert status.rule.threshold == 10_000.0
    assert (status.state, status.reason, status.evaluated_at) == (
        AlarmState.INSUFFICIENT_DATA, "not evaluated yet", None
    )  # fmt: skip
    assert alarms.history("p99-high") == []
    # The new rule's own first window is judged as usual.
    (event,) = alarms.evaluate(T0 + 2 * FIVE)
    assert (event.new, event.at) == (AlarmState.OK, T0 + 2 * FIVE)
    assert "> 10000" in event.reason


def test_a_change_recorded_before_its_rule_was_made_again_is_sent_to_nobody(
    parts: Parts,
) -> None:
    """The rule is deleted and made again between the pass recording its change and telling
    the sinks: the change was sent to the new rule's sinks (found by name), which never had
    that state."""
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 10)
    create_rule(parts)
    alarms = parts.alarms(series)
    now = T0 + FIVE + timedelta(seconds=40)
    (event,) = alarms.record(now)
    assert event.new is AlarmState.ALARM
    parts.alarm_store.delete("p99-high")
    parts.clock.now = now + timedelta(seconds=1)
    create_rule(parts, threshold=10_000.0)
    assert alarms.notify([event], now + timedelta(seconds=1)) == []
    assert alarms.history("p99-high") == []
