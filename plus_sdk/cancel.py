"""Cooperative cancellation: a request's work stops when its client goes away or the server stops.

The server sets a ``threading.Event`` for each request (``cancel_scope``); it travels in a
context variable into the worker thread that runs the route. Long loops call
``raise_if_cancelled()`` between steps, and local generation stops at the next token once
``cancelled()`` is true.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar

_CURRENT: ContextVar[threading.Event | None] = ContextVar("plus_sdk_cancel", default=None)


class RequestCancelledError(RuntimeError):
    """The work was abandoned: its client disconnected or the server is shutting down."""


@contextlib.contextmanager
def cancel_scope(event: threading.Event) -> Iterator[threading.Event]:
    """Make ``event`` the cancel flag of the code run inside (and of threads started from its context)."""
    token = _CURRENT.set(event)
    try:
        yield event
    finally:
        _CURRENT.reset(token)


def cancelled() -> bool:
    """True when the current work has been cancelled."""
    event = _CURRENT.get()
    return event is not None and event.is_set()


def raise_if_cancelled() -> None:
    """``RequestCancelledError`` when the current work has been cancelled."""
    if cancelled():
        raise RequestCancelledError("the request was cancelled (client disconnected or server shutting down)")
