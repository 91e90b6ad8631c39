"""Who is calling ``plus serve``: the admin token or a per-user API key.

``Authenticator.resolve(token)`` turns a bearer token into a ``Principal``: the admin (the
server's ``--token`` / ``$PLUS_SERVE_TOKEN``) or one user (a key from ``plus keys create``,
looked up hashed in the summary store). With neither an admin token nor any active key the
server is open and every caller is the admin. ``principal_dependency`` is the FastAPI
dependency routes use; ``Principal.require_user`` / ``require_admin`` scope a route.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from plus_sdk.store.core import SummaryStore

#: Header FastAPI's HTTPBearer reads; the middleware checks the same one before the body.
AUTH_HEADER = b"authorization"


class AuthError(Exception):
    """A request lacks a valid token (401) or its key may not do this (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """The caller: the admin (``user_id is None``) or the one user a key belongs to."""

    user_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.user_id is None

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise AuthError(403, f"{what} needs the admin token; a user key may only read and edit its own "
                                 "user's summaries")

    def require_user(self, user_id: str) -> None:
        if not self.is_admin and self.user_id != user_id:
            raise AuthError(403, f"this key belongs to user {self.user_id!r} and may not touch {user_id!r}")


ADMIN = Principal(user_id=None)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``""``."""
    for name, value in headers:
        if name.lower() == AUTH_HEADER:
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class Authenticator:
    """Resolves bearer tokens against the admin token and the store's user keys."""

    def __init__(self, admin_token: str | None, store: SummaryStore | None = None) -> None:
        self.admin_token = admin_token or None
        self.store = store

    def required(self) -> bool:
        """True when some token is needed (an admin token is set, or the store has active keys)."""
        from plus_sdk.store.keys import has_keys

        return self.admin_token is not None or (self.store is not None and has_keys(self.store))

    def resolve(self, token: str) -> Principal:
        """The principal of ``token``; ``AuthError(401)`` when it is missing or unknown."""
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        if self.store is not None and token:
            from plus_sdk.store.keys import user_for_key

            user = user_for_key(self.store, token)
            if user is not None:
                return Principal(user_id=user)
        if not self.required():
            return ADMIN
        raise AuthError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the admin "
                             "token or a key from `plus keys create`")


def principal_dependency(auth: Authenticator) -> Any:
    """A FastAPI dependency giving the request's ``Principal`` (set by the middleware when it ran)."""
    from fastapi import Depends, HTTPException, Request
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="The admin token, or a user key from `plus keys create`.")

    def principal(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:  # noqa: B008
        known = getattr(request.state, "principal", None)
        if isinstance(known, Principal):
            return known
        try:
            return auth.resolve(credentials.credentials if credentials is not None else "")
        except AuthError as exc:
            raise HTTPException(exc.status, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    principal.__annotations__["request"] = Request  # local import: give FastAPI the class, not its name
    principal.__annotations__["credentials"] = HTTPAuthorizationCredentials | None
    return principal
