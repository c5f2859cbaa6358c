"""A webhook URL may carry a secret (a ``token`` query parameter, a password, a Slack-style
path): it reaches only its own receiver. The history of each notification, the CLI's sink list,
the rule's JSON form (``alarms … --json``) and the bodies sent to the *other* receivers of the
same rule name the sink with the secret masked or left out; the store keeps it whole."""

from __future__ import annotations

import json

from modelyard.cli.alarms import _detail
from modelyard.domain.alarms import SinkSpec
from tests.services.alarm_parts import FIVE, Series, create_rule
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import T0, Parts, open_parts
from tests.services.webhook_server import webhook_receiver

parts = parts_fixture(open_parts)


SECRETS = ("t0psecret", "s3cret", "hunter2")


def test_webhook_secrets_reach_only_their_own_receiver(parts: Parts) -> None:
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    with webhook_receiver() as first, webhook_receiver() as second:
        sinks = [
            SinkSpec("webhook", f"{first.url}?token=t0psecret"),
            SinkSpec("webhook", second.url.replace("://", "://bot:hunter2@") + "?sig=s3cret"),
        ]
        create_rule(parts, sinks=sinks)
        alarms = parts.alarms(series)
        (event,) = alarms.evaluate(T0 + FIVE)
        bodies = first.received() + second.received()
    assert len(bodies) == 2, "each receiver got the change"
    for body in bodies:
        sent = json.dumps(body)
        assert not [s for s in SECRETS if s in sent], sent
    (stored,) = alarms.history("p99-high")
    for notification in (*event.notifications, *stored.notifications):
        assert notification.ok, notification
        assert not [s for s in SECRETS if s in notification.sink], notification.sink
    shown = _detail(alarms.state("p99-high"))  # ``modelyard alarms show``
    assert "webhook" in shown and not [s for s in SECRETS if s in shown], shown
    hooks = "/hooks/alarms"  # the receivers' path: its second segment is masked too
    assert [n.sink for n in stored.notifications] == [
        "log",
        "webhook " + first.url.replace(hooks, "/hooks/***") + "?token=***",
        "webhook "
        + second.url.replace("://", "://bot:***@").replace(hooks, "/hooks/***")
        + "?sig=***",
    ]


def test_a_receiver_quoting_the_url_in_its_answer_does_not_leak_it(parts: Parts) -> None:
    # The start of a failed answer is kept in the history and logged; an Express-style 404
    # ("Cannot POST /services/T0/B0/XXXX?token=…") put the path and token there as sent.
    series = Series()
    series.set("latency_p99_ms", T0, [150.0] * 5)
    with webhook_receiver() as echoing:
        echoing.status = 404
        echoing.echo = True
        url = (
            echoing.url.replace("/hooks/alarms", "/services/T0s3cret/B0hunter2")
            + "?token=t0psecret"
        )
        create_rule(parts, sinks=[SinkSpec("webhook", url)])
        (event,) = parts.alarms(series).evaluate(T0 + FIVE)
    (stored,) = parts.alarms().history("p99-high")
    failed = stored.notifications[1]
    assert not failed.ok and failed.error is not None
    assert failed.error.endswith("answered 404: Cannot POST /services/***?token=***"), failed.error
    assert not [s for s in SECRETS if s in failed.error], failed.error
    assert event.notifications == stored.notifications


def test_the_label_of_a_sink_without_a_target_is_its_kind() -> None:
    assert SinkSpec("log").label == "log"
    assert SinkSpec("webhook", "https://h.example/x?a=1").label == "webhook https://h.example/x?a=1"


SLACK = "https://hooks.slack.com/services/T0SECRET1/B0SECRET2/xoxsecret3"


def test_the_json_form_of_a_rule_masks_its_webhooks_and_the_store_keeps_them(
    parts: Parts,
) -> None:
    created = create_rule(parts, sinks=[SinkSpec("webhook", SLACK + "?token=t0psecret")])
    for status in (created, parts.alarms().state("p99-high")):
        shown = json.dumps(status.to_dict())  # ``modelyard alarms show|list --json``
        assert not [s for s in (*SECRETS, "SECRET", "xoxsecret3") if s in shown], shown
        assert "https://hooks.slack.com/services/***?token=***" in shown
        assert (
            status.rule.sinks[1].label == "webhook https://hooks.slack.com/services/***?token=***"
        )
        assert status.rule.sinks[1].target == SLACK + "?token=t0psecret", "stored as given"
    assert "xoxsecret3" not in _detail(created)
