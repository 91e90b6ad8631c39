"""Who is calling ``plus serve``: the admin token or a per-user API key.

``Authenticator.resolve(token)`` turns a bearer token into a ``Principal``: the admin (the
server's ``--token`` / ``$PLUS_SERVE_TOKEN``) or one user (a key from ``plus keys create``,
looked up hashed in the summary store). Whether a token is required is decided once, when the
server starts: it is, when an admin token is set, when the store's key table holds any key
(revoked ones count), or when ``require_auth`` says so. Revoking the last key never opens the
server. A server that started open closes for good as soon as a first key is created; until
then every caller is the admin. ``principal_dependency`` is the FastAPI dependency routes use;
``Principal.require_user`` / ``require_admin`` scope a route.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from plus_sdk.server.keys import key_for_token, keys_ever_created
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
    """The caller: the admin (``user_id is None``) or the one user a key belongs to.

    ``actor`` is what the access log records: ``admin`` (the admin token), ``key:<key id>`` (never
    the user id, which is often an e-mail address, nor the secret) or ``anonymous`` (an open server).
    """

    user_id: str | None
    actor: str = "admin"

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
#: The caller of an open server (no admin token, no keys): allowed everything, logged as anonymous.
ANONYMOUS = Principal(user_id=None, actor="anonymous")


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``""``."""
    for name, value in headers:
        if name.lower() == AUTH_HEADER:
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class Authenticator:
    """Resolves bearer tokens against the admin token and the store's user keys."""

    def __init__(self, admin_token: str | None, store: SummaryStore | None = None, *,
                 require_auth: bool | None = None) -> None:
        self.admin_token = admin_token or None
        self.store = store
        if require_auth is False and (self.admin_token is not None or (store is not None and keys_ever_created(store))):
            raise ValueError("require_auth=False contradicts the configuration: an admin token is set or the store "
                             "has API keys; leave require_auth unset")
        #: decided here, from the configuration; only ever switches from False to True
        self._required = bool(require_auth) or self.admin_token is not None or \
            (store is not None and keys_ever_created(store))

    def required(self) -> bool:
        """True when a token is needed. Fixed at start, except that an open server with a store closes for good
        once a first key is created (it never reopens, whatever happens to the keys)."""
        if not self._required and self.store is not None and keys_ever_created(self.store):
            self._required = True
        return self._required

    def resolve(self, token: str) -> Principal:
        """The principal of ``token``; ``AuthError(401)`` when it is missing or unknown."""
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        if self.store is not None and token:
            found = key_for_token(self.store, token)
            if found is not None:
                return Principal(user_id=found[1], actor=f"key:{found[0]}")
        if not self.required():
            return ANONYMOUS
        raise AuthError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the admin "
                             "token or a key from `plus keys create`")


def principal_dependency(auth: Authenticator) -> Any:
    """A FastAPI dependency giving the request's ``Principal`` (set by the middleware when it ran)."""
    from fastapi import Depends, HTTPException, Request  # optional: the server extra
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # optional: the server extra

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
