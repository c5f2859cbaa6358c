"""The webhook sink: each state change POSTed as JSON to a URL (Slack-, PagerDuty- or
anything-compatible through a relay). The body is the history entry (``AlarmEvent.to_dict()``)
with the rule (``"rule"``) beside it; the rule's sinks are named by kind only, so a receiver
never learns another's URL (which may hold its secret)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from modelyard.domain.alarms import AlarmEvent, AlarmRule
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.redaction import mask_webhook_url, redact

#: Seconds a webhook has to answer: the scheduler loop waits for it.
TIMEOUT_S = 10.0


class WebhookSink:
    """POSTs each state change to ``target`` (an http or https URL); any answer but 2xx, or
    no answer within :data:`TIMEOUT_S`, is a failure."""

    def __init__(self, target: str | None, timeout_s: float = TIMEOUT_S) -> None:
        _check_url(target or "")
        self._url = str(target)
        self._timeout = timeout_s

    def payload(self, event: AlarmEvent, rule: AlarmRule) -> dict[str, Any]:
        """The JSON body sent for ``event``."""
        body = event.to_dict()
        body.pop("notifications", None)  # filled in only after every sink was called
        body["rule"] = rule.to_dict()
        body["rule"]["sinks"] = [{"kind": s.kind} for s in rule.sinks]
        return body

    def notify(self, event: AlarmEvent, rule: AlarmRule) -> None:
        """POST the event.

        Raises:
            ModelyardError: the URL could not be reached or did not answer 2xx.
        """
        import httpx  # on use: only alarms with a webhook need it

        # The URL may carry a token (in its path, a query parameter, a password): messages show
        # it masked.
        shown = mask_webhook_url(self._url)
        try:
            answer = httpx.post(self._url, json=self.payload(event, rule), timeout=self._timeout)
        except httpx.HTTPError as exc:
            reason = redact((str(exc) or type(exc).__name__).replace(self._url, shown), self._url)
            raise ModelyardError(f"webhook {shown} unreachable: {reason}") from None
        if not answer.is_success:
            raise ModelyardError(
                f"webhook {shown} answered {answer.status_code}: {answer.text[:200]}"
            )


def _check_url(url: str) -> None:
    """Refuse a URL no POST could reach, at creation rather than at each state change: not
    http(s), no host, a port outside 1-65535, blanks or control characters, or a URL that
    does not parse (shown without itself then: it cannot be masked reliably).

    Raises:
        InvalidInput: naming the problem.
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        reason = redact(str(exc), url)  # a netloc quoted in it may hold a password
        raise InvalidInput(
            f"a webhook needs an http or https URL; this one cannot be read: {reason}"
        ) from None
    shown = repr(mask_webhook_url(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"a webhook needs an http or https URL, got {shown}")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidInput(f"webhook URL {shown} holds a blank or control character")
    if port == 0:
        raise InvalidInput(f"webhook URL {shown} has port 0; a port is 1 to 65535")
