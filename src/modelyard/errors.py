"""The whole modelyard exception tree, in one place.

Every error carries a stable ``code`` (for scripts and API clients), the HTTP status the REST
API and the serving plane answer with, and the exit code the CLI ends with. Foreign exceptions
(SQLAlchemy, OSError, a model library's) are converted into these where they enter our code;
adapters translate ``ModelyardError`` once, at their boundary, and nothing else.

    ModelyardError
    ├── InvalidInput                       400, exit 2
    │   ├── InvalidReference               malformed ``name:3`` / ``name@alias``
    │   ├── InvalidName
    │   ├── UnknownFlavor
    │   ├── InvalidModelFile               not a model of the flavor given
    │   ├── UnsafeModelFormat              pickle without an explicit trust flag
    │   ├── SignatureMismatch              input example / payload does not fit the model
    │   ├── InvalidPayload                 malformed JSON/CSV request body (names row/line)
    │   └── RequestTimeout                 408: the request body did not arrive in time
    ├── UnsupportedMediaType               415
    ├── NotAcceptable                      406
    ├── MethodNotAllowed                   405
    ├── PayloadTooLarge                    413
    ├── ConfigError                        unknown or invalid settings, exit 2
    ├── NotFound                           404, exit 3
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   ├── AliasNotFound
    │   ├── EndpointNotFound
    │   ├── JobNotFound
    │   └── VariantNotFound
    ├── Conflict                           409, exit 4
    │   ├── AlreadyExists
    │   │   └── OutputExists               an output would be replaced (names the field allowing it)
    │   ├── Claimed                        held by another active job (names it)
    │   └── VersionProtected               aliased or in use: cannot archive/delete
    ├── ModelFailed                        500: the model raised while predicting
    ├── ArtifactError                      500, exit 5
    │   ├── ArtifactMissing
    │   └── ArtifactCorrupted              checksum or size mismatch
    ├── StorageUnavailable                 503, exit 6
    │   ├── DatabaseUnavailable            names the URL, never its password
    │   ├── StorageNotWritable             read-only or full MODELYARD_HOME
    │   ├── SchemaMismatch                 database schema newer/older than this code
    │   │   └── SchemaOutdated             older: run ``modelyard db upgrade``
    │   ├── ModelNotReady                  deployed, but its model is not loaded here
    │   │   └── ModelLoadFailed            a server tried to load it and failed (the reason)
    │   └── ServerUnreachable              no modelyard server answers at the URL
    │       ├── ServerTimeout              504: no answer within the caller's timeout
    │       └── NoServerRunning            no live server reports to this store
    ├── MissingDependency                  optional package not installed, exit 7
    ├── JobFailed                          a job ended Failed or Stopped, 422, exit 8
    ├── ScriptFailed                       a training script failed (keeps its log tail)
    └── CannotListen                       the server cannot bind its address, exit 9
"""

from __future__ import annotations

import re
from typing import ClassVar

