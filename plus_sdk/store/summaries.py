"""Summarizing with a store: reuse a user's stored summary, record fresh ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import (
    UnknownUserError,
)
from plus_sdk.types import Summary, UserContext


class StoreSummarizer(Protocol):
    """What the store needs of a summarizer: its ``store`` slot and batched summarizing."""

    store: SummaryStore | None

    def summarize_batch(self, contexts: Sequence[UserContext], **options: Any) -> list[Summary]: ...

def attach_store(summarizer: StoreSummarizer | None, store: SummaryStore | None) -> None:
    """Give ``summarizer`` the ``store`` a judge or generator was built with."""
    if store is None:
        return
    if summarizer is None:
        raise ValueError("store= needs a summarizer: pass summarizer=Summarizer(...) as well")
    if summarizer.store is not None and summarizer.store is not store:
        raise ValueError("the summarizer already has a different store; give the same store or none")
    summarizer.store = store


def forget_user(store: SummaryStore, user_id: str, summarizers: Sequence[Any] = ()) -> int:
    """Delete the user from ``store`` and their summaries from each summarizer's ``SummaryCache``
    (memory and disk), matched by the source hashes of the user's stored versions."""
    hashes = {row.source_hash for row in store.history(user_id) if row.source_hash}
    deleted = store.delete(user_id)
    seen: set[int] = set()
    for summarizer in summarizers:
        cache = getattr(summarizer, "cache", None)
        if cache is not None and id(cache) not in seen:
            seen.add(id(cache))
            cache.forget(hashes)
    return deleted


def summarize_with_store(summarizer: StoreSummarizer, store: SummaryStore | None,
                         contexts: Sequence[UserContext | None], user_ids: Sequence[str | None], *,
                         refresh: bool = False, **generate_options: Any) -> list[Summary]:
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

