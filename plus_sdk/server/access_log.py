"""An access log for ``plus serve``: one line per request, never bodies, queries or keys.

Each line reads ``METHOD /path STATUS 12.3ms user=ACTOR`` on the ``plus_sdk.server.access``
logger (level INFO). The path is logged as the client sent it (still percent-encoded) and
without its query string, so a token passed there never reaches the log. Every value is passed
through ``log_safe``: control characters, backslashes and spaces are escaped, so a request can
never start a new line or forge a field. ``user=`` is the actor the auth layer resolved
(``admin``, ``key:<key id>`` or ``anonymous``; never a secret or a user id), else ``-``. A
client that goes away before its body arrived is logged as 499.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from typing import Any

logger = logging.getLogger("plus_sdk.server.access")

#: Status logged when the client left before the server answered (nginx's convention).
CLIENT_CLOSED = 499


def log_safe(value: str) -> str:
    """``value`` with backslashes, spaces and every control or line-separator character escaped (``\\x0a``)."""
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == " " or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def access_line(method: str, path: str, status: int, ms: float, user_id: str | None = None) -> str:
    """The log line of one request (every value escaped with ``log_safe``)."""
    return f"{log_safe(method)} {log_safe(path)} {status} {ms:.1f}ms user={log_safe(user_id) if user_id else '-'}"


def user_of(scope: dict[str, Any]) -> str | None:
    """The actor an auth layer put in the request state: the principal's ``actor``, else ``user_id``."""
    state = scope.get("state") or {}
    get = state.get if isinstance(state, dict) else lambda name: getattr(state, name, None)
    principal = get("principal")
    value = getattr(principal, "actor", None) if principal is not None else get("user_id")
    return None if value is None else str(value)


def path_of(scope: dict[str, Any]) -> str:
    """The path as sent (``raw_path``, percent-encoded, no query), else the decoded ``path``."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.partition(b"?")[0].decode("latin-1")
    return str(scope.get("path", "?"))


class AccessLogMiddleware:
    """ASGI middleware that logs method, route, status and duration of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        answered = False
        client_gone = False

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = int(message["status"]), True
            await send(message)

        async def receive_and_watch() -> dict[str, Any]:
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone = True
            return dict(message)

        try:
            await self.app(scope, receive_and_watch, send_and_watch)
        finally:
            if client_gone and not answered:
                status = CLIENT_CLOSED
            ms = (time.perf_counter() - start) * 1000
            logger.info(access_line(scope.get("method", "?"), path_of(scope), status, ms, user_of(scope)))
