"""Fitting a user's context into the summarizer's prompt budget in O(n log n).

Each item (a preference pair or a conversation) is rendered and tokenized once, in one
batch; prefix sums of the item costs then give, by binary search, the longest run of the
most recent items that fits. The estimate is refined once on a window renumbered from 1,
and a count of the chosen prompt checks it; the whole over-long prompt is never counted.
Contexts with more than ``max_items`` items are first cut to the most recent ``max_items``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from itertools import accumulate

from plus_sdk import prompts
from plus_sdk.types import UserContext

#: Default cap on the items (examples + conversations) of one context.
DEFAULT_MAX_CONTEXT_ITEMS = 512
#: Extra items dropped per round when the full count still exceeds the budget.
_CORRECTION_ROUNDS = 8


class ContextTooLargeError(ValueError):
    """A context cannot be made to fit (a single item is over the whole budget, or there is none)."""


def item_texts(context: UserContext, *, labels: bool) -> list[str]:
    """Each item of ``context`` rendered as it appears in the prompt, oldest first."""
    texts = [prompts.render_example(i + 1, ex, labels=labels) for i, ex in enumerate(context.examples)]
    start = len(texts)
    texts += [prompts.render_conversation(start + i + 1, c) for i, c in enumerate(context.conversations)]
    return texts


def keep_recent(context: UserContext, keep: int) -> UserContext:
    """``context`` with only its ``keep`` most recent items (examples are older than conversations)."""
    n_ex, n_conv = len(context.examples), len(context.conversations)
    drop = max(n_ex + n_conv - keep, 0)
    if drop == 0:
        return context
    drop_ex = min(drop, n_ex)
    return context.model_copy(update={"examples": list(context.examples[drop_ex:]),
                                      "conversations": list(context.conversations[drop - drop_ex:])})


def longest_fitting_suffix(costs: Sequence[int], budget: int) -> int:
    """How many of the last items fit when their costs sum to at most ``budget`` (binary search)."""
    suffix = list(accumulate(reversed(costs)))  # suffix[k-1]: cost of the last k items
    return bisect.bisect_right(suffix, budget)


def _estimate_keep(texts: list[str], count_texts: Callable[[list[str]], list[int]], total: int, budget: int) -> int:
    """How many recent items fit, given the exact token count ``total`` of the prompt holding ``texts``."""
    costs = [n + 1 for n in count_texts(texts)]  # +1: the blank line between items
    fixed = total - sum(costs)
    return longest_fitting_suffix(costs, budget - fixed)


def fit_context(context: UserContext, render: Callable[[UserContext], object], count: Callable[[object], int],
                count_texts: Callable[[list[str]], list[int]], budget: int, *, labels: bool,
                ) -> tuple[UserContext, int, int]:
    """The most recent part of ``context`` whose prompt fits ``budget`` tokens.

    ``render`` builds the prompt of a context, ``count`` counts a prompt's tokens,
    ``count_texts`` counts many plain texts at once. Returns (kept context, tokens before, after).
    """
    texts = item_texts(context, labels=labels)
    costs = [n + 1 for n in count_texts(texts)]  # +1: the blank line between items
    fixed = count(render(keep_recent(context, 0)))  # the prompt without any item: small, counted exactly
    original = fixed + sum(costs)  # an estimate: the whole prompt is never counted
    if not texts:
        if fixed <= budget:
            return context, fixed, fixed
        raise ContextTooLargeError(f"the context's guideline and profile alone need {fixed} tokens, more than "
                                   f"max_context_tokens={budget}; shorten them or raise max_context_tokens")
    keep = longest_fitting_suffix(costs, budget - fixed)
    if keep == len(texts):
        tokens = count(render(context))
        if tokens <= budget:
            return context, tokens, tokens
    if 0 < keep < len(texts):  # re-estimate on a window renumbered from 1: item headers shrink
        window = keep_recent(context, min(len(texts), 2 * keep + 8))
        window_tokens = count(render(window))
        keep = _estimate_keep(item_texts(window, labels=labels), count_texts, window_tokens, budget)
    for _ in range(_CORRECTION_ROUNDS):
        if keep == 0:
            break
        trimmed = keep_recent(context, keep)
        tokens = count(render(trimmed))
        if tokens <= budget:
            return trimmed, original, tokens
        keep -= 1
    raise ContextTooLargeError(f"not even the most recent item of the context fits max_context_tokens={budget} "
                               f"(the whole context has {original} tokens); raise max_context_tokens or "
                               "shorten the item")
