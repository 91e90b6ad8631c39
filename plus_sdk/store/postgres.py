"""The PostgreSQL backend of the summary store (``postgresql://`` URLs; needs ``plus-sdk[postgres]``).

Same rows, same SQL and the same rules as the SQLite backend; what differs is below the
``StoreBackend`` protocol:

- placeholders: the store writes ``?``; each statement is translated once to psycopg's ``%s``;
- locking: a write transaction takes a transaction-scoped advisory lock per user (two writers
  of one user queue, writers of different users run in parallel) and a shared "store" lock;
  imports and migrations take that store lock exclusively, as they touch many users. Version
  numbers are therefore read and written by one writer at a time per user: no gaps, no
  duplicates, across any number of processes and machines;
- reads run in a ``REPEATABLE READ READ ONLY`` transaction: one consistent snapshot;
- a waiting writer gives up after ``busy_timeout_s`` (``lock_timeout``) with ``StoreBusyError``;
- after a delete, ``scrub()`` runs ``VACUUM`` on the store's tables: the deleted rows are
  invisible at once, and VACUUM frees their space for reuse. ``vacuum(full=True)`` rewrites the
  table files so the text leaves them at once; the write-ahead log (and any backups or
  replicas) keep it until PostgreSQL recycles those segments (see docs/store.md).

Each thread (and each process after a fork) opens its own connection.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from plus_sdk.store.base import committed
from plus_sdk.store.errors import StoreBusyError, SummaryStoreError

logger = logging.getLogger(__name__)

#: Advisory-lock class ids ("PLUS" and "PLUT" as 32-bit integers): per-user locks, the store lock.
USER_LOCK_CLASS = 0x504C5553
STORE_LOCK_CLASS = 0x504C5554
#: Lock keys that mean "the whole store" (imports, migrations).
STORE_WIDE_KEYS = frozenset({"__import__", "__schema__"})

_TABLES = ("plus_summary_versions", "plus_summary_users", "plus_api_keys")


@functools.lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). The store's SQL holds no ``?`` in strings."""
    return sql.replace("%", "%%").replace("?", "%s")


def lock_id(key: str) -> int:
    """A stable signed 32-bit id for a lock key (collisions only make two users queue together)."""
    value = zlib.crc32(key.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def redact(url: str) -> str:
    """The URL without its password (for messages and ``location``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PgCursor:
    """A psycopg cursor that accepts the store's ``?`` SQL."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        self.raw.execute(to_pyformat(sql), tuple(params) if params else None)
        return self

    def fetchone(self) -> Any:
        return self.raw.fetchone()

    def fetchall(self) -> list[Any]:
        return self.raw.fetchall()


class PostgresBackend:
    """A PostgreSQL database reached by ``url`` (``postgresql://user:pass@host:port/db``)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0, connect_timeout_s: float = 10.0) -> None:
        try:
            import psycopg  # noqa: F401  (optional: the postgres extra)
        except ImportError as exc:
            raise SummaryStoreError("a postgresql:// store needs psycopg: pip install 'plus-sdk[postgres]'") from exc
        if busy_timeout_s <= 0:
            raise ValueError(f"busy_timeout_s={busy_timeout_s}: give a positive number of seconds")
        self.url = url
        self.location = redact(url)
        self.busy_timeout_s = busy_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._local = threading.local()
        self._all: list[Any] = []
        self._orphans: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._connection()  # fail now, with a clear message, if the server cannot be reached

    def _connection(self) -> Any:
        import psycopg  # optional: the postgres extra

        if os.getpid() != self._pid:  # forked: the parent's sessions are not ours to use or close
            self._orphans.extend(self._all)
            self._local = threading.local()
            self._all = []
            self._lock = threading.Lock()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)))
        except psycopg.Error as exc:
            raise SummaryStoreError(f"cannot connect to the PostgreSQL store {self.location}: "
                                    f"{str(exc).strip()}; check the URL and that the server is running") from exc
        conn.execute(f"SET lock_timeout = {int(self.busy_timeout_s * 1000)}")
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _transaction(self, begin: str, locks: Sequence[tuple[str, tuple[int, ...]]] = ()) -> Iterator[PgCursor]:
        import psycopg  # optional: the postgres extra

        raw = self._begin(begin)
        try:
            with committed(raw.execute, (psycopg.Error,)):  # a lock that times out rolls back too
                for sql, args in locks:
                    try:
                        raw.execute(sql, args)
                    except psycopg.errors.LockNotAvailable as exc:
                        raise StoreBusyError(
                            f"{self.location}: another writer held the lock for {self.busy_timeout_s:.0f} s; "
                            "retry, or open the store with a larger busy_timeout_s") from exc
                yield PgCursor(raw)
        except psycopg.OperationalError as exc:
            raise StoreBusyError(f"lost the connection to the PostgreSQL store {self.location} mid-transaction "
                                 f"({str(exc).strip()}); nothing was written: retry") from exc
        finally:
            raw.close()

    def _begin(self, begin: str) -> Any:
        """A cursor in a new transaction. A session the server dropped while idle (restart, idle timeout,
        ``pg_terminate_backend``) is replaced once: nothing had happened in it yet."""
        import psycopg  # optional: the postgres extra

        for attempt in (1, 2):
            raw = self._connection().cursor()
            try:
                raw.execute(begin)
                return raw
            except psycopg.OperationalError as exc:
                raw.close()
                if attempt == 2 or not raw.connection.closed:
                    raise StoreBusyError(f"the PostgreSQL store {self.location} did not answer "
                                         f"({str(exc).strip()}); retry") from exc
                logger.info("reconnecting to %s after a dropped session: %s", self.location, exc)
                self._local.conn = None
        raise AssertionError("unreachable")

    def read(self) -> contextlib.AbstractContextManager[PgCursor]:
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def write(self, lock_key: str) -> contextlib.AbstractContextManager[PgCursor]:
        if lock_key in STORE_WIDE_KEYS:
            locks = [("SELECT pg_advisory_xact_lock(%s, 0)", (STORE_LOCK_CLASS,))]
        else:
            locks = [("SELECT pg_advisory_xact_lock_shared(%s, 0), pg_advisory_xact_lock(%s, %s)",
                      (STORE_LOCK_CLASS, USER_LOCK_CLASS, lock_id(lock_key)))]
        return self._transaction("BEGIN", locks)

    def scrub(self) -> None:
        self.vacuum(full=False)

    def vacuum(self, *, full: bool = False) -> None:
        """``VACUUM`` the store's tables; ``full=True`` rewrites their files (takes an exclusive table lock)."""
        import psycopg  # optional: the postgres extra

        conn = self._connection()
        for table in _TABLES:
            try:
                conn.execute(f"VACUUM {'FULL ' if full else ''}{table}")
            except psycopg.Error as exc:
                logger.warning("could not vacuum %s in %s after a delete: %s", table, self.location, exc)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._all = []
        self._local = threading.local()
