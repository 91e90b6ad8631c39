"""HTTP routes of the summary store, added to the ``plus serve`` FastAPI app (the store itself knows no HTTP)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plus_sdk.server.auth import AuthError
from plus_sdk.store.base import MAX_VERSION, SummaryVersion
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import (
    ImportConflictError,
    StoreBusyError,
    SummaryStoreError,
    UnknownUserError,
)

#: Seconds a client is told to wait (``Retry-After``) when the store stayed locked.
RETRY_AFTER_S = 1


class EditRequest(BaseModel):
    """Body of ``PUT /v1/summaries/{user_id}``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The user's own summary text.")


class RevertRequest(BaseModel):
    """Body of ``POST /v1/summaries/{user_id}/revert``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION, strict=True, description="The version to make current again "
                                                                      "(a JSON integer).")


class UserSummaries(BaseModel):
    """What ``GET /v1/summaries/{user_id}`` returns."""

    user_id: str = Field(description="The user.")
    current: SummaryVersion | None = Field(description="The current summary.")
    proposal: SummaryVersion | None = Field(description="A model summary waiting for the user's approval.")


def add_store_routes(app: Any, store: SummaryStore, auth_dependency: Callable[..., Any] | None = None,
                     *, prefix: str = "/v1/summaries", on_delete: Callable[[str], None] | None = None) -> None:
    """Add the summary operations to a FastAPI ``app``, each behind ``auth_dependency``.

    ``auth_dependency`` returns the caller's ``Principal`` (``plus_sdk.server.auth``): a user
    key reaches only its own user's routes (else 403); export and import are admin-only. A
    dependency that returns ``None`` lets its callers through as the admin. ``on_delete(user_id)``
    does the delete instead of ``store.delete`` (e.g. ``forget_user``, which also empties caches).

    Routes: ``GET {prefix}/{user_id}`` (current + proposal), ``PUT {prefix}/{user_id}`` (edit),
    ``GET {prefix}/{user_id}/history``, ``POST {prefix}/{user_id}/revert``,
    ``POST|DELETE {prefix}/{user_id}/proposal`` (accept / dismiss), ``DELETE {prefix}/{user_id}``,
    ``GET {prefix}/{user_id}/export`` (JSONL) and ``POST {prefix}/import`` (JSONL body).
    Invalid ids or texts get 400, unknown users or versions 404, import conflicts 409, a store
    lock held past its busy timeout 503 with ``Retry-After``.
    """
    from fastapi import APIRouter, Depends, HTTPException, Request  # optional: the server extra
    from fastapi.responses import PlainTextResponse  # optional: the server extra

    router = APIRouter(prefix=prefix, tags=["summaries"])

    def open_access() -> None:
        return None

    caller = Depends(auth_dependency or open_access)

    def allowed(principal: Any, user_id: str | None, what: str) -> None:
        """A user key touches only its own user; ``user_id=None`` means an admin-only operation."""
        if principal is None:  # an auth dependency that returns nothing: the caller passed, as the admin
            return
        try:
            if user_id is None:
                principal.require_admin(what)
            else:
                principal.require_user(user_id)
        except AuthError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @contextlib.contextmanager
    def http_errors() -> Iterator[None]:
        try:
            yield
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ImportConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        except StoreBusyError as exc:
            raise HTTPException(503, f"the summary store is busy: {exc}",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        except (ValueError, SummaryStoreError) as exc:
            raise HTTPException(400, str(exc)) from None

    @router.get("/{user_id}", response_model=UserSummaries)
    def show(user_id: str, principal: Any = caller) -> UserSummaries:
        allowed(principal, user_id, "reading")
        with http_errors():
            current = store.current(user_id)
            if current is None:
                raise UnknownUserError(f"user {user_id!r} has no summary")
            return UserSummaries(user_id=user_id, current=current, proposal=store.proposal(user_id))

    @router.put("/{user_id}", response_model=SummaryVersion)
    def edit(user_id: str, body: EditRequest, principal: Any = caller) -> SummaryVersion:
        allowed(principal, user_id, "editing")
        with http_errors():
            return store.edit(user_id, body.text)

    @router.get("/{user_id}/history", response_model=list[SummaryVersion])
    def history(user_id: str, principal: Any = caller) -> list[SummaryVersion]:
        allowed(principal, user_id, "reading")
        with http_errors():
            rows = store.history(user_id)
            if not rows:
                raise UnknownUserError(f"user {user_id!r} has no summary")
            return rows

    @router.post("/{user_id}/revert", response_model=SummaryVersion)
    def revert(user_id: str, body: RevertRequest, principal: Any = caller) -> SummaryVersion:
        allowed(principal, user_id, "reverting")
        with http_errors():
            return store.revert(user_id, body.version)

    @router.post("/{user_id}/proposal", response_model=SummaryVersion)
    def accept(user_id: str, principal: Any = caller) -> SummaryVersion:
        allowed(principal, user_id, "accepting")
        with http_errors():
            return store.accept_proposal(user_id)

    @router.delete("/{user_id}/proposal")
    def dismiss(user_id: str, principal: Any = caller) -> dict[str, Any]:
        allowed(principal, user_id, "dismissing")
        with http_errors():
            return {"user_id": user_id, "dismissed": store.dismiss_proposal(user_id)}

    @router.delete("/{user_id}")
    def forget(user_id: str, principal: Any = caller) -> dict[str, Any]:
        allowed(principal, user_id, "deleting")
        with http_errors():
            deleted = on_delete(user_id) if on_delete is not None else store.delete(user_id)
        return {"user_id": user_id, "deleted_versions": deleted}

    @router.get("/{user_id}/export", response_class=PlainTextResponse, response_model=None)
    def export(user_id: str, principal: Any = caller) -> Any:
        allowed(principal, None, "export")
        with http_errors():
            if not store.history(user_id):
                raise UnknownUserError(f"user {user_id!r} has no summary")
            buffer = io.StringIO()
            store.export_jsonl(buffer, [user_id])
            return PlainTextResponse(buffer.getvalue(), media_type="application/x-ndjson")

    @router.post("/import")
    async def import_(request: Request, on_conflict: Literal["error", "skip", "replace"] = "error",
                      principal: Any = caller) -> dict[str, Any]:
        import anyio  # optional: comes with the server extra (starlette)

        allowed(principal, None, "import")
        body = (await request.body()).decode("utf-8", errors="replace")
        with http_errors():
            imported = await anyio.to_thread.run_sync(
                lambda: store.import_jsonl(io.StringIO(body), on_conflict=on_conflict))
        return {"imported": imported}
    import_.__annotations__["request"] = Request  # a local import: give FastAPI the class, not its name

    app.include_router(router)

