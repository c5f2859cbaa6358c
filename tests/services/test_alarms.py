"""Alarm rules over real stores (SQLite and PostgreSQL): refusals that list the metrics, the
N-of-M rule changing state on the right window, no data never OK, drift scores from stored
monitor runs, a real webhook receiver (and one that fails), and each change recorded and sent
once when two evaluators share the store."""

from __future__ import annotations

import dataclasses
import sys
import threading
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from modelyard.domain import CaptureConfig, ColumnSpec, ConfigChange, Signature, Source, Trust
from modelyard.domain.alarms import DEPLOYMENT_ROLLBACK, AlarmEvent, AlarmState, SinkSpec
from modelyard.errors import (
    AlreadyExists,
    EndpointNotFound,
    InvalidInput,
    InvalidName,
    NotFound,
    VariantNotFound,
)
from modelyard.storage.base import NewVersion
from tests.services.alarm_parts import FIVE, Series, create_rule
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, T0, Parts, Report, Runner, open_parts
from tests.services.webhook_server import webhook_receiver
from tests.waiting import wait_for

parts = parts_fixture(open_parts)


def test_an_unknown_metric_is_refused_with_the_list_of_metrics(parts: Parts) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_rule(parts, metric="latency_p999_ms")
    message = str(refused.value)
    assert "unknown metric 'latency_p999_ms'" in message
    for known in ("requests", "latency_p99_ms", "error_rate", "drift.share", "drift.feature.age"):
        assert known in message
    with pytest.raises(
        InvalidInput, match=r"unknown drift score 'drift\.feature\.income'.*drift\.feature\.tenure"
    ):
        create_rule(parts, metric="drift.feature.income")
    # Features have their own namespace: ``drift.<feature>`` is no score.
    with pytest.raises(InvalidInput, match=r"unknown drift score 'drift\.age'"):
        create_rule(parts, metric="drift.age")
    with pytest.raises(InvalidInput, match=r"input_mean.*feature"):
        create_rule(parts, metric="input_mean")
    assert parts.alarm_store.list_rules() == []


def test_a_feature_the_endpoint_lacks_or_redacts_is_refused(parts: Parts) -> None:
    """A rule on a feature's series must name an input of the endpoint's models, and a
    feature's drift score must be one its capture keeps: either would stay INSUFFICIENT_DATA
    for good."""
    with pytest.raises(InvalidInput) as refused:
        create_rule(parts, metric="input_mean.income")
    message = str(refused.value)
    assert message.startswith(
        "metric 'input_mean.income': endpoint 'churn-api' has no input feature 'income' "
        "(its features: age, tenure); known: "
    ), message
    for metric in (
        "input_max.nosuch",
        "input_missing_fraction.nosuch",
        "input_text_length_mean.nosuch",
    ):
        with pytest.raises(InvalidInput, match="no input feature 'nosuch'"):
            create_rule(parts, metric=metric)
    assert parts.alarm_store.list_rules() == []
    # The endpoint-wide form (every feature) and a real feature are taken.
    create_rule(
        parts, name="missing-any", metric="input_missing_fraction", comparison=">", threshold=0.1
    )
    create_rule(parts, name="age-mean", metric="input_mean.age", comparison=">", threshold=50)
    # ``tenure`` redacted by green only: blue still scores it; by both, nobody does.
    redact = CaptureConfig.parse(100, ["tenure"])
    blue, green = parts.endpoint_store.get_endpoint(ENDPOINT).config.variants
    store = parts.endpoint_store
    store.add_config(
        ENDPOINT,
        (blue, dataclasses.replace(green, capture=redact)),
        ConfigChange.UPDATE,
        expected_current=1,
        parent=1,
    )
    create_rule(parts, name="tenure-drift", metric="drift.feature.tenure", threshold=0.2)
    with pytest.raises(
        InvalidInput, match=r"'tenure' is redacted in the capture of variant 'green'"
    ):
        create_rule(parts, name="green-tenure", metric="drift.feature.tenure", variant="green")
    store.add_config(
        ENDPOINT,
        tuple(dataclasses.replace(v, capture=redact) for v in (blue, green)),
        ConfigChange.UPDATE,
        expected_current=2,
        parent=2,
    )
    with pytest.raises(
        InvalidInput, match=r"redacted in the capture of every variant of 'churn-api'"
    ):
        create_rule(parts, name="any-tenure", metric="drift.feature.tenure")
    # The servers count a redacted field's values but keep none of them (its sum, least and
    # greatest value would show it); how many are missing stays watchable.
    for metric in ("input_mean.tenure", "input_max.tenure"):
        with pytest.raises(InvalidInput, match=r"'tenure' is redacted .* keep none of them"):
            create_rule(parts, name="tenure-values", metric=metric)
    create_rule(parts, name="tenure-missing", metric="input_missing_fraction.tenure", threshold=0.5)
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == [
        "age-mean", "missing-any", "tenure-drift", "tenure-missing"
    ]  # fmt: skip


