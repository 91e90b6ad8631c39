"""Typed records shared by every part of plus-sdk.

Everything that crosses a public boundary (a user's context, a summary, a preference
prediction) is one of these pydantic models, so bad input fails early with an error that
names the offending field.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plus_sdk.files import non_finite_path

Role = Literal["system", "user", "assistant"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Record(BaseModel):
    """Base for all records: unknown fields are rejected, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


class Turn(_Record):
    """One message of a conversation."""

    role: Role = Field(description="Who spoke: 'system', 'user' or 'assistant'.")
    content: str = Field(min_length=1, description="What was said (non-empty).")


class Conversation(_Record):
    """A plain conversation with an assistant, with no preference labels."""

    turns: list[Turn] = Field(min_length=1, description="The messages, in order.")

    @classmethod
    def from_pairs(cls, *pairs: tuple[str, str]) -> Conversation:
        """Build from (user, assistant) text pairs."""
        turns: list[Turn] = []
        for user, assistant in pairs:
            turns += [Turn(role="user", content=user), Turn(role="assistant", content=assistant)]
        return cls(turns=turns)


class PreferenceExample(_Record):
    """A prompt with the response the user chose and the one they rejected."""

    prompt: str = Field(min_length=1, description="What the user asked.")
    chosen: str = Field(min_length=1, description="The response the user preferred.")
    rejected: str = Field(min_length=1, description="The response the user did not prefer.")

    @model_validator(mode="after")
    def _distinct(self) -> PreferenceExample:
        if self.chosen == self.rejected:
            raise ValueError(
                "chosen and rejected are identical; a preference pair needs two different responses"
            )
        return self


class UserContext(_Record):
    """Everything known about one user: the input `c` of the summarizer."""

    user_id: str | None = Field(default=None, description="Optional stable id of the user.")
    examples: list[PreferenceExample] = Field(
        default_factory=list, description="Past (prompt, chosen, rejected) pairs."
    )
    conversations: list[Conversation] = Field(
        default_factory=list, description="Past conversations without labels."
    )
    guidelines: str | None = Field(
        default=None, description="Free text from the user or app designer about what matters."
    )
    profile: dict[str, Any] | None = Field(
        default=None, description="Optional stated profile, e.g. survey scores per attribute."
    )

    @field_validator("profile")
    @classmethod
    def _finite_profile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        where = non_finite_path(value)
        if where is not None:
            raise ValueError(f"profile.{where} is NaN or infinite, which JSON does not allow: give a number or null")
        return value

    @field_validator("guidelines")
    @classmethod
    def _empty_guidelines_to_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _not_empty(self) -> UserContext:
        if not (self.examples or self.conversations or self.guidelines or self.profile):
            raise ValueError(
                "the context is empty: give at least one of examples, conversations, "
                "guidelines or profile"
            )
        return self

    def source_hash(self) -> str:
        """A stable hash of the content (not the user id): equal contexts share summaries."""
        payload = self.model_dump(mode="json", exclude={"user_id"})
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class Summary(_Record):
    """A short text description of a user's preferences (the latent `z` of PLUS)."""

    text: str = Field(min_length=1, description="The summary itself.")
    model_id: str = Field(default="user", description="Which summarizer wrote it ('user' if typed).")
    prompt_version: str = Field(default="", description="Prompt version used to produce it.")
    source_hash: str = Field(default="", description="Hash of the context it was made from.")
    created_at: datetime = Field(default_factory=_utcnow, description="When it was written (UTC).")
    edited_by_user: bool = Field(default=False, description="True once the user changed the text.")

    @classmethod
    def from_text(cls, text: str) -> Summary:
        """A summary a person wrote or edited by hand."""
        return cls(text=text, model_id="user", edited_by_user=True)


#: A judge's verdict: response ``a``, response ``b``, or ``tie`` when the evidence is balanced.
Choice = Literal["a", "b", "tie"]


def choice_for(probability: float) -> Choice:
    """The verdict for P(a ≻ b): ``"tie"`` at exactly 0.5 (equal rewards, a split debiased vote)."""
    if probability == 0.5:
        return "tie"
    return "a" if probability > 0.5 else "b"


class Preference(_Record):
    """The judge's prediction of which of two responses a user prefers.

    ``choice`` is ``"tie"`` when the evidence is balanced: equal rewards, or an LLM judge whose
    two debiased answers disagree (probability exactly 0.5). Check for it before indexing the pair.
    """

    choice: Choice = Field(description="The response predicted to be preferred: 'a', 'b' or 'tie'.")
    probability: float = Field(ge=0.0, le=1.0, description="P(user prefers response a).")
    rewards: tuple[float, float] | None = Field(
        default=None, description="(reward of a, reward of b) when a reward model judged."
    )
    summary: Summary | None = Field(default=None, description="The summary the judge used.")
    method: Literal["reward_model", "llm_judge"] = Field(
        default="reward_model", description="How the preference was decided."
    )

    @property
    def confidence(self) -> float:
        """Probability of the chosen side (0.5 for a tie)."""
        if self.choice == "tie":
            return 0.5
        return self.probability if self.choice == "a" else 1.0 - self.probability


class SamplingConfig(_Record):
    """How to decode text. Greedy by default."""

    max_new_tokens: int = Field(default=96, ge=1, le=4096, description="Upper bound on new tokens.")
    do_sample: bool = Field(default=False, description="Sample instead of greedy decoding.")
    temperature: float = Field(default=1.0, gt=0.0, description="Softmax temperature when sampling.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Seed for reproducible sampling.")


class AdapterCard(_Record):
    """What a saved adapter bundle is: written as ``card.json`` next to the weights."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: str = Field(description="Bundle name, e.g. 'pets-smollm2'.")
    base_model: str = Field(description="Base model the LoRA adapters were trained on.")
    prompt_version: str = Field(description="PROMPT_VERSION of the templates used in training.")
    checked_prompt_versions: list[str] = Field(
        default_factory=list, description="Later PROMPT_VERSIONs the bundle was re-evaluated with and found as "
        "good as with its own (no version warning for those).")
    summary_task: str = Field(default="generic", description="Summarizer prompt family used.")
    context_kind: str = Field(default="pairs", description="'pairs' or 'conversations'.")
    trained: bool = Field(default=False, description="False for an untrained (random) head.")
    method: str = Field(default="summary", description="Reward-model conditioning method.")
    trained_on: str = Field(default="", description="Dataset(s) the bundle was trained on.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Evaluation results.")
    config: dict[str, Any] = Field(default_factory=dict, description="Training configuration.")
    plus_sdk_version: str = Field(default="", description="Library version that wrote it.")
    created_at: datetime = Field(default_factory=_utcnow, description="When it was written (UTC).")
