"""Test-only fault injection for a ``plus serve`` app: fail or delay the next requests on demand.

``with_faults(create_app(...), FaultInjector())`` wraps every ``/v1`` request: it can answer 429
(with ``Retry-After``) or 500, sleep past a client's timeout, and it counts requests in flight.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from plus_sdk.server import error_body


@dataclass
class Fault:
    """What to do to one request: answer ``status`` (with ``retry_after``) and/or sleep ``delay_s`` first."""

    status: int | None = None
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass
class FaultInjector:
    """Fails or delays the next requests on demand, and counts requests (for tests)."""

    hold_s: float = 0.0  # every request sleeps this long (to measure concurrency)
    queue: list[Fault] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int, *, retry_after: float | str | None = None) -> None:
        with self.lock:
            after = None if retry_after is None else str(retry_after)
            self.queue += [Fault(status=status, retry_after=after) for _ in range(count)]

    def delay_next(self, count: int, seconds: float) -> None:
        with self.lock:
            self.queue += [Fault(delay_s=seconds) for _ in range(count)]

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.arrivals.clear()
            self.statuses.clear()
            self.hold_s = 0.0
            self.max_in_flight = 0

    def _enter(self) -> Fault | None:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.queue.pop(0) if self.queue else None

    def _leave(self, status: int) -> None:
        with self.lock:
            self.in_flight -= 1
            self.statuses.append(status)


class FaultMiddleware:
    """ASGI middleware applying a ``FaultInjector`` to every ``/v1`` request."""

    def __init__(self, app: Any, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import asyncio

        from starlette.responses import JSONResponse

        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        fault = self.faults._enter()
        status_seen = 0

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
            await send(message)

        try:
            delay = self.faults.hold_s + (fault.delay_s if fault else 0.0)
            if delay:
                await asyncio.sleep(delay)
            if fault is not None and fault.status is not None:
                headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else None
                body = error_body(f"injected fault {fault.status}", "injected_fault")
                await JSONResponse(body, status_code=fault.status, headers=headers)(scope, receive, watch)
                return
            await self.app(scope, receive, watch)
        finally:
            self.faults._leave(status_seen)


def with_faults(app: Any, faults: FaultInjector) -> Any:
    """``app`` with the fault middleware outermost (install before the server starts)."""
    app.add_middleware(FaultMiddleware, faults=faults)
    return app
