"""The webhook sink: each state change POSTed as JSON to a URL (Slack-, PagerDuty- or
anything-compatible through a relay). The body is the history entry (``AlarmEvent.to_dict()``)
with the rule (``"rule"``) beside it; the rule's sinks are named by kind only, so a receiver
never learns another's URL (which may hold its secret)."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from modelyard.domain.alarms import AlarmEvent, AlarmRule
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.redaction import mask_webhook_url, redact, redact_webhook

#: Seconds a webhook has to answer, in all: the scheduler loop waits for it.
TIMEOUT_S = 10.0
#: The most of an answer's body read (its start is shown when the answer is not 2xx).
_MAX_BODY = 4096


class WebhookSink:
    """POSTs each state change to ``target`` (an http or https URL); any answer but 2xx, or
    no whole answer within :data:`TIMEOUT_S`, is a failure."""

    def __init__(self, target: str | None, timeout_s: float | None = None) -> None:
        _check_url(target or "")
        self._url = str(target)
        self._timeout = TIMEOUT_S if timeout_s is None else timeout_s

    def payload(self, event: AlarmEvent, rule: AlarmRule) -> dict[str, Any]:
        """The JSON body sent for ``event``."""
        body = event.to_dict()
        body.pop("notifications", None)  # filled in only after every sink was called
        body["rule"] = rule.to_dict()
        body["rule"]["sinks"] = [{"kind": s.kind} for s in rule.sinks]
        return body

    def notify(self, event: AlarmEvent, rule: AlarmRule) -> None:
        """POST the event, and wait for the answer :data:`TIMEOUT_S` at most in all.

        httpx's timeouts bound each read, not the exchange: a receiver that sends its answer a
        byte at a time, or an endless body, held the scheduler loop for good. The exchange
        runs in a thread of its own, which stops reading at the deadline (or once it has
        :data:`_MAX_BODY` bytes); the loop waits for it until then only.

        Raises:
            ModelyardError: the URL could not be reached, did not answer 2xx, or not in time.
        """
        # The URL may carry a token (in its path, a query parameter, a password): messages show
        # it masked.
        shown = mask_webhook_url(self._url)
        body = self.payload(event, rule)
        deadline = time.monotonic() + self._timeout
        outcome: list[tuple[int, str] | ModelyardError] = []
        finished = threading.Event()

        def exchange() -> None:
            try:
                outcome.append(self._post(body, deadline, shown))
            except ModelyardError as exc:
                outcome.append(exc)
            except Exception as exc:  # a defect: reported by the caller like any failure
                outcome.append(ModelyardError(f"webhook {shown} failed: {type(exc).__name__}"))
            finally:
                finished.set()

        threading.Thread(target=exchange, name="webhook", daemon=True).start()
        if not finished.wait(self._timeout) or not outcome:
            raise ModelyardError(f"webhook {shown} did not answer within {self._timeout:g} s")
        result = outcome[0]
        if isinstance(result, ModelyardError):
            raise result
        status, text = result
        if not 200 <= status < 300:
            # A receiver's answer may quote the URL it was sent to (``Cannot POST /services/…``).
            said = redact_webhook(text, self._url)[:200]
            raise ModelyardError(f"webhook {shown} answered {status}: {said}")

    def _post(self, body: dict[str, Any], deadline: float, shown: str) -> tuple[int, str]:
        """POST ``body``; the answer's status and the start of its text, read until
        ``deadline`` at most."""
        import httpx  # on use: only alarms with a webhook need it

        try:
            with httpx.stream("POST", self._url, json=body, timeout=self._timeout) as answer:
                data = bytearray()
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) >= _MAX_BODY or time.monotonic() >= deadline:
                        break
                text = data[:_MAX_BODY].decode(answer.charset_encoding or "utf-8", errors="replace")
                return answer.status_code, text
        except httpx.HTTPError as exc:
            reason = redact_webhook(
                (str(exc) or type(exc).__name__).replace(self._url, shown), self._url
            )
            raise ModelyardError(f"webhook {shown} unreachable: {reason}") from None


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
