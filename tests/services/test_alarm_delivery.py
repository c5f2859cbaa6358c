"""A webhook that failed to take an alarm's change is tried again on later passes, with waits
that double, up to six attempts; once it took it, or once the alarm changed state again, no
more. Two evaluators sharing the store (SQLite, PostgreSQL) send each retry once. A real
receiver on 127.0.0.1 answers 503 until the test says otherwise."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from modelyard.domain.alarms import SinkSpec
from modelyard.services.alarm_delivery import MAX_ATTEMPTS, NOT_SENT, PENDING_GRACE, RETRY_AFTER
from tests.services.alarm_parts import FIVE, Series
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, T0, Parts, open_parts
from tests.services.webhook_server import webhook_receiver
from tests.waiting import wait_for

CHANGE = T0 + FIVE  # the ALARM change: the end of the first window
SECOND = timedelta(seconds=1)


parts = parts_fixture(open_parts)


def _alarm(parts: Parts, url: str, minutes: int = 60, then: list[float] | None = None) -> Series:
    """``p99-high`` on ``url``, over a series above its threshold for ``minutes`` (then
    ``then``): ALARM from the first window on."""
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * minutes + (then or []))
    parts.alarms(series).create(
        "p99-high",
        endpoint=ENDPOINT,
        metric="latency_p99_ms",
        comparison=">",
        threshold=100.0,
        sinks=[SinkSpec("webhook", url)],
    )
    return series


def _webhook(parts: Parts, index: int = 0) -> Any:
    """How the webhook took the alarm's ``index``-th newest change."""
    event = parts.alarms().history("p99-high")[index]
    return next(n for n in event.notifications if n.sink.startswith("webhook"))


