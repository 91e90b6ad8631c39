"""The hand-written material behind the ``styles`` dataset, and its validation.

Every prompt of the dataset is one ``StyleItem`` in a JSON file per domain under
``plus_sdk/training/data/styles/``. An item holds the pieces a response is composed from: the
core answer in two levels (beginner / expert) and two tones (formal / casual), extra detail, a
concrete example and an abstract principle, a sentence with numbers and the same point without
them, a safety caveat, a clarifying question, and (for prompts where it fits) a short code
snippet. ``styles.py`` composes responses that differ on exactly one axis from these pieces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: folder of the per-domain JSON files shipped with the package
CONTENT_DIR = Path(__file__).with_name("styles")

_DIGIT = re.compile(r"\d")
_CONTRACTION = re.compile(r"\b\w+'(s|re|ll|ve|d|t|m)\b", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToneVariants(_Strict):
    """The same answer in a formal and in a casual register."""

    formal: str = Field(min_length=20, description="Formal register: no contractions, no slang.")
    casual: str = Field(min_length=20, description="Casual, chatty register.")

    @model_validator(mode="after")
    def _tones_differ(self) -> ToneVariants:
        if self.formal == self.casual:
            raise ValueError("formal and casual must be different texts")
        if _CONTRACTION.search(self.formal.replace("’", "'")):
            raise ValueError(f"formal text uses a contraction: {self.formal!r}")
        return self


class LevelVariants(_Strict):
    """The core answer for a beginner and for an expert, each in both tones."""

    beginner: ToneVariants = Field(description="Plain words, jargon explained.")
    expert: ToneVariants = Field(description="Terse and technical, assumes background.")


class StyleItem(_Strict):
    """One prompt and the pieces its responses are composed from."""

    id: str = Field(pattern=r"^[a-z]+(-[a-z]+)*-\d{2,3}$", description="'<domain>-NN', unique.")
    prompt: str = Field(min_length=10, description="The user's request.")
    core: LevelVariants = Field(description="The answer itself (1-2 sentences per variant).")
    detail: list[str] = Field(min_length=2, max_length=4, description="Extra sentences a detailed answer adds.")
    example: str = Field(min_length=20, description="One concrete, specific example sentence.")
    principle: str = Field(min_length=20, description="The same point as a general, abstract principle.")
    numbers: str = Field(min_length=20, description="A sentence that cites specific figures.")
    qualitative: str = Field(min_length=20, description="The same point as `numbers`, with no figures.")
    caveat: str = Field(min_length=20, description="A safety or caution sentence.")
    question: str = Field(min_length=10, description="A clarifying question to ask before answering.")
    code: str | None = Field(default=None, description="A short code snippet that helps, or null.")
    code_lang: str | None = Field(default=None, description="Language of `code` (python, bash, sql, ...).")

    @field_validator("question")
    @classmethod
    def _is_question(cls, value: str) -> str:
        if not value.endswith("?"):
            raise ValueError("question must end with '?'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StyleItem:
        if not _DIGIT.search(self.numbers):
            raise ValueError("numbers must contain at least one digit")
        if _DIGIT.search(self.qualitative):
            raise ValueError("qualitative must contain no digit")
        if (self.code is None) != (self.code_lang is None):
            raise ValueError("code and code_lang go together (both set or both null)")
        if self.code is not None and "```" in self.code:
            raise ValueError("code must be the bare snippet, without ``` fences")
        return self


class DomainFile(_Strict):
    """One JSON file: a domain and its items."""

    domain: str = Field(pattern=r"^[a-z]+(-[a-z]+)*$")
    items: list[StyleItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_match_domain(self) -> DomainFile:
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        for item_id in ids:
            if not item_id.startswith(self.domain + "-"):
                raise ValueError(f"item id {item_id!r} must start with '{self.domain}-'")
        return self


def load_domain(path: str | Path) -> DomainFile:
    """Read and validate one domain file."""
    return DomainFile.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def load_all(folder: str | Path = CONTENT_DIR) -> list[DomainFile]:
    """Every domain file of ``folder``, sorted by name."""
    return [load_domain(path) for path in sorted(Path(folder).glob("*.json"))]


