"""Schema versions of the summary store and the steps that migrate an older database."""

from __future__ import annotations

import logging
from collections.abc import Callable

from plus_sdk.store.base import (
    Cursor,
    StoreBackend,
    utcnow,
)
from plus_sdk.store.errors import (
    SchemaError,
)

logger = logging.getLogger(__name__)

#: Schema version written by this code; older databases are migrated on open.
SCHEMA_VERSION = 3

_V2_TABLES = (
    """CREATE TABLE IF NOT EXISTS plus_summary_versions (
        user_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        text TEXT NOT NULL,
        model_id TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL,
        action TEXT NOT NULL,
        based_on INTEGER,
        PRIMARY KEY (user_id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS plus_summary_users (
        user_id TEXT NOT NULL PRIMARY KEY,
        current_version INTEGER,
        proposal_version INTEGER,
        latest_version INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)


def _migrate_0_to_1(cur: Cursor) -> None:
    """Version 1: one row per user holding only the current summary (no history)."""
    cur.execute("""CREATE TABLE IF NOT EXISTS plus_summaries (
        user_id TEXT NOT NULL PRIMARY KEY,
        text TEXT NOT NULL,
        model_id TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        edited_by_user INTEGER NOT NULL
    )""")


def _migrate_1_to_2(cur: Cursor) -> None:
    """Version 2: full history per user; each version-1 row becomes that user's version 1."""
    for ddl in _V2_TABLES:
        cur.execute(ddl)
    rows = cur.execute("SELECT user_id, text, model_id, prompt_version, source_hash, created_at, edited_by_user "
                       "FROM plus_summaries").fetchall()
    for user_id, text, model_id, prompt_version, source_hash, created_at, edited in rows:
        author = "user" if edited else "model"
        cur.execute("INSERT INTO plus_summary_versions (user_id, version, text, model_id, prompt_version, "
                    "source_hash, created_at, author, action, based_on) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (user_id, text, model_id, prompt_version, source_hash, created_at, author,
                     "edit" if edited else "put"))
        cur.execute("INSERT INTO plus_summary_users (user_id, current_version, proposal_version, latest_version, "
                    "updated_at) VALUES (?, 1, NULL, 1, ?)", (user_id, created_at))
    cur.execute("DROP TABLE plus_summaries")


def _migrate_2_to_3(cur: Cursor) -> None:
    """Version 3: hashed per-user API keys of ``plus serve`` (see ``plus_sdk.server.keys``)."""
    cur.execute("""CREATE TABLE IF NOT EXISTS plus_api_keys (
        key_id TEXT NOT NULL PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        label TEXT NOT NULL
    )""")


#: Migration from version ``n - 1`` to ``n``, for each n. Append new ones; never edit old ones.
MIGRATIONS: dict[int, Callable[[Cursor], None]] = {1: _migrate_0_to_1, 2: _migrate_1_to_2, 3: _migrate_2_to_3}


def _read_schema_version(cur: Cursor) -> int:
    cur.execute("CREATE TABLE IF NOT EXISTS plus_schema_version (version INTEGER NOT NULL PRIMARY KEY, "
                "applied_at TEXT NOT NULL)")
    row = cur.execute("SELECT MAX(version) FROM plus_schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(backend: StoreBackend, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target`` (one transaction per step); returns the version reached."""
    with backend.write("__schema__") as cur:
        current = _read_schema_version(cur)
    if current > SCHEMA_VERSION:
        raise SchemaError(f"{backend.location} has schema version {current}, newer than this plus-sdk "
                          f"understands ({SCHEMA_VERSION}); upgrade plus-sdk")
    while current < target:
        with backend.write("__schema__") as cur:
            current = _read_schema_version(cur)  # another process may have migrated meanwhile
            if current >= target:
                break
            step = current + 1
            MIGRATIONS[step](cur)
            cur.execute("INSERT INTO plus_schema_version (version, applied_at) VALUES (?, ?)",
                        (step, utcnow().isoformat()))
            logger.info("migrated %s to schema version %d", backend.location, step)
            current = step
    return current

