"""What callers hand the public classes, checked and turned into summaries.

``PersonalizedJudge``, ``PersonalizedGenerator`` (sync and async methods) and the server all
accept a user as a ``UserContext`` (or its dict), a ``Summary``, a summary text, or ``None``;
this module is the one place that validates those inputs and resolves them to summaries. It sits
below the classes: what it needs of a summarizer is the ``BatchSummarizer`` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from plus_sdk.types import Summary, UserContext


class BatchSummarizer(Protocol):
    """What resolving needs of a summarizer (``plus_sdk.summarizer.Summarizer`` is one)."""

    def summarize_batch(self, contexts: Sequence[UserContext | dict[str, Any]], *,
                        user_ids: Sequence[str | None] | None = None, refresh: bool = False) -> list[Summary]: ...

    async def asummarize_batch(self, contexts: Sequence[UserContext | dict[str, Any]]) -> list[Summary]: ...


def as_context(value: UserContext | dict[str, Any]) -> UserContext:
    """Validate a dict into a ``UserContext`` (a ``UserContext`` passes through)."""
    return value if isinstance(value, UserContext) else UserContext.model_validate(value)


def check_item(prompt: str, a: str, b: str) -> None:
    """A judge item must have a prompt and two different, non-empty replies."""
    for name, value in (("prompt", prompt), ("a", a), ("b", b)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string")
    if a.strip() == b.strip():
        raise ValueError("responses a and b are identical; the judge needs two different responses")


ContextOrSummary = UserContext | Summary | dict[str, Any] | str | None
#: What a reward model is conditioned on: a summary record, its text, or nothing.
SummaryLike = Summary | str | None


def summary_text(summary: SummaryLike) -> str | None:
    """The text of a summary given as a record, a string, or nothing (blank text counts as nothing)."""
    if summary is None:
        return None
    return summary.text if isinstance(summary, Summary) else (summary.strip() or None)


def resolve_summaries(values: Sequence[ContextOrSummary], summarizer: BatchSummarizer | None, *,
                      user_ids: Sequence[str | None] | None = None, refresh: bool = False,
                      ) -> list[Summary | None]:
    """Turn what a caller passed into summaries, summarizing contexts in one batch.

    A ``Summary`` is used as is (e.g. one the user edited), a ``str`` is a summary text
    written by hand, a ``UserContext`` or dict is summarized, ``None`` means unpersonalized.
    With ``user_ids`` (one per value), contexts and ``None`` values of rows with a user id go
    through the summarizer's ``SummaryStore`` (``None`` then means "the stored summary").
    """
    if user_ids is not None and len(user_ids) != len(values):
        raise ValueError(f"got {len(values)} contexts but {len(user_ids)} user_ids; give one per context")
    out: list[Summary | None] = [None] * len(values)
    pending: list[tuple[int, UserContext | None]] = []
    for i, value in enumerate(values):
        if value is None and user_ids is not None and user_ids[i] is not None:
            pending.append((i, None))
        elif value is None or isinstance(value, Summary):
            out[i] = value
        elif isinstance(value, str):
            if not value.strip():
                raise ValueError("summary text is empty: pass a non-empty summary, a UserContext or None")
            out[i] = Summary.from_text(value)
        elif isinstance(value, (UserContext, dict)):
            pending.append((i, as_context(value)))
        else:
            raise TypeError(
                f"context must be a UserContext, dict, Summary, str or None, not {type(value).__name__}"
            )
    if pending:
        if summarizer is None:
            raise ValueError("a context was given but this object has no summarizer; pass a Summary instead")
        if user_ids is None:
            summaries = summarizer.summarize_batch([c for _, c in pending])  # type: ignore[misc]
        else:
            summaries = summarizer.summarize_batch([c for _, c in pending], user_ids=[user_ids[i] for i, _ in pending],
                                                   refresh=refresh)  # type: ignore[misc]
        for (i, _), summary in zip(pending, summaries, strict=False):
            out[i] = summary
    return out




async def aresolve_summaries(values: Sequence[ContextOrSummary], summarizer: BatchSummarizer | None, *,
                             user_ids: Sequence[str | None] | None = None,
                             refresh: bool = False) -> list[Summary | None]:
    """``resolve_summaries`` with the summarizing done by ``summarizer.asummarize_batch``."""
    if user_ids is not None:  # the store is synchronous: keep it off the event loop
        return await asyncio.to_thread(resolve_summaries, values, summarizer, user_ids=user_ids, refresh=refresh)
    rows = [i for i, v in enumerate(values) if isinstance(v, (UserContext, dict))]
    resolved = list(values)
    if rows and summarizer is not None:
        summaries = await summarizer.asummarize_batch([values[i] for i in rows])  # type: ignore[misc]
        for i, summary in zip(rows, summaries, strict=True):
            resolved[i] = summary
    return resolve_summaries(resolved, summarizer)  # only summaries and texts left: no model work
