"""The bundled SQLite backend of the summary store, and ``open_backend`` for a path or URL."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from plus_sdk.files import cache_dir
from plus_sdk.store.base import (
    STORE_ENV,
    StoreBackend,
    committed,
)
from plus_sdk.store.errors import (
    StoreBusyError,
    SummaryStoreError,
)
from plus_sdk.store.postgres import PostgresBackend

logger = logging.getLogger(__name__)


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
            mode = self._enable_wal(conn)
            if str(mode).lower() != "wal":
                logger.warning("SQLite at %s runs in journal mode %s, not WAL", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch the file to WAL; retried, since the switch can fail at once (no busy wait) while
        other processes open a file still in rollback mode."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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
            with committed(cursor.execute, (sqlite3.Error,)):
                yield cursor
        finally:
            cursor.close()

    def scrub(self, *, max_wait_s: float = 3.0, pause_s: float = 0.05) -> bool:
        """Checkpoint and truncate the WAL so deleted rows leave the ``-wal`` file; while readers
        hold it, retry for up to ``max_wait_s``. Returns True once it completed."""
        conn = self._connection()
        deadline = time.monotonic() + max_wait_s
        conn.execute("PRAGMA busy_timeout = 50")  # each try waits briefly; the loop bounds the total
        try:
            while True:
                try:
                    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                except sqlite3.OperationalError as exc:
                    busy = 1
                    logger.debug("checkpoint of %s failed (%s); retrying", self.path, exc)
                if not busy:
                    return True
                if time.monotonic() >= deadline:
                    break
                time.sleep(pause_s)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        logger.warning("WAL checkpoint of %s stayed blocked by readers for %.1f s; it completes on a later "
                       "checkpoint", self.path, max_wait_s)
        return False

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


def check_store_location(location: str | os.PathLike[str] | None) -> None:
    """``SummaryStoreError`` when ``location`` names a folder or a file that is not a SQLite database."""
    if location is None or ("://" in str(location) and not str(location).startswith("sqlite:")):
        return
    text = str(location)
    path = Path(text[len("sqlite:///") - 1:] if text.startswith("sqlite:///") else
                text[len("sqlite:"):] if text.startswith("sqlite:") else text).expanduser()
    if path.is_dir():
        raise SummaryStoreError(f"--store {path} is a folder; give a database file inside it, e.g. "
                                f"{path / 'summaries.sqlite3'}")
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise SummaryStoreError(f"--store {path} is not a SQLite database; give a new path or a store "
                                        "file written by plus-sdk")


def default_store_location() -> str:
    """``$PLUS_SUMMARY_STORE`` or ``<plus-sdk cache>/summaries.sqlite3``."""
    return os.environ.get(STORE_ENV) or str(cache_dir() / "summaries.sqlite3")


def open_backend(location: str | os.PathLike[str], **options: Any) -> StoreBackend:
    """A backend for a file path or URL: ``path``, ``sqlite:///abs/path``, ``sqlite:rel/path``, or
    ``postgresql://user:password@host:port/database`` (needs ``plus-sdk[postgres]``)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(text, **options)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") - 1:]
    elif text.startswith("sqlite:"):
        text = text[len("sqlite:"):]
    elif "://" in text:
        raise SummaryStoreError(f"unsupported store URL {text!r}: give a file path, sqlite:///path or "
                                "postgresql://user@host:port/database")
    check_store_location(text)
    return SQLiteBackend(text, **options)

