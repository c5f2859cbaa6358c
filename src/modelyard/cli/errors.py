"""The CLI's one error translator: every exception that ends a command is turned into an exit
status here, and nowhere else.

- ``ModelyardError``: one line ``error: <message>`` on stderr, exit ``exc.exit_code``.
- usage errors (bad option, missing argument): the usual ``Usage: …`` / ``Error: …`` text,
  exit 2. (Typer carries its own copy of click; its exceptions derive from ``TyperException``.)
- Ctrl-C: exit 130, the shell convention for SIGINT.

Anything else is a bug in modelyard and keeps its traceback, so it can be reported.

A command that talks to a server (``invoke``) turns an error answer into the matching
``ModelyardError`` with :func:`from_http_status`, so it ends through the same translator:
400/406/413/415 (and any other 4xx) exit 2, 404 exit 3, 409 exit 4, 429 (the model is not
loaded there yet) exit 6, 5xx exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from modelyard.errors import (
    Conflict,
    InvalidInput,
    ModelFailed,
    ModelNotReady,
    ModelyardError,
    NotAcceptable,
    NotFound,
    OutputExists,
    PayloadTooLarge,
    UnsupportedMediaType,
    shorten,
)

SIGINT_EXIT = 130


def one_line(message: str) -> str:
    """The first non-empty line of ``message``.

    A model library's text may carry its own multi-line dump (XGBoost appends a C++ stack);
    the headline is what a person needs and what a script can match.
    """
    for line in message.strip().splitlines():
        if line.strip():
            return line.strip()
    return "unknown error"


#: An HTTP error status → the error (and so the exit code) a command that got it ends with.
_BY_HTTP_STATUS: dict[int, type[ModelyardError]] = {
    400: InvalidInput,
    404: NotFound,
    406: NotAcceptable,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    424: ModelFailed,  # SageMaker's ModelError: the model raised
    429: ModelNotReady,  # SageMaker's ModelNotReadyException: the server's state, not the request's
}


def from_http_status(status: int, message: str) -> ModelyardError:
    """The error a command ends with when a server answered ``status`` with ``message``.

    Any other 4xx is the request's fault (exit 2); a 5xx, or anything else, exits 1: the server
    failed, whatever the reason it gave (a 503 is not "cannot reach the server", which is 6).
    """
    cls = _BY_HTTP_STATUS.get(status)
    if cls is None:
        cls = InvalidInput if 400 <= status < 500 else ModelyardError
    return cls(message)


def report(exc: ModelyardError) -> int:
    """Print ``exc`` as a single ``error:`` line on stderr; return its exit code."""
    typer.echo(f"error: {one_line(_in_cli_terms(exc))}", err=True)
    return exc.exit_code


def _in_cli_terms(exc: ModelyardError) -> str:
    """The message, with the request field that would change the outcome named as the flag
    that sets it (services name fields, never flags: ``overwrite`` → ``--overwrite``)."""
    if isinstance(exc, OutputExists):
        return f"{exc.what}; pass --{exc.allow.replace('_', '-')} to replace {exc.them}"
    return exc.message


def invoke(command: Any, args: Sequence[str] | None, prog_name: str) -> int:
    """Run ``command`` (the click-style command Typer built) without its own exit handling,
    and translate how it ended.

    Returns:
        The process exit status.
    """
    try:
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except ModelyardError as exc:
        return report(exc)
    except typer.TyperException as exc:
        # UsageError, BadParameter …: the familiar "Usage: …\nError: …" text, exit 2. Click
        # quotes the offending value; a 10,000-character one is cut like ours are.
        if isinstance(getattr(exc, "message", None), str):
            exc.message = shorten(exc.message)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"Error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        # A declined confirmation or EOF at a prompt.
        typer.echo("Aborted.", err=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return SIGINT_EXIT
    # Non-standalone click returns an ``Exit``'s code (``--help`` → 0) or the command's return
    # value; our commands return None on success.
    return result if isinstance(result, int) else 0