def test_a_prediction_column_score_needs_a_model_of_several_columns(parts: Parts) -> None:
    three = Signature((ColumnSpec("float64", "age"),), output_shape=(-1, 3))
    parts.metadata.create_version(
        NewVersion(
            name="churn",
            flavor="xgboost",
            model_format="ubj",
            artifact_digest="cd" * 32,
            size_bytes=1,
            source=Source("upload"),
            trust=Trust(),
            signature=three,
        )
    )
    blue, green = parts.endpoint_store.get_endpoint(ENDPOINT).config.variants
    parts.endpoint_store.add_config(
        ENDPOINT,
        (blue, dataclasses.replace(green, version=2)),
        ConfigChange.UPDATE,
        expected_current=1,
        parent=1,
    )
    # green's churn:2 answers three columns, each scored: taken for green and the endpoint.
    create_rule(parts, name="green-col", metric="drift.prediction.1", variant="green")
    create_rule(parts, name="any-col", metric="drift.prediction.2")
    with pytest.raises(InvalidInput, match="variant 'blue' of 'churn-api' serves models of one"):
        create_rule(parts, name="blue-col", metric="drift.prediction.1", variant="blue")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["any-col", "green-col"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"endpoint": "nope"}, EndpointNotFound, "nope"),
        ({"variant": "red"}, VariantNotFound, "no variant 'red'; it has blue, green"),
        ({"name": "bad name!"}, InvalidName, "alarm name"),
        ({"comparison": "=="}, InvalidInput, "use one of >, >=, <, <="),
        ({"statistic": "median"}, InvalidInput, "use one of mean, sum, min, max"),
        ({"datapoints": 3, "windows": 2}, InvalidInput, "datapoints"),
        ({"window": timedelta(seconds=90)}, InvalidInput, "whole number of minutes"),
        ({"threshold": float("nan")}, InvalidInput, "finite"),
        # From Python: a wrong type is refused by name (these were ValueError and TypeError
        # tracebacks, and 2.5 windows were stored as 2).
        ({"threshold": "abc"}, InvalidInput, "the threshold must be a number, got 'abc'"),
        ({"threshold": None}, InvalidInput, "the threshold must be a number, got None"),
        ({"windows": 2.5}, InvalidInput, r"windows \(M\) must be a whole number, got 2.5"),
        ({"windows": True}, InvalidInput, r"windows \(M\) must be a whole number, got True"),
        ({"datapoints": "1"}, InvalidInput, r"datapoints \(N\) must be a whole number"),
        ({"window": 300}, InvalidInput, "the window must be a timedelta or text .* got int 300"),
        ({"windows": np.int64(40), "window": timedelta(days=1)}, InvalidInput, r"\(40d\)"),
        # churn:1 answers one column, scored as drift.prediction only: a per-column score of
        # it was stored and stayed INSUFFICIENT_DATA for good.
        (
            {"metric": "drift.prediction.0"},
            InvalidInput,
            "'drift.prediction.0' never has a value: endpoint 'churn-api' serves models of one "
            "prediction column",
        ),
        (
            {"metric": "drift.prediction.x", "variant": "green"},
            InvalidInput,
            "variant 'green' of 'churn-api' serves models of one prediction column",
        ),
        # What a rule looks back over is read as one metric series: a month at most.
        (
            {"windows": 32, "window": timedelta(days=1)},
            InvalidInput,
            r"looks back 32 windows of 1d \(32d\); at most 31 days",
        ),
        # Drift scores may look back more than a month, but not past ten years: 1440 windows
        # of 1000 days reached before year 1, and every evaluation pass died on it.
        (
            {"metric": "drift.share", "windows": 1440, "window": timedelta(days=1000)},
            InvalidInput,
            r"\(1440000d\); at most 3660 days \(ten years\)",
        ),
        (
            {"windows": 10**9, "window": timedelta(days=3000)},
            InvalidInput,
            r"windows \(M\) must be 1 to 1440",
        ),
        ({"sinks": [SinkSpec("webhook", "ftp://example.org/x")]}, InvalidInput, "http or https"),
        # URLs no POST could reach, refused when the rule is made (one once raised a bare
        # ValueError, the others were stored and failed at every state change); a URL that
        # does not parse is not shown, its password not even in urllib's message.
        (
            {"sinks": [SinkSpec("webhook", "http://u:hunter2@[::1/hook")]},
            InvalidInput,
            r"cannot be read: Invalid IPv6 URL$",
        ),
        (
            {"sinks": [SinkSpec("webhook", "https://u:hunter2@hooks.example.org:99999/x")]},
            InvalidInput,
            "cannot be read: Port out of range",
        ),
        (
            {"sinks": [SinkSpec("webhook", "https://u:hunter2@hooks.example.org\uff03/x")]},
            InvalidInput,
            r"netloc 'u:\*\*\*@",
        ),
        ({"sinks": [SinkSpec("webhook", "http://h:abc/x")]}, InvalidInput, "integer value"),
        ({"sinks": [SinkSpec("webhook", "http://h:0/x")]}, InvalidInput, "port 0"),
        ({"sinks": [SinkSpec("webhook", "http://hooks example.org/x")]}, InvalidInput, "blank"),
        ({"sinks": [SinkSpec("webhook", "http://h/x\ny")]}, InvalidInput, "control character"),
        ({"sinks": [SinkSpec("pager")]}, InvalidInput, "unknown alarm sink 'pager'"),
        # From Python: an AttributeError each, before.
        ({"sinks": "http://h/x"}, InvalidInput, "sinks must be a list of SinkSpec"),
        ({"sinks": [("webhook", "http://h/x")]}, InvalidInput, "sinks must be a list of SinkSpec"),
        ({"metric": None}, InvalidInput, "the metric must be a name"),
    ],
)
def test_bad_rules_are_refused_and_change_nothing(
    parts: Parts, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as refused:
        create_rule(parts, **kwargs)
    assert "hunter2" not in str(refused.value)
    assert parts.alarm_store.list_rules() == []


def test_create_show_list_delete(parts: Parts) -> None:
    created = create_rule(parts, datapoints=2, windows=3, window=FIVE, variant="blue")
    rule = created.rule
    assert created.state is AlarmState.INSUFFICIENT_DATA and created.evaluated_at is None
    assert rule.statistic.value == "max", "latency quantiles summarise by their max"
    assert rule.condition == "latency_p99_ms max > 100 for 2 of 3 windows of 5m"
    assert [s.kind for s in rule.sinks] == ["log"]
    hook = SinkSpec("webhook", "http://127.0.0.1:9/hook")
    twice = create_rule(parts, name="twice", metric="requests", sinks=[hook, SinkSpec("log"), hook])
    assert twice.rule.sinks == (SinkSpec("log"), hook), "each sink once: one POST per change"
    parts.alarm_store.delete("twice")
    alarms = parts.alarms()
    with pytest.raises(AlreadyExists):
        create_rule(parts)
    assert alarms.state("p99-high") == created
    assert [s.rule.name for s in alarms.states(ENDPOINT)] == ["p99-high"]
    assert alarms.states("other") == []
    assert create_rule(parts, name="reqs", metric="requests").rule.statistic.value == "sum"
    alarms.delete("p99-high")
    with pytest.raises(NotFound, match="p99-high"):
        alarms.state("p99-high")
    with pytest.raises(NotFound, match="p99-high"):
        alarms.history("p99-high")
    assert [s.rule.name for s in alarms.list_alarms()] == ["reqs"]
    assert alarms.list_alarms("gone") == []  # a deleted endpoint's rules may stay: not refused
    with pytest.raises(InvalidName, match="endpoint name"):
        alarms.list_alarms("bad name!")


def test_no_data_is_insufficient_data_never_ok(parts: Parts) -> None:
    create_rule(parts)
    alarms = parts.alarms(Series())
    for minutes in (5, 10, 30):
        assert alarms.evaluate(T0 + timedelta(minutes=minutes)) == []
        status = alarms.state("p99-high")
        assert status.state is AlarmState.INSUFFICIENT_DATA
        assert status.reason == "no data for latency_p99_ms in the last 1 window(s)"
        assert status.evaluated_at == T0 + timedelta(minutes=minutes)


def test_n_of_m_changes_state_on_the_right_window(parts: Parts) -> None:
    series = Series()
    # Per minute from 10:00: calm for 10 minutes, 10 slow minutes, then calm until 10:30.
    series.set("latency_p99_ms", T0, [50.0] * 10 + [150.0] * 10 + [50.0] * 10)
    create_rule(parts, datapoints=2, windows=3, window=FIVE)
    alarms = parts.alarms(series)
    timeline = {}
    for minutes in range(5, 50, 5):
        alarms.evaluate(T0 + timedelta(minutes=minutes))
        timeline[minutes] = alarms.state("p99-high").state.value
    assert timeline == {
        5: "INSUFFICIENT_DATA",  # 1 calm window of 3: 2 breaches are still possible
        10: "OK",  # 2 calm of 3: they can no longer be
        15: "OK",  # 1 breach
        20: "ALARM",  # 10:10-10:15 and 10:15-10:20 breach
        25: "ALARM",
        30: "OK",  # only 10:15-10:20 is left breaching
        35: "OK",
        40: "INSUFFICIENT_DATA",  # 1 calm window, 2 without data
        45: "INSUFFICIENT_DATA",
    }
    history = alarms.history("p99-high")
    assert [(e.at, e.old.value, e.new.value) for e in reversed(history)] == [
        (T0 + timedelta(minutes=10), "INSUFFICIENT_DATA", "OK"),
        (T0 + timedelta(minutes=20), "OK", "ALARM"),
        (T0 + timedelta(minutes=30), "ALARM", "OK"),
        (T0 + timedelta(minutes=40), "OK", "INSUFFICIENT_DATA"),
    ]
    alarm = history[2]
    assert [w.value for w in alarm.windows] == [150.0, 150.0, 50.0]
    assert [w.breaching for w in alarm.windows] == [True, True, False]
    assert alarm.reason.startswith("2 of 3 window(s) breach; needs 2 for ALARM")
    assert [n.to_dict() for n in alarm.notifications] == [
        {"sink": "log", "ok": True, "error": None, "attempts": 1, "at": alarm.at.isoformat()}
    ]


def test_a_rule_that_cannot_be_evaluated_does_not_stop_the_others(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    # A drift rule stored before spans were capped at ten years: its oldest window starts
    # before year 1. Its evaluation raised OverflowError out of evaluate(), so every pass of
    # the scheduler loop failed and no rule named after it was ever evaluated.
    huge = dataclasses.replace(
        create_rule(parts, name="ancient", metric="drift.share", threshold=0.3).rule,
        windows=1440,
        window=timedelta(days=1000),
    )
    parts.alarm_store.delete("ancient")
    parts.alarm_store.create_rule(huge, "not evaluated yet")
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    create_rule(parts, name="p99-high")
    alarms = parts.alarms(series)
    later = datetime(2030, 1, 1, tzinfo=T0.tzinfo)  # a tick of the 1000-day windows has passed
    series.set("latency_p99_ms", later - FIVE, [150.0] * 5)
    events = alarms.evaluate(later)
    assert [(e.alarm, e.new.value) for e in events] == [("p99-high", "ALARM")]
    assert alarms.state("ancient").evaluated_at is None
    assert "alarm ancient not evaluated" in caplog.text


def test_an_older_evaluation_never_overwrites_a_newer_one(parts: Parts) -> None:
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 10)
    create_rule(parts)
    parts.alarms(series).evaluate(T0 + timedelta(minutes=10))
    assert parts.alarms(series).state("p99-high").state is AlarmState.ALARM
    # A slow process evaluates the window that ended at 10:05 after 10:10 was recorded.
    late = parts.alarms(Series(), holder="late")
    assert late.evaluate(T0 + timedelta(minutes=5)) == []
    status = late.state("p99-high")
    assert (status.state, status.evaluated_at) == (AlarmState.ALARM, T0 + timedelta(minutes=10))


def test_a_variant_alarm_reads_that_variant(parts: Parts) -> None:
    series = Series()
    series.set("error_rate", T0, [0.5] * 5, variant="green")
    series.set("error_rate", T0, [0.0] * 5)
    create_rule(parts, name="green-errors", metric="error_rate", threshold=0.1, variant="green")
    create_rule(parts, name="errors", metric="error_rate", threshold=0.1)
    alarms = parts.alarms(series)
    alarms.evaluate(T0 + FIVE)
    assert alarms.state("green-errors").state is AlarmState.ALARM
    assert alarms.state("errors").state is AlarmState.OK


def test_a_drift_score_alarm_reads_the_stored_monitor_runs(parts: Parts) -> None:
    shares = {10: 0.1, 20: 0.5, 30: 0.1}
    runner = Runner(
        reports=lambda now: [
            Report("blue", {"drift.share": 0.0, "drift.feature.age": 0.0}),
            Report("green", {"drift.share": shares[now.minute], "drift.feature.age": 0.9}),
        ]
    )
    monitors = parts.monitors(runner)
    monitors.schedule(ENDPOINT, every=timedelta(minutes=10))
    for minutes in (10, 20, 30):
        monitors.run_due(T0 + timedelta(minutes=minutes))
    create_rule(
        parts, name="drifted", metric="drift.share", threshold=0.3, window=timedelta(minutes=10)
    )
    create_rule(
        parts,
        name="blue-age",
        metric="drift.feature.age",
        threshold=0.3,
        variant="blue",
        window=timedelta(minutes=10),
    )
    alarms = parts.alarms()
    # A run counts in the window its tick falls in, judged when that window ends.
    timeline = []
    for minutes in (20, 30, 40, 50):
        alarms.evaluate(T0 + timedelta(minutes=minutes))
        timeline.append((alarms.state("drifted").state.value, alarms.state("blue-age").state.value))
    assert timeline == [
        ("OK", "OK"),  # the 10:10 run: share 0.1 on green
        ("ALARM", "OK"),  # the 10:20 run: share 0.5 on green; blue's age never drifts
        ("OK", "OK"),
        ("INSUFFICIENT_DATA", "INSUFFICIENT_DATA"),  # no run after 10:30
    ]
    # What the alarms read are the runs' scores: their reports are left in the store. Read
    # with them, three days of a 10 s schedule of a 30-feature model took 3 GB per rule.
    read = parts.monitor_store.runs_between(ENDPOINT, T0, T0 + timedelta(hours=1))
    assert [(r.tick.minute, r.scores["green"]["drift.share"]) for r in read] == [
        (10, 0.1), (20, 0.5), (30, 0.1)
    ]  # fmt: skip
    assert [r.reports for r in read] == [(), (), ()]
    assert all(len(r.reports) == 2 for r in monitors.runs(ENDPOINT)), "kept for `monitor runs`"


def test_a_webhook_gets_each_change_and_a_failing_one_is_recorded(parts: Parts) -> None:
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5 + [50.0] * 5)
    with webhook_receiver() as good, webhook_receiver() as bad:
        bad.status = 500
        sinks = [SinkSpec("webhook", good.url), SinkSpec("webhook", bad.url)]
        create_rule(parts, sinks=sinks)
        alarms = parts.alarms(series)
        events = alarms.evaluate(T0 + FIVE) + alarms.evaluate(T0 + 2 * FIVE)
        assert [(e.old.value, e.new.value) for e in events] == [
            ("INSUFFICIENT_DATA", "ALARM"),
            ("ALARM", "OK"),
        ]
        bodies = good.received()
        assert [(b["alarm"], b["old_state"], b["new_state"]) for b in bodies] == [
            ("p99-high", "INSUFFICIENT_DATA", "ALARM"),
            ("p99-high", "ALARM", "OK"),
        ]
        assert bodies[0]["endpoint"] == ENDPOINT and bodies[0]["rule"]["threshold"] == 100.0
        assert [(b["kind"], b["id"]) for b in bodies] == [("state_change", 1), ("state_change", 2)]
        assert bodies[0]["windows"][0]["value"] == 150.0
        assert len(bad.received()) == 2, "the failing receiver was called each time"
    history = alarms.history("p99-high")
    for event in history:
        sent = {n.sink: n for n in event.notifications}
        # Named with the path after its first segment masked (``…/hooks/***``).
        assert sent["log"].ok and sent[sinks[0].label].ok
        failed = sent[sinks[1].label]
        assert not failed.ok and failed.error is not None and "answered 500" in failed.error
    assert alarms.state("p99-high").state is AlarmState.OK