#: A run of non-blank characters longer than this is shortened in error messages.
MAX_SHOWN = 200
_LONG_RUN = re.compile(rf"\S{{{MAX_SHOWN + 1},}}")


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` with every run of more than ``limit`` non-blank characters cut to its head and
    tail, saying how much was cut: ``'aaaa…[9880 characters cut]…aaaa'``.

    Error messages quote what the user sent (a name, a path, a payload field); a hostile or
    mistaken 10,000-character value must not come back whole in a one-line error, a log line or
    an HTTP body. Valid names (128 characters at most) and ordinary paths are never cut.
    """
    if len(text) <= limit:
        return text
    keep = max(1, limit // 3)

    def cut(match: re.Match[str]) -> str:
        run = match.group(0)
        return f"{run[:keep]}…[{len(run) - 2 * keep} characters cut]…{run[-keep:]}"

    pattern = _LONG_RUN if limit == MAX_SHOWN else re.compile(rf"\S{{{limit + 1},}}")
    return pattern.sub(cut, text)


#: The longest message an error keeps; past it, the middle is cut (head and tail kept).
MAX_MESSAGE = 1000


def _capped(text: str) -> str:
    # Runs of spaces-separated words ("a a a …" 10,000 characters long) pass ``shorten``.
    if len(text) <= MAX_MESSAGE:
        return text
    head, tail = MAX_MESSAGE * 6 // 10, MAX_MESSAGE * 3 // 10
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[-tail:]}"


class ModelyardError(Exception):
    """Base of every error modelyard raises on purpose.

    Attributes:
        code: Stable machine-readable identifier (``"model_not_found"``).
        http_status: Status code an HTTP adapter answers with.
        exit_code: Exit status the CLI ends with.
    """

    code: ClassVar[str] = "modelyard_error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        message = _capped(shorten(message))
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """The JSON body an HTTP adapter returns for this error."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(ModelyardError):
    code = "invalid_input"
    http_status = 400
    exit_code = 2


class InvalidReference(InvalidInput):
    code = "invalid_reference"


class InvalidName(InvalidInput):
    code = "invalid_name"


class UnknownFlavor(InvalidInput):
    code = "unknown_flavor"


class InvalidModelFile(InvalidInput):
    code = "invalid_model_file"


class UnsafeModelFormat(InvalidInput):
    code = "unsafe_model_format"


class SignatureMismatch(InvalidInput):
    code = "signature_mismatch"


class InvalidPayload(InvalidInput):
    code = "invalid_payload"


class RequestTimeout(InvalidInput):
    """The request body did not arrive within the server's body timeout."""

    code = "request_timeout"
    http_status = 408


class UnsupportedMediaType(ModelyardError):
    code = "unsupported_media_type"
    http_status = 415
    exit_code = 2


class NotAcceptable(ModelyardError):
    code = "not_acceptable"
    http_status = 406
    exit_code = 2


class MethodNotAllowed(ModelyardError):
    """A data-plane path asked for with a method it does not answer.

    Attributes:
        allowed: The methods the path answers (an HTTP adapter's ``Allow`` header).
    """

    code = "method_not_allowed"
    http_status = 405
    exit_code = 2

    def __init__(self, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class PayloadTooLarge(ModelyardError):
    code = "payload_too_large"
    http_status = 413
    exit_code = 2


class ModelFailed(ModelyardError):
    code = "model_failed"
    http_status = 500
    exit_code = 1


class InternalError(ModelyardError):
    """A defect of the server's own (not the caller's, not the model's): what a protocol
    adapter answers for an exception nothing else mapped, its traceback logged."""

    code = "internal"
    http_status = 500
    exit_code = 1


class ConfigError(ModelyardError):
    code = "config_error"
    http_status = 500
    exit_code = 2


class NotFound(ModelyardError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class ModelNotFound(NotFound):
    code = "model_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class AliasNotFound(NotFound):
    code = "alias_not_found"


class EndpointNotFound(NotFound):
    code = "endpoint_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class VariantNotFound(NotFound):
    code = "variant_not_found"


class Conflict(ModelyardError):
    code = "conflict"
    http_status = 409
    exit_code = 4


class AlreadyExists(Conflict):
    code = "already_exists"


class OutputExists(AlreadyExists):
    """Outputs that exist would be replaced. ``what`` says which; ``allow`` is the request
    field that allows replacing them, so that each adapter names its own spelling of it (the
    CLI a flag); the message names the field in words."""

    code = "output_exists"

    def __init__(self, what: str, allow: str = "overwrite", them: str = "them") -> None:
        super().__init__(f"{what}; allow overwriting to replace {them}")
        self.what = what
        self.allow = allow
        self.them = them

    def __reduce__(self) -> tuple[type[OutputExists], tuple[str, str, str]]:
        return (type(self), (self.what, self.allow, self.them))


class Claimed(Conflict):
    """What a request needs is held by another active job; ``holder`` names it ('' when
    unknown: an error rebuilt from an answer's message alone)."""

    code = "claimed"

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder

    def __reduce__(self) -> tuple[type[Claimed], tuple[str, str]]:
        return (type(self), (self.message, self.holder))


class VersionProtected(Conflict):
    code = "version_protected"


class ArtifactError(ModelyardError):
    code = "artifact_error"
    http_status = 500
    exit_code = 5


class ArtifactMissing(ArtifactError):
    code = "artifact_missing"


class ArtifactCorrupted(ArtifactError):
    code = "artifact_corrupted"


class StorageUnavailable(ModelyardError):
    code = "storage_unavailable"
    http_status = 503
    exit_code = 6


class DatabaseUnavailable(StorageUnavailable):
    code = "database_unavailable"


class StorageNotWritable(StorageUnavailable):
    code = "storage_not_writable"
    http_status = 507


class SchemaMismatch(StorageUnavailable):
    """The metadata database's schema is not the one this code was written for (raised as
    itself when a newer modelyard wrote it)."""

    code = "schema_mismatch"


class SchemaOutdated(SchemaMismatch):
    """A shared database's schema is older than this code: it is upgraded only on purpose
    (``modelyard db upgrade``), never by a process that happens to open it."""

    code = "schema_outdated"


class ModelNotReady(StorageUnavailable):
    """An endpoint (or the model version a request targets) is deployed but not loaded in this
    server: its model failed to load, or the server has not applied the plan yet."""

    code = "model_not_ready"


class ModelLoadFailed(ModelNotReady):
    """A live server applied the change but could not load the endpoint's model; the message
    names the server and its reason. The server keeps serving what it served before."""

    code = "model_load_failed"


class ServerUnreachable(StorageUnavailable):
    code = "server_unreachable"


class ServerTimeout(ServerUnreachable):
    """The server took the request but gave no answer within the caller's timeout (a slow
    model, a stuck server); the message names the URL and the time waited."""

    code = "server_timeout"
    http_status = 504


class NoServerRunning(ServerUnreachable):
    """No live server reports to the metadata store (none started, or all stopped or silent),
    so nothing will serve a change."""

    code = "no_server_running"


class MissingDependency(ModelyardError):
    code = "missing_dependency"
    exit_code = 7


class JobFailed(ModelyardError):
    code = "job_failed"
    http_status = 422
    exit_code = 8


class ScriptFailed(ModelyardError):
    """A training script failed: a non-zero exit, no model written, or out of time.

    Attributes:
        log_tail: The last lines of the script's output (its traceback, usually).
    """

    code = "script_failed"
    http_status = 422
    exit_code = 8

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class CannotListen(ModelyardError):
    """The server cannot listen on the address it was given: in use, not an address of this
    machine, or a privileged port. Checked before anything is loaded."""

    code = "cannot_listen"
    exit_code = 9
