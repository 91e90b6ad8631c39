"""SummaryStore: durable, versioned, user-editable summaries, one history per user id.

PLUS summaries are text a user can read and correct. The store keeps, per user id, the
current summary and every earlier version (text, model id, prompt version, source hash,
created_at, author ``model`` or ``user``, version number), so an app can show a user what
the system believes about them, let them edit it, undo, and forget them completely.

Rules:

- ``put`` records a summary. An automatic re-summarization never silently replaces a
  user's edit: when the current version was written (or chosen, by ``revert``) by the user,
  a model summary is stored as a *proposal* (``proposal(user_id)``), unless the caller passes
  ``overwrite_user_edits=True``. ``accept_proposal`` / ``dismiss_proposal`` resolve it.
- ``edit`` writes the user's own text; ``revert(version)`` makes an old version current again
  as a new version (the log is append-only, so reverts are themselves undoable).
- ``delete`` removes every row of a user, history included; SQLite runs with
  ``secure_delete`` and the write-ahead log is checkpointed afterwards, so the text does not
  linger in the database files.
- Version numbers of a user are 1, 2, 3, ... with no gaps, also under concurrent writers.

Storage goes through a small ``StoreBackend`` interface (a read snapshot, a write transaction
serialized per user, a post-delete scrub). The bundled backend is SQLite (WAL mode, busy
timeout, ``BEGIN IMMEDIATE`` write transactions). The SQL is plain (``?`` placeholders,
INTEGER/TEXT columns, no upserts), so a PostgreSQL backend only has to translate placeholders
and lock per user; none is bundled (see docs/store.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plus_sdk.console import emit, emit_error
from plus_sdk.types import Summary, UserContext

if TYPE_CHECKING:
    from plus_sdk.summarizer import Summarizer

logger = logging.getLogger(__name__)

#: Schema version written by this code; older databases are migrated on open.
SCHEMA_VERSION = 2
#: Environment variable naming the default database (a path or ``sqlite:///path``).
STORE_ENV = "PLUS_SUMMARY_STORE"
#: Longest accepted user id.
MAX_USER_ID_CHARS = 128
#: Default cap on a summary's text, in characters (a PLUS summary is ~50 words).
DEFAULT_MAX_TEXT_CHARS = 8_000
#: Cap on metadata strings (model id, prompt version, source hash).
MAX_META_CHARS = 512
#: First line of an export file.
EXPORT_FORMAT = "plus-summaries"

_USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$")

Author = Literal["model", "user"]
Action = Literal["put", "edit", "revert", "accept", "proposal"]


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class SummaryStoreError(Exception):
    """Base of every error the store raises."""


class InvalidUserIdError(SummaryStoreError, ValueError):
    """A user id is empty, too long or uses characters outside the allowed set."""


class SummaryTooLargeError(SummaryStoreError, ValueError):
    """A summary text (or a metadata field) is longer than the store accepts."""


class EmptySummaryError(SummaryStoreError, ValueError):
    """A summary text is empty."""


class UnknownUserError(SummaryStoreError, LookupError):
    """The user has no summaries in the store."""


class UnknownVersionError(SummaryStoreError, LookupError):
    """The user has no version with that number."""


class StoreBusyError(SummaryStoreError):
    """Another writer held the database for longer than the busy timeout."""


class SchemaError(SummaryStoreError):
    """The database's schema is newer than this code, or unreadable."""


class ImportFormatError(SummaryStoreError, ValueError):
    """An import file is not a valid summaries export."""


