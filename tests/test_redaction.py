"""Webhook URLs masked for display: Slack-style path tokens, passwords and secret query values;
the leaf ``modelyard.redaction`` is what ``storage.urls`` re-exports."""

from __future__ import annotations

import pytest

from modelyard import redaction
from modelyard.storage import urls


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/abcdefSECRETxyz",
            "https://hooks.slack.com/services/***",
        ),
        ("https://discord.com/api/webhooks/123/tokenSECRET", "https://discord.com/api/***"),
        (
            "https://chat.example/hooks/SECRET?token=SECRET",
            "https://chat.example/hooks/***?token=***",
        ),
        (
            "https://bot:SECRET@relay.example:8443/alerts",
            "https://bot:***@relay.example:8443/alerts",
        ),
        ("https://relay.example/alerts?team=ml", "https://relay.example/alerts?team=ml"),
        ("https://relay.example", "https://relay.example"),
    ],
)
def test_webhook_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redaction.mask_webhook_url(url) == shown
    assert "SECRET" not in shown


def test_store_urls_keep_their_path() -> None:
    assert urls.mask_url is redaction.mask_url
    assert urls.mask_url("s3://KEY:SECRET@bucket/a/b/c") == "s3://KEY:***@bucket/a/b/c"
