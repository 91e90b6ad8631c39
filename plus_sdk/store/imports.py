"""Checks an import must pass before any row is written: the file's schema, and each user's history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plus_sdk.store.base import SummaryVersion
from plus_sdk.store.errors import ImportFormatError
from plus_sdk.store.migrations import SCHEMA_VERSION


def check_export_schema(version: Any) -> int:
    """The header's ``schema_version`` if this code can read it, else ``ImportFormatError``."""
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise ImportFormatError(f"header schema_version={version!r}: this plus-sdk reads exports of schema "
                                f"1..{SCHEMA_VERSION}; export again with this version, or upgrade plus-sdk")
    return version


def check_imported_history(user_id: str, rows: Sequence[SummaryVersion]) -> None:
    """One user's rows (sorted by version): exactly one current version, at most one proposal
    (not the current one), and every ``based_on`` naming an earlier version of the same user."""
    currents = [r.version for r in rows if r.is_current]
    proposals = [r.version for r in rows if r.is_proposal]
    if len(currents) != 1:
        raise ImportFormatError(f"user {user_id!r}: needs exactly one version with is_current=true, got "
                                f"{len(currents)}")
    if len(proposals) > 1 or proposals == currents:
        raise ImportFormatError(f"user {user_id!r}: at most one proposal, and not the current version")
    for row in rows:
        if row.based_on is not None and not 1 <= row.based_on < row.version:
            raise ImportFormatError(f"user {user_id!r} version {row.version}: based_on={row.based_on} must name "
                                    "an earlier version of the same user")
