"""HTTP routes of the summary store, added to the ``plus serve`` FastAPI app."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plus_sdk.store.base import (
    SummaryVersion,
)
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import (
    ImportConflictError,
    SummaryStoreError,
    UnknownUserError,
)


class EditRequest(BaseModel):
    """Body of ``PUT /v1/summaries/{user_id}``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The user's own summary text.")


class RevertRequest(BaseModel):
    """Body of ``POST /v1/summaries/{user_id}/revert``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The version to make current again.")


class UserSummaries(BaseModel):
    """What ``GET /v1/summaries/{user_id}`` returns."""

    user_id: str = Field(description="The user.")
    current: SummaryVersion | None = Field(description="The current summary.")
    proposal: SummaryVersion | None = Field(description="A model summary waiting for the user's approval.")


def add_store_routes(app: Any, store: SummaryStore, auth_dependency: Callable[..., Any] | None = None,
                     *, prefix: str = "/v1/summaries") -> None:
    """Add the summary operations to a FastAPI ``app``, each behind ``auth_dependency``.

    Routes: ``GET {prefix}/{user_id}`` (current + proposal), ``PUT {prefix}/{user_id}`` (edit),
    ``GET {prefix}/{user_id}/history``, ``POST {prefix}/{user_id}/revert``,
    ``POST|DELETE {prefix}/{user_id}/proposal`` (accept / dismiss), ``DELETE {prefix}/{user_id}``,
    ``GET {prefix}/{user_id}/export`` (JSONL) and ``POST {prefix}/import`` (JSONL body).
    Invalid ids or texts get 400, unknown users or versions 404, import conflicts 409.
    """
    import io

    from fastapi import APIRouter, Depends, HTTPException, Request
    from fastapi.responses import PlainTextResponse

    deps = [Depends(auth_dependency)] if auth_dependency is not None else []
    router = APIRouter(prefix=prefix, dependencies=deps, tags=["summaries"])

    @contextlib.contextmanager
    def http_errors() -> Iterator[None]:
        try:
            yield
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ImportConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        except (ValueError, SummaryStoreError) as exc:
            raise HTTPException(400, str(exc)) from None

    @router.get("/{user_id}", response_model=UserSummaries)
    def show(user_id: str) -> UserSummaries:
        with http_errors():
            current = store.current(user_id)
            if current is None:
                raise UnknownUserError(f"user {user_id!r} has no summary")
            return UserSummaries(user_id=user_id, current=current, proposal=store.proposal(user_id))

    @router.put("/{user_id}", response_model=SummaryVersion)
    def edit(user_id: str, body: EditRequest) -> SummaryVersion:
        with http_errors():
            return store.edit(user_id, body.text)

    @router.get("/{user_id}/history", response_model=list[SummaryVersion])
    def history(user_id: str) -> list[SummaryVersion]:
        with http_errors():
            rows = store.history(user_id)
            if not rows:
                raise UnknownUserError(f"user {user_id!r} has no summary")
            return rows

    @router.post("/{user_id}/revert", response_model=SummaryVersion)
    def revert(user_id: str, body: RevertRequest) -> SummaryVersion:
        with http_errors():
            return store.revert(user_id, body.version)

    @router.post("/{user_id}/proposal", response_model=SummaryVersion)
    def accept(user_id: str) -> SummaryVersion:
        with http_errors():
            return store.accept_proposal(user_id)

    @router.delete("/{user_id}/proposal")
    def dismiss(user_id: str) -> dict[str, Any]:
        with http_errors():
            return {"user_id": user_id, "dismissed": store.dismiss_proposal(user_id)}

    @router.delete("/{user_id}")
    def forget(user_id: str) -> dict[str, Any]:
        with http_errors():
            return {"user_id": user_id, "deleted_versions": store.delete(user_id)}

    @router.get("/{user_id}/export", response_class=PlainTextResponse)
    def export(user_id: str) -> PlainTextResponse:
        with http_errors():
            if not store.history(user_id):
                raise UnknownUserError(f"user {user_id!r} has no summary")
            buffer = io.StringIO()
            store.export_jsonl(buffer, [user_id])
            return PlainTextResponse(buffer.getvalue(), media_type="application/x-ndjson")

    @router.post("/import")
    async def import_(request: Request, on_conflict: Literal["error", "skip", "replace"] = "error",
                      ) -> dict[str, Any]:
        body = (await request.body()).decode("utf-8", errors="replace")
        with http_errors():
            return {"imported": store.import_jsonl(io.StringIO(body), on_conflict=on_conflict)}
    import_.__annotations__["request"] = Request  # a local import: give FastAPI the class, not its name

    app.include_router(router)

