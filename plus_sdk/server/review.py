"""The review page of ``plus serve`` at ``/ui``: where a user reads and corrects their summary.

The page is plain HTML, CSS and JS shipped in ``plus_sdk/server/ui`` (no build step, nothing
fetched from elsewhere, so it works offline). It signs in with a bearer key and calls the same
``/v1/summaries`` and ``/v1/judge`` routes as any client; the only route added here is
``GET /ui/info`` (whether a store is attached and a key is needed), which reveals nothing else.
Responses carry a Content-Security-Policy that allows this server's own files only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The folder holding index.html, app.css and app.js.
UI_DIR = Path(__file__).resolve().parent / "ui"
#: Headers on every page response: own files only, no framing, no referrer.
SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


class _WithHeaders:
    """ASGI wrapper adding ``SECURITY_HEADERS`` to every response of the wrapped app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS.items()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_review_page(app: Any, *, store_enabled: bool, auth_required: Callable[[], bool], prefix: str = "/ui") -> None:
    """Serve the review page under ``prefix`` on the FastAPI ``app`` (``auth_required``: asked on each
    ``/ui/info``, e.g. ``Authenticator.required``)."""
    from fastapi.responses import RedirectResponse  # optional: the server extra
    from fastapi.staticfiles import StaticFiles  # optional: the server extra

    @app.get(f"{prefix}/info", include_in_schema=False)
    def review_page_info() -> dict[str, bool]:
        return {"store": store_enabled, "auth": auth_required()}

    @app.get(prefix, include_in_schema=False)
    def review_page_root() -> RedirectResponse:
        return RedirectResponse(f"{prefix}/")

    app.mount(prefix, _WithHeaders(StaticFiles(directory=UI_DIR, html=True)), name="review-page")
