"""Credentials in URLs, masked before a URL, or a message quoting one, is shown.

A metadata database URL (SQLAlchemy: ``postgresql+psycopg://user:pw@host/db?sslpassword=…``)
and an artifact store URL (fsspec: ``ftp://user:pw@host/dir``, ``s3://KEY:SECRET@bucket``,
``https://host/dir?token=…``) carry secrets in two places: the password of the userinfo and
query parameters. :func:`mask_url` replaces both with ``***``; :func:`redact` removes the same
values from free text, such as a driver's error message. Every message, log line and printed
setting that names a store URL goes through them.

SQLAlchemy and ``urllib`` (which fsspec uses) split an unusual URL differently (a raw ``@``,
``/`` or ``?`` inside a password); the part masked is the union of what either reads as the
password, so neither parser's reading can leak.

A webhook URL is a secret as a whole: Slack's, Discord's or Mattermost's carry their token in
the path (``https://hooks.slack.com/services/T…/B…/XXXX``). :func:`mask_webhook_url` also masks
every path segment after the first.

A leaf (stdlib only, like ``errors``): the domain records, the CLI, bootstrap and every store may
use it; ``modelyard.storage.urls`` re-exports it for the stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"

# A query parameter whose name contains one of these is a credential. Masking a harmless option
# by mistake (``sslkey`` names a file) costs nothing; missing a secret leaks it.
_SECRET_PARTS = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "sig")
# Names that are a credential only as the whole name: an Azure Functions HTTP trigger (a common
# webhook receiver) takes its function key as ``?code=``, while ``encode=json`` or ``zipcode=``
# hold no secret, and masking their short values would garble every message quoting them.
_SECRET_NAMES = frozenset({"code"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# SQLAlchemy's reading of the userinfo (``sqlalchemy.engine.url._parse_url``).
_SQLALCHEMY_USERINFO = re.compile(r"[^:/]*:(?P<password>[^@]*)@")


def is_secret_parameter(name: str) -> bool:
    """Whether a URL query parameter called ``name`` is taken for a credential."""
    low = unquote_plus(name).lower()
    return low in _SECRET_NAMES or any(part in low for part in _SECRET_PARTS)


def _password_span(rest: str) -> tuple[int, int] | None:
    """Where the password lies in ``rest`` (the URL after ``scheme://``), or None."""
    start = end = -1
    sqlalchemy = _SQLALCHEMY_USERINFO.match(rest)
    if sqlalchemy:
        start, end = sqlalchemy.span("password")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, _host = netloc.rpartition("@")
    colon = userinfo.find(":")
    if at and colon >= 0:
        start = colon + 1 if start < 0 else min(start, colon + 1)
        end = max(end, len(userinfo))
    return (start, end) if start >= 0 else None


def _split(url: str) -> tuple[str, str, str, str]:
    """``url`` as (what precedes the password, the password, what follows it up to the
    query, the query with its ``?``); the password and the query may be empty."""
    head, password, tail = "", "", url
    scheme = _SCHEME.match(url)
    span = _password_span(url[scheme.end() :]) if scheme else None
    if scheme and span:
        start, end = scheme.end() + span[0], scheme.end() + span[1]
        head, password, tail = url[:start], url[start:end], url[end:]
    middle, mark, query = tail.partition("?")
    return head, password, middle, mark + query


def _secret_part(part: str) -> bool:
    # A value runs to the next "&" for SQLAlchemy and urllib, but some drivers also split on
    # ";": a part is secret when either reading finds a secret name in it.
    return any(is_secret_parameter(sub.partition("=")[0]) for sub in part.split(";") if "=" in sub)


def _mask_query(query: str) -> str:
    def mask(match: re.Match[str]) -> str:
        name, equals, _value = match.group(0).partition("=")
        return f"{name}={MASK}" if equals and _secret_part(match.group(0)) else match.group(0)

    return re.sub(r"[^&]+", mask, query)


def mask_url(url: str) -> str:
    """``url`` as it may be shown to people: its password and secret query values as ``***``.

    Args:
        url: A SQLAlchemy or fsspec URL, or a plain path (returned as it is).

    Returns:
        The URL with every credential it carries replaced; the rest unchanged.
    """
    head, password, middle, query = _split(url)
    shown = head + (MASK if password else "") + middle
    return shown + ("?" + _mask_query(query[1:]) if query else "")


def mask_webhook_url(url: str) -> str:
    """``url`` of a webhook as it may be shown: :func:`mask_url`, and every path segment after
    the first replaced by ``***`` (where Slack-style webhooks carry their token).

    ``https://hooks.slack.com/services/T0/B0/XXXX`` → ``https://hooks.slack.com/services/***``.
    The scheme, host and first segment stay, enough to tell receivers apart. A user name
    given without a password (``https://TOKEN@host/…``, as some receivers take their key) is
    masked too.
    """
    masked = mask_client_url(url)
    parts = urlsplit(masked)
    first, slash, rest = parts.path.lstrip("/").partition("/")
    if not slash or not rest:
        return masked
    return urlunsplit(parts._replace(path=f"/{first}/{MASK}"))


def mask_client_url(url: str) -> str:
    """A URL a client sends requests to (the serving URL, a gateway's) as it may be shown:
    :func:`mask_url`, and a user name given without a password (``http://KEY@gateway``)
    masked too, since httpx sends it as basic auth, as some gateways take their key. Store
    URLs keep theirs (``postgresql://postgres@host`` names a role, not a secret)."""
    masked = mask_url(url)
    try:
        parts = urlsplit(masked)
    except ValueError:  # a URL that does not parse: its password and query are all we know
        return masked
    token = _lone_user(parts.netloc)
    if not token:
        return masked
    return urlunsplit(parts._replace(netloc=MASK + parts.netloc[len(token) :]))


def redact_client(text: str, url: str) -> str:
    """``text`` with every credential :func:`mask_client_url` hides replaced by ``***``."""
    text = redact(text, url)
    try:
        token = _lone_user(urlsplit(url).netloc)
    except ValueError:
        return text
    if len(token) >= 4:  # shorter: no key, and masking it would garble the text
        for form in sorted({token, unquote(token)}, key=len, reverse=True):
            text = text.replace(form, MASK)
    return text


def _lone_user(netloc: str) -> str:
    """The user name of ``netloc`` when it has one and no password (none, or an empty one:
    ``KEY:@host``, as ``curl -u KEY:`` sends a key); else empty."""
    userinfo, at, _host = netloc.rpartition("@")
    user, _colon, password = userinfo.partition(":")
    return user if at and user and not password else ""


def webhook_secrets_in(url: str) -> list[str]:
    """The values of ``url`` that :func:`mask_webhook_url` hides: :func:`secrets_in`, and the
    path after its first segment, whole and segment by segment (but for fewer than four
    characters: they hold no token, and masking them would garble any text), longest first."""
    found = secrets_in(url)
    try:
        parts = urlsplit(mask_url(url))
    except ValueError:  # a URL that does not parse: its password and query are all we know
        return found
    path = parts.path
    token = _lone_user(parts.netloc)
    if len(token) >= 4:
        found += [form for form in (token, unquote(token)) if form]
    _first, slash, rest = path.lstrip("/").partition("/")
    if slash and rest:
        raw = [s for s in (rest, *rest.split("/")) if len(s) >= 4]
        found += [form for value in raw for form in (value, unquote(value)) if form]
    return sorted(set(found), key=len, reverse=True)


def redact_webhook(text: str, url: str) -> str:
    """``text`` with every secret of the webhook ``url`` in it replaced by ``***``: what its
    receiver answered, or an HTTP library's message, may quote the URL's path or token."""
    for secret in webhook_secrets_in(url):
        text = text.replace(secret, MASK)
    return text


def secrets_in(url: str) -> list[str]:
    """The credential values ``url`` carries, as written and decoded, longest first."""
    _head, password, _middle, query = _split(url)
    raw = [password] if password else []
    for part in query[1:].split("&"):
        _name, equals, value = part.partition("=")
        if equals and value and _secret_part(part):
            raw.append(value)
            raw.extend(sub.partition("=")[2] for sub in value.split(";") if "=" in sub)
    values = {form for value in raw for form in (value, unquote(value), unquote_plus(value))}
    return sorted((v for v in values if v), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """``text`` with every credential of ``url`` in it replaced by ``***``.

    A driver's error message may quote the connection string or a password it was given;
    call this on any such text before it reaches an error message or a log line.
    """
    for secret in secrets_in(url):
        text = text.replace(secret, MASK)
    return text


def mask_urls_in(value: Any) -> Any:
    """``value`` (a record's JSON form: text, lists and mappings) with every URL in it shown
    by :func:`mask_url`; other values as they are."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: mask_urls_in(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_urls_in(v) for v in value]
    return value


def urls_in(value: Any) -> list[str]:
    """Every URL in ``value`` (a record's JSON form), to :func:`redact` text that quotes them."""
    if isinstance(value, str):
        return [value] if "://" in value else []
    if isinstance(value, Mapping):
        return [u for v in value.values() for u in urls_in(v)]
    if isinstance(value, list | tuple):
        return [u for v in value for u in urls_in(v)]
    return []
