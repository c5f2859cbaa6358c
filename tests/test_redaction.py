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
        # A user name alone is how some receivers take their key: it was shown in clear.
        ("https://SECRETkey@relay.example/alerts", "https://***@relay.example/alerts"),
        ("https://relay.example/alerts?team=ml", "https://relay.example/alerts?team=ml"),
        # An Azure Functions HTTP trigger takes its function key as ``code``: shown in clear.
        (
            "https://fn.azurewebsites.net/api/alert?code=SECRETfunctionKey==",
            "https://fn.azurewebsites.net/api/***?code=***",
        ),
        ("https://relay.example", "https://relay.example"),
    ],
)
def test_webhook_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redaction.mask_webhook_url(url) == shown
    assert "SECRET" not in shown


def test_code_is_a_secret_name_only_as_the_whole_name() -> None:
    """``code`` is Azure Functions' key, but ``encode=json`` holds no secret: taking it for one
    masked its value everywhere in a message ("invalid json body" read "invalid *** body")."""
    url = "https://relay.example/alerts?encode=json&zipcode=12345"
    assert redaction.mask_webhook_url(url) == url
    assert redaction.redact_webhook("invalid json body", url) == "invalid json body"
    assert redaction.is_secret_parameter("Code") and not redaction.is_secret_parameter("encode")


def test_a_client_url_hides_a_key_given_as_its_user_name() -> None:
    """``http://KEY@gateway`` (httpx sends it as basic auth): invoke and the Predictor showed
    it in clear, since a store URL's lone user (a role) is no secret."""
    url = "http://SECRETAPIKEY@gw.example:8080/prefix"
    assert redaction.mask_client_url(url) == "http://***@gw.example:8080/prefix"
    assert redaction.mask_url(url) == url  # a store URL keeps its role
    said = redaction.redact_client(f"cannot connect to {url}: refused for SECRETAPIKEY", url)
    assert "SECRETAPIKEY" not in said and said.endswith("refused for ***")
    empty = "http://SECRETAPIKEY:@gw.example/"  # curl -u KEY: sends a key this way
    assert redaction.mask_client_url(empty) == "http://***:@gw.example/"
    assert "SECRETAPIKEY" not in redaction.redact_client(f"no answer from {empty}", empty)
    with_password = "http://ann:S3cret@gw.example/"
    assert redaction.mask_client_url(with_password) == "http://ann:***@gw.example/"
    assert redaction.redact_client("no S3cret here", with_password) == "no *** here"


def test_store_urls_keep_their_path() -> None:
    assert urls.mask_url is redaction.mask_url
    assert urls.mask_url("s3://KEY:SECRET@bucket/a/b/c") == "s3://KEY:***@bucket/a/b/c"


def test_text_quoting_a_webhook_url_is_redacted_of_its_secrets() -> None:
    url = "https://bot:pw1234@hooks.example.org/services/T0SECRET/B0SECRET/x?token=tok999&a=1"
    said = "Cannot POST /services/T0SECRET/B0SECRET/x?token=tok999&a=1 (T0SECRET unknown)"
    assert (
        redaction.redact_webhook(said, url)
        == "Cannot POST /services/***?token=***&a=1 (*** unknown)"
    )
    assert redaction.redact_webhook("login pw1234 refused", url) == "login *** refused"
    keyed = "https://SECRETkey@relay.example/alerts"
    assert redaction.redact_webhook("401 for SECRETkey", keyed) == "401 for ***"
    azure = "https://fn.azurewebsites.net/api/alert?code=fnKEY123"
    assert redaction.redact_webhook("no function for code=fnKEY123", azure) == (
        "no function for code=***"
    )
    # A short segment holds no token; masking it would garble the text.
    assert redaction.redact_webhook("at x", "https://h.example/hooks/x") == "at x"
    assert redaction.redact_webhook("POST /hooks/ok", "https://h.example/hooks") == "POST /hooks/ok"
