"""Resource guards of ``plus serve``: what a caller can hold before and while a route runs.

- ``GuardMiddleware``: on protected paths the bearer token is checked from the headers, before
  a byte of the body is read (401 at once). Only POST/PUT/PATCH requests under the protected
  prefixes may carry a body; any other request that announces one (``Content-Length`` above 0,
  or ``Transfer-Encoding``) gets 400 at once, unread, so no public route holds a connection
  waiting for a body. Bodies over ``max_body_bytes`` get 413 and bodies slower than
  ``body_timeout_s`` get 408, on every route. Each request runs in a ``cancel_scope`` whose flag is
  set when the client disconnects or the server cancels the request (shutdown), so the model
  work behind it stops.
- ``header_timeout_protocol``: uvicorn's HTTP/1.1 protocol, closing connections that have not
  finished their request headers within ``header_timeout_s``.
- ``uvicorn_config``: the uvicorn settings (connection limit, graceful-shutdown timeout).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from plus_sdk.cancel import cancel_scope
from plus_sdk.files import non_finite_path
from plus_sdk.server.auth import Authenticator, AuthError, bearer_token
from plus_sdk.store.errors import SummaryStoreError

#: Paths whose requests need a token (a prefix match); only these may carry a request body.
PROTECTED_PREFIXES: tuple[str, ...] = ("/v1",)
#: Methods whose requests may carry a body (on the protected paths).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_body(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    """The OpenAI-style error body every 4xx/5xx of the server uses."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def non_finite_in(body: bytes) -> str | None:
    """Where a JSON ``body`` holds NaN or an infinity (Python's parser accepts them, JSON does not), or ``None``.

    Bodies without those words, and bodies that are not one JSON document, cost only a substring scan."""
    if b"NaN" not in body and b"Infinity" not in body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None  # not one JSON document: the route reports that
    return non_finite_path(value)


async def _respond(scope: dict[str, Any], receive: Any, send: Any, status: int, message: str, kind: str,
                   headers: dict[str, str] | None = None, param: str | None = None) -> None:
    from starlette.responses import JSONResponse  # optional: the server extra

    response = JSONResponse(error_body(message, kind, param), status_code=status,
                            headers={"Connection": "close", **(headers or {})})
    await response(scope, receive, send)


class GuardMiddleware:
    """Token before body, body size and time limits, and per-request cancellation (see module doc)."""

    def __init__(self, app: Any, *, auth: Authenticator, max_bytes: int, body_timeout_s: float = 30.0,
                 protected: tuple[str, ...] = PROTECTED_PREFIXES) -> None:
        import anyio  # optional: comes with the server extra (starlette)

        self.app = app
        self.auth = auth
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.protected = protected
        self._auth_threads = anyio.CapacityLimiter(8)  # key lookups never queue behind route threads

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        protected = scope["path"].startswith(self.protected)
        if protected and not await self._authenticate(scope, receive, send):
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        announced = b"transfer-encoding" in headers or (length is not None and length.strip(b"0") != b"")
        if announced and not (protected and scope.get("method") in BODY_METHODS):
            await _respond(scope, receive, send, 400, f"{scope.get('method')} {scope['path']} takes no request "
                           "body; send it without one", "invalid_request_error")
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _respond(scope, receive, send, 413, f"request body exceeds max_body_bytes={self.max_bytes}",
                           "request_too_large")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), timeout=self.body_timeout_s)
        except asyncio.TimeoutError:
            await _respond(scope, receive, send, 408, f"the request body did not arrive within "
                           f"{self.body_timeout_s:g} s", "request_timeout")
            return
        if body is None:  # the client went away
            return
        if len(body) > self.max_bytes:
            await _respond(scope, receive, send, 413, f"request body exceeds max_body_bytes={self.max_bytes}",
                           "request_too_large")
            return
        where = non_finite_in(body)
        if where is not None:
            await _respond(scope, receive, send, 400, f"invalid request: {where}: NaN and Infinity are not JSON; "
                           "send a number or null", "invalid_request_error", param=where)
            return
        await self._run(scope, receive, send, body)

    async def _authenticate(self, scope: dict[str, Any], receive: Any, send: Any) -> bool:
        import anyio  # optional: comes with the server extra (starlette)

        token = bearer_token(scope.get("headers") or [])
        try:
            principal = await anyio.to_thread.run_sync(self.auth.resolve, token, limiter=self._auth_threads)
        except AuthError as exc:
            await _respond(scope, receive, send, exc.status, str(exc), "authentication_error",
                           {"WWW-Authenticate": "Bearer"})
            return False
        except SummaryStoreError as exc:
            await _respond(scope, receive, send, 503, f"the key store is busy ({exc}); retry", "store_busy",
                           {"Retry-After": "1"})
            return False
        scope.setdefault("state", {})["principal"] = principal
        return True

    async def _read_body(self, receive: Any) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)

    async def _run(self, scope: dict[str, Any], receive: Any, send: Any, body: bytes) -> None:
        event = threading.Event()
        gone = asyncio.Event()

        async def watch() -> None:  # the next message after the body can only be a disconnect
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                event.set()

        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.ensure_future(watch())
        try:
            with cancel_scope(event):
                await self.app(scope, replay, send)
        except asyncio.CancelledError:
            event.set()  # the server gave up on this request (shutdown): stop its work too
            raise
        finally:
            watcher.cancel()


def header_timeout_protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol that closes a connection whose request headers take over ``header_timeout_s``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # optional: the server extra

    class HeaderTimeoutProtocol(H11Protocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def _arm_header_timer(self) -> None:
            self.loop.call_later(header_timeout_s, self._headers_overdue, self.cycle)

        def _headers_overdue(self, cycle_when_armed: Any) -> None:
            waiting = self.cycle is cycle_when_armed and (self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str = "warning", header_timeout_s: float = 10.0,
                   max_connections: int = 1024, shutdown_timeout_s: float = 3.0, lifespan: str = "auto") -> Any:
    """uvicorn settings with the header timeout, a connection limit (503 beyond it) and a bounded shutdown."""
    import uvicorn  # optional: the server extra

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                          http=header_timeout_protocol(header_timeout_s), limit_concurrency=max_connections,
                          timeout_graceful_shutdown=shutdown_timeout_s, timeout_keep_alive=5)
