"""The one small protocol every text engine implements.

The public classes talk to engines only through ``ChatBackend``: a batch of chat
conversations in, one generated text per conversation out. Local (transformers + peft),
OpenAI-compatible and vLLM engines all implement it; heavy imports stay inside them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from plus_sdk.types import SamplingConfig

Messages = list[dict[str, str]]


@runtime_checkable
class ChatBackend(Protocol):
    """Generates one reply per conversation."""

    #: A stable id of the model (and adapter) behind the backend, used in cache keys.
    model_id: str

    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig | None = None) -> list[str]:
        """One generated reply for each conversation, in order (``sampling`` None: ``SamplingConfig()``, greedy)."""
        ...
