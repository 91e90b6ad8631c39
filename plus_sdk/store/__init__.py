"""The summary store: durable, versioned, user-editable summaries, one history per user id.

Modules: ``errors`` (the exceptions), ``base`` (limits, the ``SummaryVersion`` record,
validation, the ``StoreBackend`` protocol), ``sqlite`` (the SQLite backend, ``open_backend``),
``postgres`` (the PostgreSQL backend), ``migrations`` (schema versions), ``imports`` (JSONL
import), ``core`` (``SummaryStore``) and ``summaries`` (summarizing with a store). Import from
here. The store knows nothing of HTTP: its routes and the API keys of ``plus serve`` live in
``plus_sdk.server`` (``store_routes``, ``keys``).
"""

from plus_sdk.store.base import (
    DEFAULT_MAX_TEXT_CHARS,
    EXPORT_FORMAT,
    MAX_META_CHARS,
    MAX_USER_ID_CHARS,
    STORE_ENV,
    Cursor,
    StoreBackend,
    SummaryVersion,
    validate_user_id,
)
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import (
    EmptySummaryError,
    ImportConflictError,
    ImportFormatError,
    InvalidTextError,
    InvalidUserIdError,
    SchemaError,
    StoreBusyError,
    SummaryStoreError,
    SummaryTooLargeError,
    UnknownUserError,
    UnknownVersionError,
)
from plus_sdk.store.migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from plus_sdk.store.postgres import PostgresBackend
from plus_sdk.store.sqlite import SQLiteBackend, default_store_location, open_backend
from plus_sdk.store.summaries import attach_store, forget_user, summarize_with_store

__all__ = [
    "DEFAULT_MAX_TEXT_CHARS",
    "EXPORT_FORMAT",
    "MAX_META_CHARS",
    "MAX_USER_ID_CHARS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "Cursor",
    "EmptySummaryError",
    "ImportConflictError",
    "ImportFormatError",
    "InvalidTextError",
    "InvalidUserIdError",
    "PostgresBackend",
    "SQLiteBackend",
    "SchemaError",
    "StoreBackend",
    "StoreBusyError",
    "SummaryStore",
    "SummaryStoreError",
    "SummaryTooLargeError",
    "SummaryVersion",
    "UnknownUserError",
    "UnknownVersionError",
    "attach_store",
    "default_store_location",
    "forget_user",
    "migrate",
    "open_backend",
    "summarize_with_store",
    "validate_user_id",
]
