"""Context kinds: how a record's user context is shown to a summarizer, ICL or VPL.

Every builder writes contexts of preference pairs (``pairs``, the default). Two other kinds
are derived from them, for any dataset:

* ``conversations`` - conversation-only: each past pair becomes a plain conversation of the
  request and the *chosen* reply; the rejected reply and every label are dropped;
* ``guideline`` - guideline + pairs: the pairs, plus a system designer's note naming the
  attributes users of this dataset tend to care about (``GUIDELINES``).
"""

from __future__ import annotations

from typing import Literal

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.types import Conversation, UserContext

ContextKind = Literal["pairs", "conversations", "guideline"]
CONTEXT_KINDS: tuple[str, ...] = ("pairs", "conversations", "guideline")

#: what an app designer might tell the summarizer about a dataset's users (names attributes only)
GUIDELINES: dict[str, str] = {
    "pets": (
        "People who ask this assistant about pets want different things: some want practical, "
        "helpful facts even when the facts are grim, others want gentle, harmless replies even "
        "when those say little."
    ),
    "uf-p2": (
        "Users of this assistant differ in what they value most in a reply: some care most about "
        "helpfulness, others about honesty."
    ),
    "uf-p4": (
        "Users of this assistant differ in what they value most in a reply: helpfulness, honesty, "
        "following the instructions closely, or truthfulness."
    ),
    "prism": (
        "Users of this assistant weigh replies differently by their values, creativity, fluency, "
        "factuality, diversity of viewpoints, safety, personalisation and helpfulness."
    ),
}
GUIDELINES["pets-ood"] = GUIDELINES["pets"]
GUIDELINES["styles"] = (
    "Users of this assistant differ in how they like replies written: short or thorough, formal or "
    "casual, as lists or as prose, with or without code, with or without safety warnings, for "
    "beginners or for experts, with concrete examples or general principles, with figures or "
    "without, and whether the assistant should ask a question back before answering."
)


def guideline_for(dataset: str) -> str:
    """The designer guideline of a dataset; ``KeyError`` names the known datasets."""
    try:
        return GUIDELINES[dataset]
    except KeyError:
        raise KeyError(
            f"no guideline for dataset {dataset!r}; known: {', '.join(sorted(GUIDELINES))} "
            "(or pass guideline=... yourself)"
        ) from None


def as_conversations(context: UserContext) -> UserContext:
    """Conversation-only view: chosen replies as plain conversations, no rejected replies."""
    conversations = [Conversation.from_pairs((e.prompt, e.chosen)) for e in context.examples]
    return context.model_copy(update={"examples": [], "conversations": list(context.conversations) + conversations})


def with_guideline(context: UserContext, guideline: str) -> UserContext:
    """The same context with a designer guideline added (pairs kept)."""
    if not guideline.strip():
        raise ValueError("guideline is empty; give the attributes users care about")
    return context.model_copy(update={"guidelines": guideline.strip()})


def apply_context_kind(
    records: list[TrainingRecord], kind: str, *, guideline: str | None = None
) -> list[TrainingRecord]:
    """New records whose contexts are of ``kind``; ``meta["context_kind"]`` records it."""
    if kind not in CONTEXT_KINDS:
        raise ValueError(f"context kind {kind!r} is unknown; use one of {', '.join(CONTEXT_KINDS)}")
    out = []
    for record in records:
        context = record.context
        if kind == "conversations":
            context = as_conversations(context)
        elif kind == "guideline":
            context = with_guideline(context, guideline or guideline_for(record.dataset))
        meta = {**record.meta, "context_kind": kind}
        out.append(record.model_copy(update={"context": context, "meta": meta}))
    return out
