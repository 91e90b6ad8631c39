"""plus-sdk: personalize LLM assistants with learned text summaries of each user (PLUS).

Public API: the four classes, the typed records, and the prompt version.
"""

from plus_sdk.generator import PersonalizedGenerator
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.prompts import PROMPT_VERSION
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.store import SummaryStore
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import (
    AdapterCard,
    Conversation,
    Preference,
    PreferenceExample,
    SamplingConfig,
    Summary,
    Turn,
    UserContext,
)
from plus_sdk.version import __version__

__all__ = [
    "PROMPT_VERSION",
    "AdapterCard",
    "Conversation",
    "PersonalizedGenerator",
    "PersonalizedJudge",
    "PersonalizedRewardModel",
    "Preference",
    "PreferenceExample",
    "SamplingConfig",
    "Summarizer",
    "Summary",
    "SummaryStore",
    "Turn",
    "UserContext",
    "__version__",
]
