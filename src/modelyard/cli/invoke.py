"""``modelyard invoke``: send one request to an endpoint on a running server, over real HTTP.

The request goes to ``{url}/endpoints/{NAME}/invocations``, the route ``modelyard serve``
answers (SageMaker-runtime compatible), so what works here works from any HTTP client. No store
is opened: the server decides everything, and this command only shows its answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from modelyard.cli.errors import from_http_status, one_line
from modelyard.cli.render import print_json
from modelyard.errors import InvalidInput, ModelyardError, ServerTimeout, ServerUnreachable

if TYPE_CHECKING:
    import httpx

JSON = "application/json"
CSV = "text/csv"


def invoke_endpoint(
    name: Annotated[str, typer.Argument(metavar="ENDPOINT", help="Endpoint name.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            metavar="TEXT",
            help="Request body, e.g. '[1.5, 0.2, 3]' (one row), '[[…], […]]' (rows) or CSV lines.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", metavar="PATH", help="Read the request body from a file."),
    ] = None,
    content_type: Annotated[
        str | None,
        typer.Option(
            metavar="TYPE",
            help=f"{JSON} or {CSV} (default: {CSV} for a .csv --file or --data that does "
            f"not open with [ or {{, else {JSON}).",
        ),
    ] = None,
    accept: Annotated[
        str | None, typer.Option(metavar="TYPE", help=f"Response type: {JSON} or {CSV}.")
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(metavar="VARIANT", help="Ask this variant, not the weighted choice."),
    ] = None,
    routing_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="Sticky routing: the same key gets the same variant."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The server ('modelyard serve'); default: the setting MODELYARD_SERVING_URL "
            "(http://127.0.0.1:8080 unless set), as the Python Predictor's.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        # A day at most: the socket layer overflows on 'inf' (OverflowError, a traceback).
        typer.Option(
            metavar="SECONDS", min=0.1, max=86400, help="How long to wait for the answer."
        ),
    ] = 60.0,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object: the answer's fields (predictions) plus variant, "
            "model_version and inference_id.",
        ),
    ] = False,
) -> None:
    """Send a request to ENDPOINT and print the predictions.

    The variant and model version that answered, and the inference id, go to stderr (with
    --json: into the object).
    """
    if (data is None) == (file is None):
        raise typer.BadParameter("give the request body with --data or --file (one of them)")
    if file is not None:
        body = _read(file)
        media = content_type or (CSV if file.suffix.lower() == ".csv" else JSON)
    else:
        assert data is not None  # checked above; narrows the type
        body = data.encode()
        # Every JSON request shape opens with [ or {; CSV lines never do (a row of numbers,
        # a quoted field), so the help's 'CSV lines' need no --content-type.
        media = content_type or (JSON if data.lstrip()[:1] in ("[", "{") else CSV)
    headers = {"content-type": _header_value("--content-type", media)}
    for header, option, value in (
        ("accept", "--accept", accept),
        ("x-modelyard-target-variant", "--variant", variant),
        ("x-modelyard-routing-key", "--routing-key", routing_key),
    ):
        if value is not None:
            headers[header] = _header_value(option, value)
    if url is None:  # the settings', read as everything else reads them (checked)
        from modelyard.config import load_settings

        url = load_settings().serving_url
    target = f"{url.rstrip('/')}/endpoints/{quote(name, safe='')}/invocations"
    response = _post(target, url, body, headers, timeout)
    answered = {
        "variant": response.headers.get("x-modelyard-variant"),
        "model_version": response.headers.get("x-modelyard-model-version"),
        "inference_id": response.headers.get("x-modelyard-inference-id"),
    }
    if json_:
        print_json({"endpoint": name, **answered, **_fields(response)})
        return
    text = response.text
    typer.echo(text if text.endswith("\n") else text + "\n", nl=False)
    typer.echo(
        f"variant {answered['variant'] or '-'}, model {answered['model_version'] or '-'}, "
        f"inference id {answered['inference_id'] or '-'}",
        err=True,
    )


def _header_value(option: str, value: str) -> str:
    """``value`` if an HTTP header can carry it: printable ASCII, no line break.

    Raises:
        InvalidInput: naming the option; httpx refused it with a traceback (non-ASCII) or a
            transport error (a line break) after the command had started.
    """
    if not all(" " <= char <= "~" for char in value):
        raise InvalidInput(
            f"{option} must be printable ASCII (it is sent in an HTTP header), got {value!r}"
        )
    return value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"request file not found: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read request file {path}: {exc.strerror}") from None


def _post(
    target: str, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST and return a 2xx answer; anything else becomes the error the command ends with."""
    import httpx  # only this command needs it

    from modelyard.redaction import mask_client_url, redact_client

    shown = mask_client_url(url)  # a gateway's password or token is no part of any message
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=timeout)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise InvalidInput(f"invalid --url {shown!r}: {redact_client(str(exc), url)}") from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        reason = redact_client(one_line(str(exc) or type(exc).__name__), url)
        raise ServerUnreachable(
            f"cannot connect to {shown} ({reason}); is the "
            "server running? Start it with 'modelyard serve'"
        ) from None
    except httpx.TimeoutException:
        raise ServerTimeout(
            f"no answer from {shown} within {timeout:g} s (raise --timeout to wait longer)"
        ) from None
    except httpx.TransportError as exc:
        raise ModelyardError(f"request to {shown} failed: {redact_client(str(exc), url)}") from None
    if response.is_success:
        return response
    raise from_http_status(response.status_code, _error_message(response))


def _error_message(response: httpx.Response) -> str:
    """The server's own message (SageMaker's top-level ``message``), else the status line
    (the URL's credentials masked)."""
    from modelyard.redaction import mask_client_url, redact_client

    try:
        message = response.json()["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    if isinstance(message, str) and message.strip():
        return message
    text = one_line(response.text)[:200] if response.text.strip() else ""
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    url = str(response.url)
    text = redact_client(text, url)
    return f"{mask_client_url(url)} answered {status}" + (f": {text}" if text else "")


def _fields(response: httpx.Response) -> dict[str, Any]:
    """The answer as JSON fields: a JSON object's own fields, else the body as ``body``."""
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == JSON:
        try:
            parsed = json.loads(response.text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return {"content_type": media, **parsed}
    return {"content_type": media, "body": response.text}
