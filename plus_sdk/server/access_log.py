"""An access log for ``plus serve``: one line per request, never bodies, queries or keys.

Each line reads ``METHOD /path STATUS 12.3ms user=ID`` on the ``plus_sdk.server.access``
logger (level INFO). The path is logged without its query string, so a token passed there
never reaches the log. ``user=`` shows ``scope["state"]["user_id"]`` when an earlier layer
(e.g. scoped API keys) set it, else ``-``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("plus_sdk.server.access")


def access_line(method: str, path: str, status: int, ms: float, user_id: str | None = None) -> str:
    """The log line of one request."""
    return f"{method} {path} {status} {ms:.1f}ms user={user_id or '-'}"


def user_of(scope: dict[str, Any]) -> str | None:
    """The user id an auth layer put in the request state (the hook for scoped keys)."""
    state = scope.get("state") or {}
    value = state.get("user_id") if isinstance(state, dict) else getattr(state, "user_id", None)
    return None if value is None else str(value)


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

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            ms = (time.perf_counter() - start) * 1000
            logger.info(access_line(scope.get("method", "?"), scope.get("path", "?"), status, ms, user_of(scope)))