def test_an_unreachable_webhook_is_recorded_and_the_loop_goes_on(parts: Parts) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    create_rule(parts, sinks=[SinkSpec("webhook", f"http://127.0.0.1:{port}/x?token=s3cret")])
    create_rule(parts, name="second", threshold=10.0)
    events = parts.alarms(series).evaluate(T0 + FIVE)
    assert [(e.alarm, e.new.value) for e in events] == [("p99-high", "ALARM"), ("second", "ALARM")]
    failed = events[0].notifications[1]
    assert not failed.ok and failed.error is not None and "unreachable" in failed.error
    assert "s3cret" not in failed.error, "a token in the URL is masked"


def test_a_webhook_answering_a_byte_at_a_time_does_not_hold_the_loop(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx's timeout bounds each read: a receiver sending a byte every 0.1 s held the
    # evaluation (and so the whole scheduler loop) for as long as it kept sending.
    from modelyard.services.sinks import webhook_sink

    monkeypatch.setattr(webhook_sink, "TIMEOUT_S", 1.0)
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    found: list[Any] = []
    with webhook_receiver() as slow:
        slow.trickle = True
        create_rule(parts, sinks=[SinkSpec("webhook", slow.url)])
        create_rule(parts, name="second", threshold=10.0)
        alarms = parts.alarms(series)
        worker = threading.Thread(target=lambda: found.extend(alarms.evaluate(T0 + FIVE)))
        worker.daemon = True
        worker.start()
        wait_for("the evaluation to return", lambda: not worker.is_alive())
    assert [(e.alarm, e.new.value) for e in found] == [("p99-high", "ALARM"), ("second", "ALARM")]
    failed = found[0].notifications[1]
    assert not failed.ok and failed.error is not None
    assert "did not answer within 1 s" in failed.error, failed.error
    (stored,) = alarms.history("p99-high")
    assert stored.notifications == found[0].notifications


def test_two_evaluators_record_and_send_each_change_once(db_url: str) -> None:
    setup = open_parts(db_url)
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5 + [50.0] * 5 + [150.0] * 5)
    with webhook_receiver() as receiver:
        create_rule(setup, sinks=[SinkSpec("webhook", receiver.url)])
        nows = [T0 + timedelta(minutes=m, seconds=s) for m in range(5, 20) for s in (0, 30)]
        start = threading.Barrier(2)
        events: dict[str, list[Any]] = {"a": [], "b": []}

        def evaluate(holder: str) -> None:
            parts = open_parts(db_url, seed=False)  # its own engine: its own connections
            try:
                alarms = parts.alarms(series, holder=holder)
                for now in nows:
                    start.wait(60)
                    events[holder].extend(alarms.evaluate(now))
            finally:
                parts.close()

        threads = [threading.Thread(target=evaluate, args=(h,)) for h in events]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        changes = sorted(
            ((e.at, e.new.value) for e in events["a"] + events["b"]), key=lambda c: c[0]
        )
        assert changes == [
            (T0 + FIVE, "ALARM"),
            (T0 + 2 * FIVE, "OK"),
            (T0 + 3 * FIVE, "ALARM"),
        ]
        assert [b["new_state"] for b in receiver.received()] == ["ALARM", "OK", "ALARM"]
        # Each window was judged once, by one of the two (the forward-only store would hide a
        # second judgement of the same window; the reads do not).
        windows = [T0 + k * FIVE for k in range(1, 4)]
        assert sorted(series.reads) == windows  # type: ignore[type-var]
    assert len(setup.alarms().history("p99-high")) == 3
    setup.close()