class ImportConflictError(SummaryStoreError, ValueError):
    """An imported user already has summaries in the store."""


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SummaryVersion(BaseModel):
    """One stored version of a user's summary (a row of the history)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(description="The user this summary describes.")
    version: int = Field(ge=1, description="1, 2, 3, ... per user, in the order written.")
    text: str = Field(min_length=1, description="The summary text.")
    model_id: str = Field(default="user", description="Summarizer id that wrote it, 'user' for a hand edit.")
    prompt_version: str = Field(default="", description="PROMPT_VERSION the summarizer used.")
    source_hash: str = Field(default="", description="UserContext.source_hash() of the context it describes.")
    created_at: datetime = Field(default_factory=_utcnow, description="When this version was written (UTC).")
    author: Author = Field(description="'model' (a summarizer wrote it) or 'user' (the user wrote or chose it).")
    action: Action = Field(description="What created it: put, edit, revert, accept or proposal.")
    based_on: int | None = Field(default=None, description="Version a revert or accepted proposal copied.")
    is_current: bool = Field(default=False, description="True for the user's current summary.")
    is_proposal: bool = Field(default=False, description="True for the pending proposal (see put).")

    @property
    def edited_by_user(self) -> bool:
        """True when the user wrote or chose this version."""
        return self.author == "user"

    def summary(self) -> Summary:
        """This version as the SDK's ``Summary`` record."""
        return Summary(text=self.text, model_id=self.model_id, prompt_version=self.prompt_version,
                       source_hash=self.source_hash, created_at=self.created_at,
                       edited_by_user=self.edited_by_user)


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def validate_user_id(user_id: Any) -> str:
    """``user_id`` if valid, else ``InvalidUserIdError`` saying what is allowed."""
    if not isinstance(user_id, str):
        raise InvalidUserIdError(f"user_id must be a string, not {type(user_id).__name__}")
    rule = (f"use 1-{MAX_USER_ID_CHARS} characters from letters, digits and . _ - : @ +, "
            "starting with a letter or digit (no spaces or slashes)")
    if not user_id:
        raise InvalidUserIdError(f"user_id is empty: {rule}")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise InvalidUserIdError(f"user_id has {len(user_id)} characters, more than {MAX_USER_ID_CHARS}: {rule}")
    if not _USER_ID_RE.match(user_id):
        raise InvalidUserIdError(f"user_id {user_id!r} is not allowed: {rule}")
    return user_id


def _check_text(text: Any, limit: int, field: str = "text") -> str:
    if not isinstance(text, str):
        raise EmptySummaryError(f"{field} must be a string, not {type(text).__name__}")
    if not text.strip():
        raise EmptySummaryError(f"{field} is empty: a summary needs some text")
    if len(text) > limit:
        raise SummaryTooLargeError(f"{field} has {len(text)} characters, more than the limit {limit}: shorten it "
                                   "or open the store with a larger max_text_chars")
    return text


def _check_meta(value: str, field: str) -> str:
    if len(value) > MAX_META_CHARS:
        raise SummaryTooLargeError(f"{field} has {len(value)} characters, more than {MAX_META_CHARS}")
    return value


# ---------------------------------------------------------------------------------------
# Backend interface and the SQLite backend
# ---------------------------------------------------------------------------------------


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses. SQL uses ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class StoreBackend(Protocol):
    """Where the rows live. Implement this to put the store on another database.

    - ``read()``: a cursor over one consistent snapshot;
    - ``write(lock_key)``: a transaction during which no other writer of ``lock_key`` runs
      (SQLite locks the whole file; a server database can lock per user); committed when the
      block exits normally, rolled back on an exception;
    - ``scrub()``: after a delete, make the freed data unrecoverable from the files;
    - ``close()``.
    """

    dialect: str
    location: str

    def read(self) -> contextlib.AbstractContextManager[Cursor]: ...

    def write(self, lock_key: str) -> contextlib.AbstractContextManager[Cursor]: ...

    def scrub(self) -> None: ...

    def close(self) -> None: ...


#: Connections inherited over fork: kept referenced so they are never closed in the child.
_FORK_ORPHANS: list[sqlite3.Connection] = []


