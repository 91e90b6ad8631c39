"""The summary store's shared parts: limits, the ``SummaryVersion`` record, input validation,
and the ``StoreBackend`` protocol a database implements."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from plus_sdk.store.errors import (
    EmptySummaryError,
    InvalidTextError,
    InvalidUserIdError,
    SummaryTooLargeError,
)
from plus_sdk.types import Summary

#: Environment variable naming the default database (a path or ``sqlite:///path``).
STORE_ENV = "PLUS_SUMMARY_STORE"
#: Longest accepted user id.
MAX_USER_ID_CHARS = 128
#: Default cap on a summary's text, in characters (a PLUS summary is ~50 words).
DEFAULT_MAX_TEXT_CHARS = 8_000
#: Cap on metadata strings (model id, prompt version, source hash).
MAX_META_CHARS = 512
#: Largest version number (SQLite's INTEGER is 64-bit signed).
MAX_VERSION = 2**63 - 1
#: First line of an export file.
EXPORT_FORMAT = "plus-summaries"

_USER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]*")  # used with fullmatch: no trailing newline
#: C0 control characters (and DEL) refused in stored text; newline, tab and carriage return are allowed.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Author = Literal["model", "user", "import"]
Action = Literal["put", "edit", "revert", "accept", "proposal"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SummaryVersion(BaseModel):
    """One stored version of a user's summary (a row of the history)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(description="The user this summary describes.")
    version: int = Field(ge=1, le=MAX_VERSION, description="1, 2, 3, ... per user, in the order written.")
    text: str = Field(min_length=1, description="The summary text.")
    model_id: str = Field(default="user", description="Summarizer id that wrote it, 'user' for a hand edit.")
    prompt_version: str = Field(default="", description="PROMPT_VERSION the summarizer used.")
    source_hash: str = Field(default="", description="UserContext.source_hash() of the context it describes.")
    created_at: datetime = Field(default_factory=utcnow, description="When this version was written (UTC).")
    author: Author = Field(description="'model' (a summarizer wrote it), 'user' (the user wrote or chose it) "
                                       "or 'import' (loaded from an export: it does not count as the user's edit).")
    action: Action = Field(description="What created it: put, edit, revert, accept or proposal.")
    based_on: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                 description="Version a revert or accepted proposal copied.")
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
    if not _USER_ID_RE.fullmatch(user_id):
        raise InvalidUserIdError(f"user_id {user_id!r} is not allowed: {rule}")
    return user_id


def check_no_control(value: str, field: str) -> str:
    """``value`` when it holds no control character other than newline, tab and carriage return, else
    ``InvalidTextError`` naming the field, the character and its position (the same rule on every backend)."""
    bad = _CONTROL_RE.search(value)
    if bad is not None:
        raise InvalidTextError(f"{field} contains the control character U+{ord(bad.group()):04X} at position "
                               f"{bad.start()}: remove it (newlines and tabs are allowed)")
    return value


def check_text(text: Any, limit: int, field: str = "text") -> str:
    if not isinstance(text, str):
        raise EmptySummaryError(f"{field} must be a string, not {type(text).__name__}")
    check_no_control(text, field)
    if not text.strip():
        raise EmptySummaryError(f"{field} is empty: a summary needs some text")
    if len(text) > limit:
        raise SummaryTooLargeError(f"{field} has {len(text)} characters, more than the limit {limit}: shorten it "
                                   "or open the store with a larger max_text_chars")
    return text


def check_meta(value: str, field: str) -> str:
    if len(value) > MAX_META_CHARS:
        raise SummaryTooLargeError(f"{field} has {len(value)} characters, more than {MAX_META_CHARS}")
    return check_no_control(value, field)



def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()



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


@contextlib.contextmanager
def committed(execute: Callable[[str], Any], errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """COMMIT when the block ends normally; on any exception ROLLBACK (ignoring ``errors`` of the
    rollback itself) and re-raise. Both backends end their write transactions this way."""
    try:
        yield
        execute("COMMIT")
    except BaseException:
        with contextlib.suppress(*errors):
            execute("ROLLBACK")
        raise