def test_a_rule_stored_before_the_cap_reads_its_whole_span_a_month_at_a_time(
    parts: Parts,
) -> None:
    """Rules span 31 days at most now (a metric read's month); one stored before, over 60
    days, is still judged on all of them: its series is read in month-long pieces."""
    from modelyard.domain.alarms import AlarmRule, Comparison, Statistic
    from modelyard.domain.metric_stats import MetricStats
    from modelyard.domain.metrics import SeriesRow
    from modelyard.services.metrics import MetricsService
    from modelyard.storage.sql.metric_store import SqlMetricStore

    store = SqlMetricStore(parts.engine, prune_every_s=0)
    metrics = MetricsService(store, parts.endpoint_store, clock=parts.clock)
    end = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    # Requests on day 45 before the end and on the last day, none in between.
    store.write([
        SeriesRow(ENDPOINT, "blue", end - timedelta(days=d, hours=-3), 60, "w1",
                  MetricStats(sums={"requests": 7.0}))
        for d in (45, 1)
    ])  # fmt: skip
    rule = AlarmRule(
        name="quiet", endpoint=ENDPOINT, variant=None, metric="requests",
        comparison=Comparison.LT, threshold=1.0, datapoints=1, windows=60,
        window=timedelta(days=1), statistic=Statistic.SUM, sinks=(), created_at=T0,
    )  # fmt: skip
    parts.alarm_store.create_rule(rule, "stored before spans were capped")
    with pytest.raises(InvalidInput, match="looks back 60 windows of 1d"):
        create_rule(parts, name="again", metric="requests", windows=60, window=timedelta(days=1))
    judged = parts.alarms(metrics.series).judge(rule, end)
    with_data = [w for w in judged.windows if w.points]
    assert [(w.start, w.value) for w in with_data] == [
        (end - timedelta(days=1), 7.0),
        (end - timedelta(days=45), 7.0),
    ]
    # A drift score reads monitor runs, not a metric series: no cap on its span.
    create_rule(parts, name="drifty", metric="drift.share", windows=60, window=timedelta(days=1))


