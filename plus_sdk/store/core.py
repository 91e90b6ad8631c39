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
- ``delete`` removes every row of a user, history included, and revokes their API keys; SQLite runs with
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

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from plus_sdk.files import json_lines, umask_mode
from plus_sdk.store.base import (
    DEFAULT_MAX_TEXT_CHARS,
    EXPORT_FORMAT,
    MAX_VERSION,
    Action,
    Author,
    Cursor,
    StoreBackend,
    SummaryVersion,
    check_meta,
    check_text,
    iso_utc,
    utcnow,
    validate_user_id,
)
from plus_sdk.store.errors import (
    ImportConflictError,
    ImportFormatError,
    SummaryStoreError,
    UnknownVersionError,
)
from plus_sdk.store.imports import check_export_schema, check_imported_history
from plus_sdk.store.migrations import SCHEMA_VERSION, migrate
from plus_sdk.store.sqlite import default_store_location, open_backend
from plus_sdk.types import Summary

logger = logging.getLogger(__name__)

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
            summary = Summary.from_text(check_text(summary, self.max_text_chars))
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
        check_text(text, self.max_text_chars)
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
            return self._promote(cur, user_id, self._head(cur, user_id), version, author="user", action="revert")

    def accept_proposal(self, user_id: str) -> SummaryVersion:
        """Make the pending proposal current (as a new version); ``UnknownVersionError`` if none."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            if head is None or head[1] is None:
                raise UnknownVersionError(f"user {user_id!r} has no pending proposal to accept")
            return self._promote(cur, user_id, head, head[1], author="model", action="accept")

    def _promote(self, cur: Cursor, user_id: str, head: tuple[int | None, int | None, int] | None, version: int, *,
                 author: str, action: str) -> SummaryVersion:
        """Copy ``version`` as a new current version (revert, accept a proposal)."""
        old = self._row(self._fetch_version(cur, user_id, version), head)
        fields = (old.text, old.model_id, old.prompt_version, old.source_hash)
        return self._append(cur, user_id, head, fields, author=author, action=action, based_on=version,
                            becomes="current")

    def dismiss_proposal(self, user_id: str) -> bool:
        """Drop the pending proposal (it stays in the history); True if there was one."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            head = self._head(cur, user_id)
            if head is None or head[1] is None:
                return False
            cur.execute("UPDATE plus_summary_users SET proposal_version = NULL, updated_at = ? WHERE user_id = ?",
                        (utcnow().isoformat(), user_id))
            return True

    def delete(self, user_id: str) -> int:
        """Forget the user: every version and pointer is deleted, and their API keys are revoked with the
        user id blanked in the key table. Returns the number of versions removed."""
        validate_user_id(user_id)
        with self.backend.write(user_id) as cur:
            n = int(cur.execute("SELECT COUNT(*) FROM plus_summary_versions WHERE user_id = ?",
                                (user_id,)).fetchone()[0])
            cur.execute("DELETE FROM plus_summary_versions WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM plus_summary_users WHERE user_id = ?", (user_id,))
            now = utcnow().isoformat()  # their keys stop working, and the key table stops naming them
            cur.execute("UPDATE plus_api_keys SET revoked_at = COALESCE(revoked_at, ?), user_id = '', "
                                  "label = '' WHERE user_id = ?", (now, user_id))
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
        os.fchmod(fd, umask_mode())  # the user's umask, not tempfile's 0600
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
                                 "exported_at": utcnow().isoformat()}) + "\n")
        count = 0
        for user_id in user_ids:
            for row in self.history(user_id):
                handle.write(row.model_dump_json() + "\n")
                count += 1
        return count

    def import_jsonl(self, src: str | os.PathLike[str] | IO[str], *, user_ids: Iterable[str] | None = None,
                     on_conflict: Literal["error", "skip", "replace"] = "error",
                     trust_authors: bool = False) -> dict[str, int]:
        """Load an export; returns ``{user_id: versions imported}``. All or nothing.

        ``user_ids`` limits the import to those users. A user already in the store is an
        ``ImportConflictError`` (``on_conflict='error'``), left alone (``'skip'``) or has their
        whole history replaced by the file's (``'replace'``). The file is checked first (schema
        version, one current version per user, ``based_on`` naming an earlier version). Rows the
        file says a user wrote are recorded with ``author='import'`` (a model refresh may replace
        them) unless ``trust_authors=True`` (restoring your own backup).
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
                self._insert_history(cur, user_id, rows, trust_authors=trust_authors)
                imported[user_id] = len(rows)
        if on_conflict == "replace":
            self.backend.scrub()
        return imported

    def _parse_export(self, handle: IO[str], wanted: set[str] | None) -> dict[str, list[SummaryVersion]]:
        by_user: dict[str, list[SummaryVersion]] = {}
        header_seen = False
        for number, data, error in json_lines(handle):
            if error is not None:
                raise ImportFormatError(f"line {number} is not JSON: {error}") from None
            if not header_seen:
                if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
                    raise ImportFormatError(f"line {number} should be the header {{\"format\": \"{EXPORT_FORMAT}\"}}"
                                            "; is this a summaries export?")
                check_export_schema(data.get("schema_version"))
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
            check_imported_history(user_id, rows)
        return by_user

    def _insert_history(self, cur: Cursor, user_id: str, rows: list[SummaryVersion], *, trust_authors: bool,
                        ) -> None:
        for r in rows:  # a user's text from a file is recorded as imported: it never outranks a refresh
            author = "import" if r.author == "user" and not trust_authors else r.author
            cur.execute(f"INSERT INTO plus_summary_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (user_id, r.version, r.text, r.model_id, r.prompt_version, r.source_hash,
                         iso_utc(r.created_at), author, r.action, r.based_on))
        current = next((r.version for r in rows if r.is_current), None)
        proposal = next((r.version for r in rows if r.is_proposal), None)
        cur.execute("INSERT INTO plus_summary_users (user_id, current_version, proposal_version, latest_version, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)",
                    (user_id, current, proposal, len(rows), utcnow().isoformat()))

    # -- internals ------------------------------------------------------------------------
    def _fields(self, text: str, model_id: str, prompt_version: str, source_hash: str) -> tuple[str, str, str, str]:
        return (check_text(text, self.max_text_chars), check_meta(model_id, "model_id"),
                check_meta(prompt_version, "prompt_version"), check_meta(source_hash, "source_hash"))

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
        if not 1 <= version <= MAX_VERSION:
            raise UnknownVersionError(f"user {user_id!r} has no version {version}: versions run from 1 to at "
                                      f"most {MAX_VERSION}; see history(user_id)")
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
        stamp = iso_utc(created_at or utcnow())
        text, model_id, prompt_version, source_hash = fields
        cur.execute(f"INSERT INTO plus_summary_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, version, text, model_id, prompt_version, source_hash, stamp, author, action, based_on))
        now = utcnow().isoformat()
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