def test_a_receiver_back_up_gets_the_change_it_missed(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 503
        alarms = parts.alarms(_alarm(parts, receiver.url))
        assert [e.new.value for e in alarms.evaluate(CHANGE)] == ["ALARM"]
        first = _webhook(parts)
        assert (first.ok, first.attempts) == (False, 1) and "answered 503" in first.error
        alarms.evaluate(CHANGE + RETRY_AFTER - SECOND)  # not due yet
        assert len(receiver.received()) == 1
        receiver.status = 200
        alarms.evaluate(CHANGE + RETRY_AFTER)
        bodies = receiver.received()
        assert len(bodies) == 2 and bodies[0] == bodies[1], "the same change, with its id"
        took = _webhook(parts)
        assert (took.ok, took.error, took.attempts) == (True, None, 2)
        for minutes in (1, 5, 30):  # delivered: never again
            alarms.evaluate(CHANGE + timedelta(minutes=minutes))
        assert len(receiver.received()) == 2
    (event,) = parts.alarms().history("p99-high")
    kept = [
        (n["sink"].split()[0], n["ok"], n["attempts"]) for n in event.to_dict()["notifications"]
    ]
    assert kept == [("log", True, 1), ("webhook", True, 2)], "the log's result stays"


def test_a_receiver_that_stays_down_is_tried_six_times_with_doubling_waits(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 500
        alarms = parts.alarms(_alarm(parts, receiver.url, minutes=26 * 60))  # ALARM for a day
        alarms.evaluate(CHANGE)
        waits = [RETRY_AFTER * 2**k for k in range(MAX_ATTEMPTS - 1)]  # 30 s, 1, 2, 4, 8 min
        due = CHANGE
        for attempt, wait in enumerate(waits, start=2):
            alarms.evaluate(due + wait - SECOND)
            assert _webhook(parts).attempts == attempt - 1, f"attempt {attempt} came early"
            due += wait
            alarms.evaluate(due)
            assert _webhook(parts).attempts == attempt
        for hours in (1, 2, 24):
            alarms.evaluate(CHANGE + timedelta(hours=hours))
        assert len(receiver.received()) == MAX_ATTEMPTS == 6
    last = _webhook(parts)
    assert (last.ok, last.attempts) == (False, 6) and "answered 500" in last.error


def test_the_waits_count_from_each_attempt_not_from_the_window_end(parts: Parts) -> None:
    """A window is judged 30 s after it ends (``settle``), so a change is first sent then: the
    first retry, due 30 s after the window end, went out on the very next pass, two seconds
    after the first attempt (a receiver restarting lost two of its six attempts to one blip).
    Each wait now counts from the attempt before it."""
    with webhook_receiver() as receiver:
        receiver.status = 503
        settle = timedelta(seconds=30)
        alarms = parts.alarms(_alarm(parts, receiver.url), settle=settle)
        first = CHANGE + settle + 3 * SECOND  # a pass a little after the window settled
        assert [e.new.value for e in alarms.evaluate(first)] == ["ALARM"]
        assert _webhook(parts).attempts == 1
        alarms.evaluate(first + 2 * SECOND)  # the next pass
        assert _webhook(parts).attempts == 1, "tried again at once"
        tried = first
        for attempt, wait in enumerate((RETRY_AFTER * 2**k for k in range(3)), start=2):
            alarms.evaluate(tried + wait - SECOND)
            assert _webhook(parts).attempts == attempt - 1, f"attempt {attempt} came early"
            tried += wait
            alarms.evaluate(tried)
            assert _webhook(parts).attempts == attempt
        assert len(receiver.received()) == 4


def _two_webhooks(parts: Parts, url: str) -> Any:
    """``p99-high`` in ALARM for an hour, with two webhooks on ``url`` that show alike (both
    as ``webhook http://127.0.0.1:…/hooks/***?token=***``); its service."""
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 60)
    sinks = [SinkSpec("webhook", f"{url}?token={token}") for token in ("first", "second")]
    assert sinks[0].label == sinks[1].label
    alarms = parts.alarms(series)
    alarms.create(
        "p99-high", endpoint=ENDPOINT, metric="latency_p99_ms", comparison=">",
        threshold=100.0, sinks=sinks,
    )  # fmt: skip
    return alarms


def test_two_sinks_shown_alike_are_each_tried_again(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 503
        alarms = _two_webhooks(parts, receiver.url)
        alarms.evaluate(CHANGE)
        receiver.status = 200
        alarms.evaluate(CHANGE + RETRY_AFTER)
        assert sorted(receiver.paths[2:]) == [
            "/hooks/alarms?token=first",
            "/hooks/alarms?token=second",
        ]
    (event,) = parts.alarms().history("p99-high")
    assert [(n.ok, n.attempts) for n in event.notifications] == [(True, 1), (True, 2), (True, 2)]


def test_retries_due_in_one_pass_are_made_at_once(parts: Parts) -> None:
    """Two failed sinks retried in one pass are in flight together, so a receiver that hangs
    costs the pass one timeout, not one per sink, before the next pass can roll back. The
    receiver answers only requests that come two at once."""
    with webhook_receiver() as receiver:
        receiver.status = 503
        alarms = _two_webhooks(parts, receiver.url)
        alarms.evaluate(CHANGE)
        assert len(receiver.received()) == 2
        receiver.status = 200
        receiver.answer_in_groups(2)
        alarms.evaluate(CHANGE + RETRY_AFTER)
        assert len(receiver.received()) == 4
    (event,) = parts.alarms().history("p99-high")
    retried = [(n.ok, n.attempts, n.error) for n in event.notifications[1:]]
    assert retried == [(True, 2, None), (True, 2, None)], "one retry waited for the other"


def test_a_passs_first_deliveries_and_its_retries_are_made_together(parts: Parts) -> None:
    """One pass sends a new change and retries an old one's failed delivery: both at once, so
    a hung receiver costs the pass one timeout. The receiver answers only pairs."""
    with webhook_receiver() as receiver:
        receiver.status = 503
        alarms = parts.alarms(_alarm(parts, receiver.url))
        alarms.evaluate(CHANGE)  # p99-high's change: its webhook fails
        alarms.create(
            "p99-higher", endpoint=ENDPOINT, metric="latency_p99_ms", comparison=">",
            threshold=120.0, sinks=[SinkSpec("webhook", receiver.url)],
        )  # fmt: skip
        receiver.status = 200
        receiver.answer_in_groups(2)
        # p99-higher's first change, and p99-high's retry, due in the same pass.
        (new,) = alarms.evaluate(CHANGE + RETRY_AFTER)
        assert new.alarm == "p99-higher" and new.notifications[-1].ok, new.notifications
        assert len(receiver.received()) == 3
    took = _webhook(parts)
    assert (took.ok, took.attempts) == (True, 2), "the retry waited for the first delivery"


def test_a_change_older_than_an_hour_is_not_tried_again(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 503
        alarms = parts.alarms(_alarm(parts, receiver.url, minutes=3 * 60))
        alarms.evaluate(CHANGE)
        receiver.status = 200
        alarms.evaluate(CHANGE + timedelta(minutes=61))  # the scheduler was down meanwhile
        assert len(receiver.received()) == 1
    assert (_webhook(parts).ok, _webhook(parts).attempts) == (False, 1)


def test_a_change_the_alarm_has_left_is_not_sent_late(parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 503
        # Above the threshold for the first window, below it for the second: ALARM, then OK.
        alarms = parts.alarms(_alarm(parts, receiver.url, minutes=5, then=[50.0] * 55))
        alarms.evaluate(CHANGE)
        receiver.status = 200
        assert [e.new.value for e in alarms.evaluate(CHANGE + FIVE)] == ["OK"]
        for minutes in (1, 5, 30):  # the ALARM's retries would be due
            alarms.evaluate(CHANGE + FIVE + timedelta(minutes=minutes))
        assert [b["new_state"] for b in receiver.received()] == ["ALARM", "OK"]
    assert (_webhook(parts, 0).ok, _webhook(parts, 1).ok) == (True, False)
    assert _webhook(parts, 1).attempts == 1


def test_two_evaluators_send_each_retry_once(db_url: str, parts: Parts) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 503
        series = _alarm(parts, receiver.url)
        parts.alarms(series).evaluate(CHANGE)
        receiver.status = 200
        start = threading.Barrier(2)
        nows = [CHANGE + RETRY_AFTER + k * SECOND for k in range(5)]

        def evaluate(holder: str) -> None:
            own = open_parts(db_url, seed=False)  # its own engine: its own connections
            try:
                alarms = own.alarms(series, holder=holder)
                for now in nows:
                    start.wait(60)
                    alarms.evaluate(now)
            finally:
                own.close()

        threads = [threading.Thread(target=evaluate, args=(h,)) for h in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(receiver.received()) == 2, "the first attempt and one retry"
    assert (_webhook(parts).ok, _webhook(parts).attempts) == (True, 2)


def test_the_history_table_says_how_many_attempts_a_sink_took() -> None:
    from modelyard.cli.alarms import _sent
    from modelyard.domain.alarms import AlarmEvent, AlarmState, Notification

    event = AlarmEvent(
        1, "p99-high", ENDPOINT, CHANGE, AlarmState.OK, AlarmState.ALARM, "why",
        notifications=(
            Notification("log", True),
            Notification("webhook a", True, None, 3),
            Notification("webhook b", False, "answered 503", 6),
        ),
    )  # fmt: skip
    assert _sent(event) == (
        "log: ok, webhook a: ok after 3 attempts, webhook b: FAILED (answered 503) after 6 attempts"
    )


def test_a_hung_receiver_holds_up_no_other_sink(parts: Parts) -> None:
    """A change's sinks are sent at once: the second gets it while the first still hangs
    (sent one after another, it waited for the first's whole timeout)."""
    with webhook_receiver() as hung, webhook_receiver() as fine:
        hung.trickle = True
        series = Series()
        series.set("latency_p99_ms", T0, [150.0] * 60)
        alarms = parts.alarms(series)
        alarms.create("p99-high", endpoint=ENDPOINT, metric="latency_p99_ms", comparison=">",
                      threshold=100.0, sinks=[SinkSpec("webhook", hung.url),
                                              SinkSpec("webhook", fine.url)])  # fmt: skip
        done: list[Any] = []
        evaluating = threading.Thread(target=lambda: done.append(alarms.evaluate(CHANGE)))
        evaluating.start()
        try:
            wait_for("the second sink to get the change", fine.received, lambda b: len(b) == 1)
            got = wait_for("the first to get it too", hung.received, lambda b: len(b) == 1)
            assert [b["alarm"] for b in got] == ["p99-high"]
            assert not hung.trickle_ended.is_set(), "the first receiver still holds its answer"
        finally:
            hung.stopped.set()  # the trickle ends: the first delivery completes
            evaluating.join(60)
        (event,) = done[0]
        webhooks = [n for n in event.notifications if n.sink.startswith("webhook")]
        assert [n.ok for n in webhooks] == [True, True]


def test_a_change_whose_recorder_died_before_telling_is_told_by_another(parts: Parts) -> None:
    """Recorded, then the process dies before its sinks are told: the change waits in the
    history as not sent, and another process's pass sends it once the recorder's time is up."""
    with webhook_receiver() as receiver:
        series = _alarm(parts, receiver.url)
        (recorded,) = parts.alarms(series, holder="dead").record(CHANGE)  # and nothing more
        assert [n.error for n in recorded.notifications if n.sink.startswith("webhook")] == [
            NOT_SENT
        ]
        assert receiver.received() == []
        other = parts.alarms(series, holder="other")
        other.evaluate(CHANGE + PENDING_GRACE - SECOND)
        assert receiver.received() == [], "the recorder may still be telling it"
        other.evaluate(CHANGE + PENDING_GRACE)
        assert [b["id"] for b in receiver.received()] == [recorded.id]
        told = _webhook(parts)
        assert (told.ok, told.attempts) == (True, 1)