def test_alarms_read_the_metric_series_servers_write(parts: Parts) -> None:
    from modelyard.domain.metric_stats import MetricStats
    from modelyard.domain.metrics import SeriesRow
    from modelyard.services.metrics import MetricsService
    from modelyard.storage.sql.metric_store import SqlMetricStore

    store = SqlMetricStore(parts.engine, prune_every_s=0)
    # Two workers' rows per minute, as servers write them: 10 requests each, and from 10:05
    # on worker 2 answers 5 of its 10 with errors (error rate 0.25 over both).
    rows = []
    for minute in range(10):
        for worker, errors in (("w1", 0.0), ("w2", 5.0 if minute >= 5 else 0.0)):
            stats = MetricStats(sums={"requests": 10.0, "errors": errors})
            start = T0 + timedelta(minutes=minute)
            rows.append(SeriesRow(ENDPOINT, "blue", start, 60, worker, stats))
    store.write(rows)
    metrics = MetricsService(store, parts.endpoint_store, clock=parts.clock)
    create_rule(parts, name="errors", metric="error_rate", threshold=0.2)
    create_rule(parts, name="traffic", metric="requests", comparison="<", threshold=50.0)
    alarms = parts.alarms(metrics.series)
    states = []
    for minutes in (5, 10, 15):
        alarms.evaluate(T0 + timedelta(minutes=minutes))
        states.append((alarms.state("errors").state.value, alarms.state("traffic").state.value))
    assert states == [
        ("OK", "OK"),  # 0 errors; 100 requests in 5 minutes (their sum)
        ("ALARM", "OK"),  # error rate 0.25 each minute (their mean)
        ("INSUFFICIENT_DATA", "INSUFFICIENT_DATA"),  # no rows after 10:10
    ]
    (event,) = [e for e in alarms.history("errors") if e.new is AlarmState.ALARM]
    assert [w.value for w in event.windows] == [0.25] and event.windows[0].points == 5


