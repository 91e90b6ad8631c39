"""Per-user API keys of ``plus serve``, stored hashed in the summary store.

A key is ``plus_<key id>_<secret>``; only its SHA-256 is stored (the secret has 256 random
bits, so a fast hash is enough), with the user it belongs to. A user key reads and edits only
that user's summaries (see ``plus_sdk.server.auth``). The table lives in the store's database (schema
version 3); this module is the server's, since only ``plus serve`` reads keys. Keys are created, listed and revoked with
``plus keys create|list|revoke``; revoking keeps the row (with ``revoked_at``) for the record.
Deleting a user (``SummaryStore.delete``) revokes their keys and blanks the user id and label of
those rows, so the table no longer names them; the rows stay, so a server that once had keys
still requires a token after a restart (``plus_sdk.server.auth``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pydantic import BaseModel, Field

from plus_sdk.store.base import check_no_control, utcnow, validate_user_id
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import SummaryStoreError, UnknownKeyError

KEY_PREFIX = "plus_"


class ApiKey(BaseModel):
    """One stored key (never the secret itself)."""

    key_id: str = Field(description="Public id of the key (part of the key text).")
    user_id: str = Field(description="The only user this key may read and edit.")
    created_at: datetime = Field(description="When the key was created (UTC).")
    revoked_at: datetime | None = Field(default=None, description="When it was revoked, else None.")
    label: str = Field(default="", description="A note for whoever manages keys.")


def hash_key(token: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def create_key(store: SummaryStore, user_id: str, *, label: str = "") -> tuple[ApiKey, str]:
    """A new key for ``user_id``: returns (its record, the key text, shown only this once)."""
    validate_user_id(user_id)
    if len(label) > 200:
        raise SummaryStoreError(f"label has {len(label)} characters, more than 200")
    check_no_control(label, "label")
    key_id = secrets.token_hex(6)
    token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with store.backend.write("__keys__") as cur:
        cur.execute("INSERT INTO plus_api_keys (key_id, user_id, key_hash, created_at, revoked_at, label) "
                    "VALUES (?, ?, ?, ?, NULL, ?)", (key_id, user_id, hash_key(token), now.isoformat(), label))
    return ApiKey(key_id=key_id, user_id=user_id, created_at=now, label=label), token


def revoke_key(store: SummaryStore, key_id: str) -> ApiKey:
    """Revoke a key by its id (``UnknownKeyError`` if there is none, or it is already revoked)."""
    with store.backend.write("__keys__") as cur:
        row = cur.execute("SELECT revoked_at FROM plus_api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None or row[0] is not None:
            raise UnknownKeyError(f"no active key with id {key_id!r}; see `plus keys list`")
        cur.execute("UPDATE plus_api_keys SET revoked_at = ? WHERE key_id = ?", (utcnow().isoformat(), key_id))
    return next(k for k in list_keys(store, include_revoked=True) if k.key_id == key_id)


def list_keys(store: SummaryStore, *, include_revoked: bool = False) -> list[ApiKey]:
    """Every key (the active ones unless ``include_revoked``), oldest first."""
    sql = "SELECT key_id, user_id, created_at, revoked_at, label FROM plus_api_keys"
    if not include_revoked:
        sql += " WHERE revoked_at IS NULL"
    with store.backend.read() as cur:
        rows = cur.execute(sql + " ORDER BY created_at, key_id").fetchall()
    return [ApiKey(key_id=r[0], user_id=r[1], created_at=datetime.fromisoformat(r[2]),
                   revoked_at=datetime.fromisoformat(r[3]) if r[3] else None, label=r[4]) for r in rows]


def key_for_token(store: SummaryStore, token: str) -> tuple[str, str] | None:
    """``(key id, user id)`` of an active key, or ``None`` for an unknown or revoked key."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    with store.backend.read() as cur:
        row = cur.execute("SELECT key_id, user_id FROM plus_api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                          (hash_key(token),)).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def keys_ever_created(store: SummaryStore) -> bool:
    """True when the key table holds any row, active or revoked: the store is used with keys."""
    with store.backend.read() as cur:
        return cur.execute("SELECT 1 FROM plus_api_keys LIMIT 1").fetchone() is not None