class SQLiteBackend:
    """A SQLite file in WAL mode: many readers, one writer at a time, any number of processes.

    Each thread (and each process after a fork) gets its own connection. Writers take the
    write lock up front (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout_s`` for it.
    ``synchronous='FULL'`` makes every commit durable across power loss; ``'NORMAL'`` is
    faster and still safe when a process is killed.
    """

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0,
                 synchronous: Literal["FULL", "NORMAL"] = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={synchronous!r}: use 'FULL' or 'NORMAL'")
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(self.path)
        self.busy_timeout_s = busy_timeout_s
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:  # forked: never use (or close) the parent's connections
            _FORK_ORPHANS.extend(self._all)  # closing them here would drop this process's file locks
            self._local = threading.local()
            self._all = []
            self._lock = threading.Lock()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("SQLite at %s runs in journal mode %s, not WAL", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        cursor = conn.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
        finally:
            cursor.execute("COMMIT")
            cursor.close()

    @contextlib.contextmanager
    def write(self, lock_key: str) -> Iterator[sqlite3.Cursor]:
        del lock_key  # SQLite has one writer per file: the whole file is the lock
        conn = self._connection()
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            cursor.close()
            raise StoreBusyError(f"{self.path} stayed locked by another writer for {self.busy_timeout_s:.0f} s "
                                 f"({exc}); retry, or open the store with a larger busy_timeout_s") from exc
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def scrub(self) -> None:
        try:
            busy, _, _ = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:
            logger.warning("could not checkpoint %s after a delete: %s", self.path, exc)
            return
        if busy:
            logger.info("WAL checkpoint of %s was partial (readers active); it completes on a later checkpoint",
                        self.path)

    def vacuum(self) -> None:
        """Rebuild the file, returning free pages to the file system."""
        self._connection().execute("VACUUM")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all = []
        self._local = threading.local()


def default_store_location() -> str:
    """``$PLUS_SUMMARY_STORE`` or ``<plus-sdk cache>/summaries.sqlite3``."""
    from plus_sdk.models import cache_dir

    return os.environ.get(STORE_ENV) or str(cache_dir() / "summaries.sqlite3")


def open_backend(location: str | os.PathLike[str], **options: Any) -> StoreBackend:
    """A backend for a file path or URL: ``path``, ``sqlite:///abs/path`` or ``sqlite:rel/path``."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        raise SummaryStoreError(
            "no PostgreSQL backend is bundled: implement plus_sdk.store.StoreBackend on your driver "
            "(see docs/store.md) and pass it as SummaryStore(backend=...)"
        )
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") - 1:]
    elif text.startswith("sqlite:"):
        text = text[len("sqlite:"):]
    elif "://" in text:
        raise SummaryStoreError(f"unsupported store URL {text!r}: give a file path or sqlite:///path")
    return SQLiteBackend(text, **options)


# ---------------------------------------------------------------------------------------
# Schema and migrations
# ---------------------------------------------------------------------------------------

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


#: Migration from version ``n - 1`` to ``n``, for each n. Append new ones; never edit old ones.
MIGRATIONS: dict[int, Callable[[Cursor], None]] = {1: _migrate_0_to_1, 2: _migrate_1_to_2}


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
                        (step, _utcnow().isoformat()))
            logger.info("migrated %s to schema version %d", backend.location, step)
            current = step
    return current


# ---------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------

_COLUMNS = "user_id, version, text, model_id, prompt_version, source_hash, created_at, author, action, based_on"


class SummaryStore:
    """Per-user current summary, pending proposal and full history.

    ``SummaryStore("summaries.sqlite3")`` (or a ``sqlite:///`` URL, or ``backend=`` any
    ``StoreBackend``); with no argument, ``$PLUS_SUMMARY_STORE`` or the plus-sdk cache folder.
    Safe to share between threads; several processes may open the same file.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None, *, backend: StoreBackend | None = None,
                 max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, **backend_options: Any) -> None:
        if backend is not None and location is not None:
            raise ValueError("give a location or a backend, not both")
        self.backend = backend or open_backend(location or default_store_location(), **backend_options)
        self.max_text_chars = max_text_chars
        self.schema_version = migrate(self.backend)

    def __enter__(self) -> SummaryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SummaryStore({self.backend.location!r})"

    def close(self) -> None:
        """Close the database connections."""
        self.backend.close()

    # -- reading --------------------------------------------------------------------------
    def get(self, user_id: str) -> Summary | None:
        """The user's current summary, or ``None`` when there is none."""
        row = self.current(user_id)
        return row.summary() if row else None

    def current(self, user_id: str) -> SummaryVersion | None:
        """The user's current version (with its history metadata), or ``None``."""
        return self._pointed(user_id, "current_version")

    def proposal(self, user_id: str) -> SummaryVersion | None:
        """The pending proposal (a model summary held back because the user edited theirs), or ``None``."""
        return self._pointed(user_id, "proposal_version")

    def history(self, user_id: str) -> list[SummaryVersion]:
        """Every version of the user, oldest first (empty when the user is unknown)."""
        validate_user_id(user_id)
        with self.backend.read() as cur:
            head = self._head(cur, user_id)
            rows = cur.execute(f"SELECT {_COLUMNS} FROM plus_summary_versions WHERE user_id = ? ORDER BY version",
                               (user_id,)).fetchall()
        return [self._row(r, head) for r in rows]

    def version(self, user_id: str, version: int) -> SummaryVersion:
        """One version of the user; ``UnknownVersionError`` when it does not exist."""
        validate_user_id(user_id)
        with self.backend.read() as cur:
            head = self._head(cur, user_id)
            row = self._fetch_version(cur, user_id, version)
        return self._row(row, head)

    def users(self) -> list[str]:
        """Every user id with summaries, sorted."""
        with self.backend.read() as cur:
            return [r[0] for r in cur.execute("SELECT user_id FROM plus_summary_users ORDER BY user_id").fetchall()]

    def __len__(self) -> int:
        with self.backend.read() as cur:
            return int(cur.execute("SELECT COUNT(*) FROM plus_summary_users").fetchone()[0])

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.current(validate_user_id(user_id)) is not None

    # -- writing --------------------------------------------------------------------------
    def put(self, user_id: str, summary: Summary | str, *, overwrite_user_edits: bool = False) -> SummaryVersion:
        """Record a summary; returns the stored version.

        A ``Summary`` with ``edited_by_user=True`` (or a plain ``str``) counts as the user's
        own text and always becomes current. A model summary becomes current unless the
        current one is the user's: then it is kept as the pending proposal
        (``result.is_proposal``) unless ``overwrite_user_edits=True``.
        """
        if isinstance(summary, str):
            summary = Summary.from_text(_check_text(summary, self.max_text_chars))
        if not isinstance(summary, Summary):
            raise TypeError(f"summary must be a Summary or str, not {type(summary).__name__}")
        author: Author = "user" if summary.edited_by_user else "model"
        fields = self._fields(summary.text, summary.model_id, summary.prompt_version, summary.source_hash)
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            current = self._current_row(cur, user_id, head)
            held_back = author == "model" and current is not None and current.author == "user" \
                and not overwrite_user_edits
            action: Action = "proposal" if held_back else "put"
            row = self._append(cur, user_id, head, fields, author=author, action=action,
                               created_at=summary.created_at, becomes="proposal" if held_back else "current")
        if held_back:
            logger.info("kept a model summary of %s as proposal v%d: the current one is the user's edit",
                        user_id, row.version)
        return row

    def edit(self, user_id: str, text: str) -> SummaryVersion:
        """The user's own text becomes the current summary (``author='user'``)."""
        _check_text(text, self.max_text_chars)
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            current = self._current_row(cur, user_id, head)
            fields = self._fields(text, "user", current.prompt_version if current else "",
                                  current.source_hash if current else "")
            return self._append(cur, user_id, head, fields, author="user", action="edit", becomes="current")

    def revert(self, user_id: str, version: int) -> SummaryVersion:
        """Make ``version`` current again, as a new version chosen by the user."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            old = self._row(self._fetch_version(cur, user_id, version), head)
            fields = (old.text, old.model_id, old.prompt_version, old.source_hash)
            return self._append(cur, user_id, head, fields, author="user", action="revert", based_on=version,
                                becomes="current")

    def accept_proposal(self, user_id: str) -> SummaryVersion:
        """Make the pending proposal current (as a new version); ``UnknownVersionError`` if none."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            if head is None or head[1] is None:
                raise UnknownVersionError(f"user {user_id!r} has no pending proposal to accept")
            old = self._row(self._fetch_version(cur, user_id, head[1]), head)
            fields = (old.text, old.model_id, old.prompt_version, old.source_hash)
            return self._append(cur, user_id, head, fields, author="model", action="accept", based_on=old.version,
                                becomes="current")

    def dismiss_proposal(self, user_id: str) -> bool:
        """Drop the pending proposal (it stays in the history); True if there was one."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            if head is None or head[1] is None:
                return False
            cur.execute("UPDATE plus_summary_users SET proposal_version = NULL, updated_at = ? WHERE user_id = ?",
                        (_utcnow().isoformat(), user_id))
            return True

    def delete(self, user_id: str) -> int:
        """Forget the user: every version and pointer is deleted. Returns the number of versions removed."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            n = int(cur.execute("SELECT COUNT(*) FROM plus_summary_versions WHERE user_id = ?",
                                (user_id,)).fetchone()[0])
            cur.execute("DELETE FROM plus_summary_versions WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM plus_summary_users WHERE user_id = ?", (user_id,))
        self.backend.scrub()
        logger.info("deleted %d summary versions of %s", n, user_id)
        return n

    # -- export / import ------------------------------------------------------------------
    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str], user_ids: Iterable[str] | None = None) -> int:
        """Write the histories of ``user_ids`` (default: everyone) as JSON lines; returns versions written.

        The first line is a header; each following line is one ``SummaryVersion``. A path is
        written atomically (temporary file, then rename).
        """
        ids = [validate_user_id(u) for u in user_ids] if user_ids is not None else self.users()
        if not isinstance(dest, (str, os.PathLike)):
            return self._export_to(dest, ids)
        path = Path(dest).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                count = self._export_to(handle, ids)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return count

    def _export_to(self, handle: IO[str], user_ids: list[str]) -> int:
        handle.write(json.dumps({"format": EXPORT_FORMAT, "schema_version": SCHEMA_VERSION,
                                 "exported_at": _utcnow().isoformat()}) + "\n")
        count = 0
        for user_id in user_ids:
            for row in self.history(user_id):
                handle.write(row.model_dump_json() + "\n")
                count += 1
        return count

    def import_jsonl(self, src: str | os.PathLike[str] | IO[str], *, user_ids: Iterable[str] | None = None,
                     on_conflict: Literal["error", "skip", "replace"] = "error") -> dict[str, int]:
        """Load an export; returns ``{user_id: versions imported}``. All or nothing.

        ``user_ids`` limits the import to those users. A user already in the store is an
        ``ImportConflictError`` (``on_conflict='error'``), left alone (``'skip'``) or has their
        whole history replaced by the file's (``'replace'``).
        """
        if on_conflict not in ("error", "skip", "replace"):
            raise ValueError(f"on_conflict={on_conflict!r}: use 'error', 'skip' or 'replace'")
        wanted = {validate_user_id(u) for u in user_ids} if user_ids is not None else None
        if isinstance(src, (str, os.PathLike)):
            with open(Path(src).expanduser(), encoding="utf-8") as handle:
                by_user = self._parse_export(handle, wanted)
        else:
            by_user = self._parse_export(src, wanted)
        imported: dict[str, int] = {}
        with self.backend.write("__import__") as cur:
            for user_id, rows in by_user.items():
                if self._head(cur, user_id) is not None:
                    if on_conflict == "error":
                        raise ImportConflictError(f"user {user_id!r} already has summaries; pass on_conflict="
                                                  "'skip' or 'replace' (CLI: --on-conflict)")
                    if on_conflict == "skip":
                        continue
                    cur.execute("DELETE FROM plus_summary_versions WHERE user_id = ?", (user_id,))
                    cur.execute("DELETE FROM plus_summary_users WHERE user_id = ?", (user_id,))
                self._insert_history(cur, user_id, rows)
                imported[user_id] = len(rows)
        if on_conflict == "replace":
            self.backend.scrub()
        return imported

    def _parse_export(self, handle: IO[str], wanted: set[str] | None) -> dict[str, list[SummaryVersion]]:
        by_user: dict[str, list[SummaryVersion]] = {}
        header_seen = False
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(f"line {number} is not JSON: {exc}") from None
            if not header_seen:
                if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
                    raise ImportFormatError(f"line {number} should be the header {{\"format\": \"{EXPORT_FORMAT}\"}}"
                                            "; is this a summaries export?")
                header_seen = True
                continue
            try:
                row = SummaryVersion.model_validate(data)
            except ValidationError as exc:
                raise ImportFormatError(f"line {number} is not a summary version:\n{exc}") from None
            try:
                validate_user_id(row.user_id)
                self._fields(row.text, row.model_id, row.prompt_version, row.source_hash)
            except SummaryStoreError as exc:
                raise ImportFormatError(f"line {number}: {exc}") from None
            if wanted is None or row.user_id in wanted:
                by_user.setdefault(row.user_id, []).append(row)
        if not header_seen:
            raise ImportFormatError("the file is empty: expected a summaries export")
        for user_id, rows in by_user.items():
            rows.sort(key=lambda r: r.version)
            numbers = [r.version for r in rows]
            if numbers != list(range(1, len(rows) + 1)):
                raise ImportFormatError(f"user {user_id!r}: versions must be 1..{len(rows)} without gaps or "
                                        f"duplicates, got {numbers[:20]}")
            if sum(r.is_current for r in rows) > 1 or sum(r.is_proposal for r in rows) > 1:
                raise ImportFormatError(f"user {user_id!r}: more than one current or proposal version")
        return by_user

    def _insert_history(self, cur: Cursor, user_id: str, rows: list[SummaryVersion]) -> None:
        for r in rows:
            cur.execute(f"INSERT INTO plus_summary_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (user_id, r.version, r.text, r.model_id, r.prompt_version, r.source_hash,
                         _iso(r.created_at), r.author, r.action, r.based_on))
        current = next((r.version for r in rows if r.is_current), None)
        proposal = next((r.version for r in rows if r.is_proposal), None)
        cur.execute("INSERT INTO plus_summary_users (user_id, current_version, proposal_version, latest_version, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)",
                    (user_id, current, proposal, len(rows), _utcnow().isoformat()))

    # -- internals ------------------------------------------------------------------------
    def _fields(self, text: str, model_id: str, prompt_version: str, source_hash: str) -> tuple[str, str, str, str]:
        return (_check_text(text, self.max_text_chars), _check_meta(model_id, "model_id"),
                _check_meta(prompt_version, "prompt_version"), _check_meta(source_hash, "source_hash"))

    @staticmethod
    def _head(cur: Cursor, user_id: str) -> tuple[int | None, int | None, int] | None:
        """(current_version, proposal_version, latest_version) of the user, or None."""
        row = cur.execute("SELECT current_version, proposal_version, latest_version FROM plus_summary_users "
                          "WHERE user_id = ?", (user_id,)).fetchone()
        return (row[0], row[1], int(row[2])) if row else None

    @staticmethod
    def _fetch_version(cur: Cursor, user_id: str, version: int) -> Any:
        if not isinstance(version, int) or isinstance(version, bool):
            raise UnknownVersionError(f"version must be an integer, not {version!r}")
        row = cur.execute(f"SELECT {_COLUMNS} FROM plus_summary_versions WHERE user_id = ? AND version = ?",
                          (user_id, version)).fetchone()
        if row is None:
            raise UnknownVersionError(f"user {user_id!r} has no version {version}; see history(user_id)")
        return row

    def _current_row(self, cur: Cursor, user_id: str, head: tuple[int | None, int | None, int] | None,
                     ) -> SummaryVersion | None:
        if head is None or head[0] is None:
            return None
        return self._row(self._fetch_version(cur, user_id, head[0]), head)

    def _pointed(self, user_id: str, pointer: str) -> SummaryVersion | None:
        validate_user_id(user_id)
        with self.backend.read() as cur:
            row = cur.execute(
                f"SELECT {', '.join('v.' + c.strip() for c in _COLUMNS.split(','))}, "
                "u.current_version, u.proposal_version, u.latest_version "
                "FROM plus_summary_users u JOIN plus_summary_versions v "
                f"ON v.user_id = u.user_id AND v.version = u.{pointer} WHERE u.user_id = ?",
                (user_id,)).fetchone()
        return self._row(row[:10], tuple(row[10:])) if row else None  # type: ignore[arg-type]

    @staticmethod
    def _row(row: Any, head: tuple[int | None, int | None, int] | None) -> SummaryVersion:
        user_id, version, text, model_id, prompt_version, source_hash, created_at, author, action, based_on = row
        return SummaryVersion(user_id=user_id, version=int(version), text=text, model_id=model_id,
                              prompt_version=prompt_version, source_hash=source_hash,
                              created_at=datetime.fromisoformat(created_at), author=author, action=action,
                              based_on=based_on, is_current=bool(head and head[0] == version),
                              is_proposal=bool(head and head[1] == version))

    def _append(self, cur: Cursor, user_id: str, head: tuple[int | None, int | None, int] | None,
                fields: tuple[str, str, str, str], *, author: Author, action: Action,
                becomes: Literal["current", "proposal"], based_on: int | None = None,
                created_at: datetime | None = None) -> SummaryVersion:
        """Insert the next version and move the user's pointer; runs inside a write transaction."""
        version = (head[2] if head else 0) + 1
        stamp = _iso(created_at or _utcnow())
        text, model_id, prompt_version, source_hash = fields
        cur.execute(f"INSERT INTO plus_summary_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, version, text, model_id, prompt_version, source_hash, stamp, author, action, based_on))
        now = _utcnow().isoformat()
        current, proposal = (head[0], head[1]) if head else (None, None)
        if becomes == "current":
            current, proposal = version, (None if author == "model" else proposal)
        else:
            proposal = version
        if head is None:
            cur.execute("INSERT INTO plus_summary_users (user_id, current_version, proposal_version, latest_version, "
                        "updated_at) VALUES (?, ?, ?, ?, ?)", (user_id, current, proposal, version, now))
        else:
            cur.execute("UPDATE plus_summary_users SET current_version = ?, proposal_version = ?, latest_version = ?, "
                        "updated_at = ? WHERE user_id = ?", (current, proposal, version, now, user_id))
        new_head = (current, proposal, version)
        return self._row((user_id, version, text, model_id, prompt_version, source_hash, stamp, author, action,
                          based_on), new_head)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


# ---------------------------------------------------------------------------------------
# Summarizer integration
# ---------------------------------------------------------------------------------------


def attach_store(summarizer: Summarizer | None, store: SummaryStore | None) -> None:
    """Give ``summarizer`` the ``store`` a judge or generator was built with."""
    if store is None:
        return
    if summarizer is None:
        raise ValueError("store= needs a summarizer: pass summarizer=Summarizer(...) as well")
    if summarizer.store is not None and summarizer.store is not store:
        raise ValueError("the summarizer already has a different store; give the same store or none")
    summarizer.store = store


def summarize_with_store(summarizer: Summarizer, store: SummaryStore | None, contexts: Sequence[UserContext | None],
                         user_ids: Sequence[str | None], *, refresh: bool = False,
                         **generate_options: Any) -> list[Summary]:
    """Summaries for (context, user id) rows, reusing and recording the users' stored summaries.

    Per row with a user id: the stored current summary is reused when the user edited it
    (user edits win) or when its source hash equals the context's. Otherwise a fresh
    summary is generated and recorded with ``put`` (so over a user's edit it becomes a
    proposal, generated once per context change, and the user's edit is returned).
    ``refresh=True`` regenerates every row and records it as current, even over a user edit.
    A row with a user id and no context (``None``) gets the stored summary, or an
    ``UnknownUserError``. Rows without a user id are summarized as usual.
    """
    if len(contexts) != len(user_ids):
        raise ValueError(f"got {len(contexts)} contexts but {len(user_ids)} user_ids; give one user id per context")
    if store is None and any(u is not None for u in user_ids):
        raise ValueError("user_id was given but no SummaryStore is configured: pass store=SummaryStore(...)")
    results: list[Summary | None] = [None] * len(contexts)
    to_generate: list[int] = []
    for i, (context, user_id) in enumerate(zip(contexts, user_ids, strict=True)):
        if user_id is None:
            if context is None:
                raise ValueError(f"row {i} has neither a context nor a user_id")
            to_generate.append(i)
            continue
        assert store is not None
        current = store.current(user_id)
        if context is None:
            if current is None:
                raise UnknownUserError(f"user {user_id!r} has no stored summary; pass their context")
            results[i] = current.summary()
        elif refresh or current is None:
            to_generate.append(i)
        elif current.edited_by_user:
            results[i] = current.summary()
            proposal = store.proposal(user_id)
            known = {current.source_hash, proposal.source_hash if proposal else None}
            if context.source_hash() not in known:
                to_generate.append(i)  # record a proposal; the user's text is still what we return
        elif current.source_hash == context.source_hash():
            results[i] = current.summary()
        else:
            to_generate.append(i)
    if to_generate:
        fresh = summarizer.summarize_batch([contexts[i] for i in to_generate], **generate_options)  # type: ignore[misc]
        recorded: dict[tuple[str, str], Summary] = {}
        for i, summary in zip(to_generate, fresh, strict=True):
            user_id = user_ids[i]
            if user_id is None:
                results[i] = summary
                continue
            assert store is not None
            key = (user_id, summary.source_hash)
            if key not in recorded:
                row = store.put(user_id, summary, overwrite_user_edits=refresh)
                current = store.get(user_id) if row.is_proposal else None
                recorded[key] = current or summary  # over a user's edit, the edit is what gets used
            results[i] = results[i] or recorded[key]
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------------------
# HTTP routes (for plus serve)
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# CLI: plus summaries ...
# ---------------------------------------------------------------------------------------


def _print_version(row: SummaryVersion) -> None:
    flags = [f for f, on in (("current", row.is_current), ("proposal", row.is_proposal)) if on]
    origin = f" from v{row.based_on}" if row.based_on else ""
    emit(f"v{row.version}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.author:<5}  {row.action}{origin}"
          f"{'  [' + ', '.join(flags) + ']' if flags else ''}")
    emit(f"    {row.text}")


def _cmd_summaries(args: argparse.Namespace) -> int:
    try:
        with SummaryStore(args.store) as store:
            return _run_summaries(store, args)
    except SummaryStoreError as exc:
        emit_error(f"error: {exc}")
        return 2


def _run_summaries(store: SummaryStore, args: argparse.Namespace) -> int:
    action = args.summaries_command
    user = args.user
    if action in ("export", "import") and (user is None) == (not args.all):
        raise SummaryStoreError(f"plus summaries {action}: give a user id or --all (not both)")
    if action == "show":
        current = store.current(user)
        if current is None:
            raise UnknownUserError(f"user {user!r} has no summary")
        proposal = store.proposal(user)
        if args.json:
            emit(UserSummaries(user_id=user, current=current, proposal=proposal).model_dump_json(indent=2))
        else:
            _print_version(current)
            if proposal is not None:
                emit("pending proposal (accept with `plus summaries accept`):")
                _print_version(proposal)
    elif action == "edit":
        text = sys.stdin.read() if args.text == "-" else args.text
        _print_version(store.edit(user, text.strip()))
    elif action == "history":
        rows = store.history(user)
        if not rows:
            raise UnknownUserError(f"user {user!r} has no summary")
        if args.json:
            emit(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            for row in rows:
                _print_version(row)
    elif action == "revert":
        _print_version(store.revert(user, args.version))
    elif action == "accept":
        _print_version(store.accept_proposal(user))
    elif action == "delete":
        if not args.yes:
            emit_error(f"error: deleting {user!r} cannot be undone; repeat with --yes")
            return 2
        emit(json.dumps({"user_id": user, "deleted_versions": store.delete(user)}))
    elif action == "export":
        ids = None if args.all else [user]
        if ids is not None and not store.history(user):
            raise UnknownUserError(f"user {user!r} has no summary")
        count = store.export_jsonl(args.output if args.output != "-" else sys.stdout, ids)
        if args.output != "-":
            emit(json.dumps({"output": args.output, "versions": count}))
    elif action == "import":
        ids = None if args.all else [user]
        emit(json.dumps({"imported": store.import_jsonl(args.input, user_ids=ids, on_conflict=args.on_conflict)}))
    return 0


def add_summaries_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus summaries show|edit|history|revert|accept|delete|export|import USER``."""
    parser = sub.add_parser("summaries", help="read, edit, revert, delete, export or import stored user summaries")
    actions = parser.add_subparsers(dest="summaries_command", required=True)

    def command(name: str, help_text: str, *, everyone: bool = False) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text)
        if everyone:
            p.add_argument("user", nargs="?", default=None, help="the user id (or --all)")
            p.add_argument("--all", action="store_true", help="every user in the store / the file")
        else:
            p.add_argument("user", help="the user id")
        p.add_argument("--store", default=None,
                       help=f"database file or sqlite:/// URL (default: ${STORE_ENV} or the plus-sdk cache)")
        p.set_defaults(func=_cmd_summaries)
        return p

    p = command("show", "the current summary and any pending proposal")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("edit", "replace the current summary with your own text")
    p.add_argument("text", help="the new summary text ('-' reads it from stdin)")
    p = command("history", "every version, oldest first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("revert", "make an earlier version current again")
    p.add_argument("version", type=int, help="the version number (see history)")
    command("accept", "accept the pending proposal")
    p = command("delete", "forget the user: delete every version")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p = command("export", "write the user's history as JSON lines", everyone=True)
    p.add_argument("-o", "--output", default="-", help="output file ('-': stdout)")
    p = command("import", "load a user's history from an export file", everyone=True)
    p.add_argument("-i", "--input", required=True, help="a file written by `plus summaries export`")
    p.add_argument("--on-conflict", choices=["error", "skip", "replace"], default="error",
                   help="what to do when the user already has summaries")
