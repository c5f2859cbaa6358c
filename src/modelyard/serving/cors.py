"""CORS for the data plane, as ASGI middleware around every route.

Browsers may call the data plane from the origins in the allow-list (``*`` for any). A
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin gets a
204 naming the methods, and allowing the request headers it asks for; from any other origin, a
403. Responses to allowed origins expose the headers that say which variant and model version
answered, and SageMaker's error type.

The headers a preflight asks for are allowed whatever they are, as the routes ignore those
they do not read: a browser's SageMaker client (the AWS SDK for JavaScript) signs its calls
(``authorization``, ``x-amz-date``, ``x-amz-security-token``) and adds its own
(``amz-sdk-invocation-id``, ``x-amz-user-agent``) and the runtime's optional fields; a fixed
list without any one of them made the browser refuse every call.
"""

from __future__ import annotations

import re

from modelyard.serving.http import ASGIApp, Message, Receive, Scope, Send, respond_json

_EXPOSE = (
    b"x-modelyard-variant, x-modelyard-model-version, x-modelyard-inference-id, "
    b"x-modelyard-worker, x-amzn-invoked-production-variant, "
    # The SageMaker clients read a refusal's kind from x-amzn-errortype, and a response
    # stream's type from x-amzn-sagemaker-content-type.
    b"x-amzn-errortype, x-amzn-sagemaker-content-type"
)
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: Allowed when a preflight names no header.
_ALLOW_HEADERS = (
    b"content-type, accept, content-encoding, x-modelyard-routing-key, "
    b"x-modelyard-target-variant, x-amzn-sagemaker-target-variant, "
    b"inference-header-content-length"
)


class CorsMiddleware:
    """Adds CORS headers for allowed origins and answers preflights."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self._origins = frozenset(origins)
        self._any = "*" in self._origins

    def _allowed(self, scope: Scope) -> bytes | None:
        if not self._origins:
            return None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value.decode("latin-1")
                return value if self._any or origin in self._origins else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        origin = self._allowed(scope)
        if origin is None:
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", _EXPOSE),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        origin = self._allowed(scope)
        if origin is None:
            refused = "origin not in the CORS allow-list"
            await respond_json(send, 403, {"error": {"code": "cors_refused", "message": refused}})
            return
        asked = b", ".join(_asked_headers(scope))
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin),
                    (b"vary", b"Origin, Access-Control-Request-Headers"),
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", asked or _ALLOW_HEADERS),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _asked_headers(scope: Scope) -> list[bytes]:
    """The header names a preflight asks to send, lower-cased; what is not a header name (a
    control character, say) is left out rather than echoed into the answer."""
    names: list[bytes] = []
    for key, value in scope["headers"]:
        if key == b"access-control-request-headers":
            for part in value.split(b","):
                name = part.strip().lower()
                if _TOKEN.fullmatch(name) and name not in names:
                    names.append(name)
    return names