def test_old_state_changes_are_pruned_keeping_each_alarms_latest(parts: Parts) -> None:
    """A flapping rule records a change every window; housekeeping deletes those older than
    the retention, but never a rule's latest change (what put it in its state)."""
    series = Series()
    series.set("latency_p99_ms", T0, [50.0, 150.0] * 30)  # a state change every minute
    create_rule(parts, window=timedelta(minutes=1))
    create_rule(parts, name="steady", window=timedelta(minutes=1), threshold=1000.0)
    alarms = parts.alarms(series)
    for minute in range(1, 61):
        alarms.evaluate(T0 + timedelta(minutes=minute))
    flapping = alarms.history("p99-high", limit=1000)
    assert len(flapping) == 60
    assert [e.new.value for e in alarms.history("steady")] == ["OK"]  # at 10:01

    assert alarms.prune_history(T0 + timedelta(minutes=100)) is None  # kept forever by default
    pruning = parts.alarms(series)
    pruning.history_retention = timedelta(minutes=50)  # as MODELYARD_ALARM_HISTORY_RETENTION_D
    # Older than 10:50 (made at 10:01 … 10:49) is deleted, but steady's only change stays.
    assert pruning.prune_history(T0 + timedelta(minutes=100)) == 49
    kept = alarms.history("p99-high", limit=1000)
    assert [e.at for e in kept] == [e.at for e in flapping[:11]]
    assert [e.new.value for e in alarms.history("steady")] == ["OK"]
    assert alarms.state("p99-high").state.value == flapping[0].new.value
    assert pruning.prune_history(T0 + timedelta(minutes=100)) == 0
    # A message about the alarm (a rollback it caused) is history too, but not what put the
    # rule in its state: pruned by age like the older changes, the latest change kept.
    (told,) = alarms.announce([
        AlarmEvent(0, "steady", ENDPOINT, T0 + timedelta(minutes=70), AlarmState.OK,
                   AlarmState.OK, "deployment 1 rolled back", kind=DEPLOYMENT_ROLLBACK),
        AlarmEvent(0, "deleted", ENDPOINT, T0 + timedelta(minutes=70), AlarmState.OK,
                   AlarmState.OK, "deployment 1 rolled back", kind=DEPLOYMENT_ROLLBACK),
    ])  # fmt: skip
    assert [e.kind for e in alarms.history("steady")] == [DEPLOYMENT_ROLLBACK, "state_change"]
    assert told.id == alarms.history("steady")[0].id and told.notifications[0].ok
    # Long after every change: each rule keeps its latest.
    assert pruning.prune_history(T0 + timedelta(days=365)) == 11
    assert [e.at for e in alarms.history("p99-high")] == [flapping[0].at]
    assert [(e.kind, e.new.value) for e in alarms.history("steady")] == [("state_change", "OK")]


def test_a_drift_alarm_of_an_unmonitored_endpoint_says_it_gets_no_data(parts: Parts) -> None:
    """Drift scores come only from the monitor runs: a rule on one of an endpoint whose drift
    checks are not scheduled is taken (they may be scheduled next, as a CloudWatch alarm may
    come before its metric), but says, when created, read and evaluated, that it gets no data,
    rather than sitting in INSUFFICIENT_DATA without a word. Unscheduling names the rules it
    leaves so."""
    note = (
        "endpoint 'churn-api' has no scheduled drift checks, and drift scores come only from "
        "their runs: this rule gets no data until they are scheduled"
    )
    made = create_rule(parts, name="drifted", metric="drift.share", threshold=0.3)
    assert (made.state, made.note) == (AlarmState.INSUFFICIENT_DATA, note)
    assert create_rule(parts, name="slow").note is None, "a metric series needs no schedule"
    alarms = parts.alarms()
    read = alarms.state("drifted")
    assert read.note == note and read.to_dict()["note"] == note
    assert [(s.rule.name, s.note) for s in alarms.list_alarms()] == [
        ("drifted", note), ("slow", None)
    ]  # fmt: skip
    assert [s.note for s in alarms.states(ENDPOINT)] == [note, None]
    alarms.evaluate(T0 + FIVE)
    assert alarms.state("drifted").reason.endswith(f"; {note}")

    monitors = parts.monitors(Runner())
    monitors.schedule(ENDPOINT, every=timedelta(minutes=5))
    assert alarms.state("drifted").note is None
    assert monitors.unschedule(ENDPOINT) == ["drifted"]
    assert alarms.state("drifted").note == note


def test_a_threshold_past_the_largest_float_is_refused_by_name(parts: Parts) -> None:
    """It was an OverflowError out of ``float()``; nothing is stored."""
    with pytest.raises(
        InvalidInput, match=r"^the threshold must be a number, got an int too large for a float$"
    ):
        create_rule(parts, threshold=10**400)
    assert parts.alarms().list_alarms() == []


def test_windows_of_values_near_the_largest_float_are_judged(parts: Parts) -> None:
    """A feature at 1e308 gives per-minute means of 1e308 (the series carry their sums); a
    window's mean of them is 1e308 too, and a window's sum past the largest float is at least
    the largest float. ``math.fsum`` raised OverflowError on both, so the rules were never
    evaluated again (logged, and left in their last state)."""
    series = Series()
    series.set("input_mean.age", T0, [1e308] * 5)
    series.set("input_max.age", T0, [1e308, 1e308, -1e308, 1e308, 1e308])
    series.set("input_min.age", T0, [-1e308] * 5)
    create_rule(parts, name="mean", metric="input_mean.age", threshold=1e300)
    create_rule(parts, name="sum", metric="input_max.age", threshold=1e300, statistic="sum")
    create_rule(parts, name="low", metric="input_min.age", comparison="<", threshold=-1e300,
            statistic="sum")  # fmt: skip
    alarms = parts.alarms(series)
    events = {e.alarm: e for e in alarms.evaluate(T0 + FIVE)}
    assert {name: e.new for name, e in events.items()} == {
        "low": AlarmState.ALARM, "mean": AlarmState.ALARM, "sum": AlarmState.ALARM
    }  # fmt: skip
    assert [w.value for w in events["mean"].windows] == [1e308]
    assert [w.value for w in events["sum"].windows] == [sys.float_info.max]
    assert [w.value for w in events["low"].windows] == [-sys.float_info.max]
    # Kept and read back (the history's JSON has no infinity).
    assert alarms.history("sum")[0].windows == events["sum"].windows
