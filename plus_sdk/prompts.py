"""Every prompt template of plus-sdk, and the summary extractor.

Nothing else in the package builds prompt text: the summarizer, reward model, judge,
generator and every training baseline get their messages from here. ``PROMPT_VERSION`` versions
the templates trained weights and cached summaries depend on (summarizer, reward-model inputs);
the generator's and the LLM judge's prompts feed no trained weight and no summary cache, so changing them
does not bump it (a bump would make every shipped bundle warn and every cached summary miss).
Messages are lists of ``{"role", "content"}`` dicts, the format of chat templates and of
OpenAI-compatible servers.
"""

from __future__ import annotations

import re
from typing import Literal

from plus_sdk.types import Conversation, PreferenceExample, UserContext

#: Bumped whenever a summarizer or reward-model template changes; stored with every summary and adapter card.
PROMPT_VERSION = "3"
# History: "2" (2026-11-27) asks the Pets summarizer for one sentence naming the favoured
# animal; untrained SmolLM2 names the right animal first for 72.5 % of 40 held-out users,
# against 47.5 % with version 1's two-animal question. "3" (2026-11-29) drops every copyable
# placeholder (v2's "such as 'The user prefers X.'" was copied verbatim by untrained models).
# The Pets question now gives a sentence stem instead, which keeps the trained Pets bundle at
# 95 % right animal on 20 held-out users, as with v2 ("answer with a sentence that names it"
# fell to 70 %). The generic prompt names the dimensions replies differ on (subject, length,
# tone, layout, level, examples, figures, warnings, code, questions back).
# 2026-12-03: the generator prompt puts the summary in the system turn as a description of the reader
# (small models answered "The user prefers the sea." when it sat after the request); not a version bump.

#: Word budget of a summary (the paper asks for under 50 words).
SUMMARY_MAX_WORDS = 50
#: The marker the summarizer is asked to start its answer with.
SUMMARY_MARKER = "##Summary"
#: Used when a summarizer produced nothing usable.
EMPTY_SUMMARY = "No clear preference could be inferred for this user."

SummaryTask = Literal["generic", "pets", "ultrafeedback", "prism"]
SUMMARY_TASKS: tuple[str, ...] = ("generic", "pets", "ultrafeedback", "prism")

Messages = list[dict[str, str]]

# ---------------------------------------------------------------------------------------
# Rendering a user's context as text
# ---------------------------------------------------------------------------------------


def render_example(index: int, example: PreferenceExample, *, labels: bool = True) -> str:
    """One past preference pair; with ``labels=False`` only the chosen reply is shown."""
    if not labels:
        return f"### Past conversation {index}\nUser: {example.prompt}\nAssistant: {example.chosen}"
    return (
        f"### Past conversation {index}\n"
        f"Request: {example.prompt}\n"
        f"Reply the user picked: {example.chosen}\n"
        f"Reply the user turned down: {example.rejected}"
    )


def render_conversation(index: int, conversation: Conversation) -> str:
    """One past conversation without labels."""
    lines = [f"### Past conversation {index}"]
    for turn in conversation.turns:
        lines.append(f"{turn.role.capitalize()}: {turn.content}")
    return "\n".join(lines)


def render_profile(profile: dict[str, object]) -> str:
    """A stated profile (e.g. survey scores) as one line."""
    return "; ".join(f"{key}: {value}" for key, value in profile.items())


def render_context(context: UserContext, *, labels: bool = True) -> str:
    """The whole context: guideline, profile, pairs and conversations, oldest first."""
    parts: list[str] = []
    if context.guidelines:
        parts.append(f"Note on what users of this assistant tend to care about: {context.guidelines}")
    if context.profile:
        parts.append(f"What the user said about themselves: {render_profile(context.profile)}")
    index = 1
    for example in context.examples:
        parts.append(render_example(index, example, labels=labels))
        index += 1
    for conversation in context.conversations:
        parts.append(render_conversation(index, conversation))
        index += 1
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------
# Summarizer
# ---------------------------------------------------------------------------------------

_TASK_INTRO: dict[str, str] = {
    "generic": (
        "You are helping an AI assistant get to know one of its users. Below is what we "
        "know about this user from earlier interactions."
    ),
    "pets": (
        "A user keeps asking an AI assistant to talk about one kind of pet. Below are the "
        "user's earlier requests with the replies they picked and the replies they turned down."
    ),
    "ultrafeedback": (
        "To tell you more about me, here are examples from my earlier conversations with an "
        "AI assistant: each shows my request, the reply I picked and the reply I turned down."
    ),
    "prism": (
        "To tell you more about me, here are turns from my earlier conversations with AI "
        "assistants: each shows what I said, the reply I picked and a reply I turned down."
    ),
}

_TASK_ASK: dict[str, str] = {
    "generic": (
        "Compare the replies this user picked with the ones they turned down, and say in one "
        "or two sentences what the picked replies consistently do better for this user: the "
        "subject they favour, or the length, tone, layout, level of expertise, examples, "
        "figures, warnings, code or questions back that they like. Name only what the "
        "evidence shows, and do not list the topics of the requests."
    ),
    "pets": (
        "From the replies the user picked, which animal does this user favour? Write one short "
        "sentence that starts with 'The user prefers' and names that animal."
    ),
    "ultrafeedback": (
        "Describe what I value in a reply, judging from what the picked replies do better than "
        "the turned-down ones (for example how helpful, honest, truthful or faithful to the "
        "instructions they are). Do not describe the topics of the conversations."
    ),
    "prism": (
        "Describe what I value in a reply, judging from what the picked replies do better than "
        "the turned-down ones. Do not describe the topics of the conversations."
    ),
}


def summarizer_messages(
    context: UserContext,
    task: str = "generic",
    *,
    max_words: int = SUMMARY_MAX_WORDS,
    context_kind: Literal["pairs", "conversations"] = "pairs",
) -> Messages:
    """The summarizer's prompt for one user.

    ``context_kind="conversations"`` hides the rejected replies (the paper's
    conversation-only setting); a guideline or profile in the context is always shown.
    """
    if task not in _TASK_INTRO:
        raise ValueError(f"task={task!r} is unknown; use one of {', '.join(SUMMARY_TASKS)}")
    labels = context_kind == "pairs"
    intro = _TASK_INTRO[task]
    if not labels:
        intro = (
            "Below are earlier conversations between a user and an AI assistant. They carry no "
            "ratings: infer the user's preferences from what they asked and how they reacted."
        )
    ask = _TASK_ASK[task]
    body = (
        f"{intro}\n\n{render_context(context, labels=labels)}\n\n{ask} "
        f"Keep it under {max_words} words. Begin your answer with {SUMMARY_MARKER}"
    )
    return [{"role": "user", "content": body}]


_MARKER_RE = re.compile(r"#+\s*summary\s*#*\s*:?", re.IGNORECASE)
#: Public name of the marker pattern (the summarizer stops generating on it).
SUMMARY_MARKER_RE = _MARKER_RE


def extract_summary(text: str, *, max_words: int = 2 * SUMMARY_MAX_WORDS, max_chars: int = 1200) -> str:
    """The summary in a generated text: what follows the last ``##Summary`` marker.

    Robust when the marker is missing (the whole text is used), when the model repeats it,
    or when it adds a colon. The result is capped at ``max_words`` words and ``max_chars``
    characters; it is empty if the model wrote nothing after the marker, or if what it wrote is
    an unfilled template slot (``is_placeholder``): callers then record the empty summary.
    """
    matches = list(_MARKER_RE.finditer(text))
    if matches:
        tail = text[matches[-1].end():]
        if not tail.strip():  # a marker at the very end: fall back to what came before it
            tail = text[: matches[-1].start()]
        text = tail
    text = _MARKER_RE.sub(" ", text)
    words = text.split()
    clipped = " ".join(words[:max_words])[:max_chars].strip()
    return "" if is_placeholder(clipped) else clipped


#: template slots a model may copy instead of filling them: a lone capital X, [..], <..>, {..}, ___
_PLACEHOLDER_RE = re.compile(r"(?<![\w'-])X(?![\w'-])|\[[^\]]*\]|<[^>]*>|\{[^}]*\}|_{3,}")


def is_placeholder(text: str) -> bool:
    """True when a summary is (or holds) an unfilled template slot, e.g. 'The user prefers X.'."""
    return bool(_PLACEHOLDER_RE.search(text))


# ---------------------------------------------------------------------------------------
# Reward-model inputs: the response is always the assistant turn
# ---------------------------------------------------------------------------------------


def summary_condition(summary_text: str) -> str:
    """The conditioning turn that carries a summary into the reward model."""
    return (
        f"Here is a summary of my preferences from earlier conversations: {summary_text}\n"
        "Keep it in mind and personalize your answer to me."
    )


def oracle_condition(description: str) -> str:
    """The conditioning turn of an oracle reward model (the true description of the user)."""
    return f"About me: {description}\nKeep this in mind and personalize your answer to me."


def reward_messages(prompt: str, response: str, *, condition: str | None = None) -> Messages:
    """Messages scored by a reward model: [condition + prompt] as the user, then the response."""
    user = f"{condition}\n\n{prompt}" if condition else prompt
    return [{"role": "user", "content": user}, {"role": "assistant", "content": response}]


def icl_condition(context: UserContext, *, labels: bool = True) -> str:
    """The verbatim context used by in-context-learning reward models."""
    return (
        "To tell you more about me, here are examples from my earlier conversations. "
        "Use them to learn what I prefer.\n\n"
        f"{render_context(context, labels=labels)}\n\nNow, a new request:"
    )


# ---------------------------------------------------------------------------------------
# LLM-as-judge and personalized generation (zero-shot personalization of any model)
# ---------------------------------------------------------------------------------------

JUDGE_SYSTEM = "You are a careful assistant who predicts which reply a user would prefer."


def judge_messages(prompt: str, option_1: str, option_2: str, summary_text: str | None = None) -> Messages:
    """Ask a model which of two replies the user prefers; ``summary_text`` personalizes it."""
    body = (
        f"A user sent this to an AI assistant:\n{prompt}\n\n"
        f"Option 1:\n{option_1}\n\nOption 2:\n{option_2}\n\n"
    )
    if summary_text:
        body += (
            f"What we know about this user's preferences: {summary_text}\n\n"
            "Using what you know about this user, decide which option they would prefer. "
        )
    else:
        body += "Decide which option the user would prefer. "
    body += "Answer with exactly 'Option 1' or 'Option 2'."
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": body}]


def judge_messages_system(prompt: str, option_1: str, option_2: str, summary_text: str | None = None) -> Messages:
    """Like ``judge_messages``, but the summary goes into the system message.

    Small models tend to repeat a summary placed just before the question instead of
    answering it; with the summary in the system turn the user turn ends on the question.
    """
    system = JUDGE_SYSTEM
    if summary_text:
        system += f" Here is what is known about this user's preferences: {summary_text}"
    body = (
        f"The user asked: {prompt}\n\nOption 1: {option_1}\n\nOption 2: {option_2}\n\n"
        "Which option would the user prefer? Answer with exactly 'Option 1' or 'Option 2'."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


_OPTION_RE = re.compile(r"option\s*[:#]?\s*([12])", re.IGNORECASE)


def parse_judge_answer(text: str) -> Literal[1, 2] | None:
    """Which option a judge picked, or None if the answer names neither or both."""
    found = {int(m.group(1)) for m in _OPTION_RE.finditer(text)}
    if len(found) == 1:
        return 1 if 1 in found else 2
    stripped = text.strip().strip(".:*() ")
    if stripped in {"1", "2"}:
        return 1 if stripped == "1" else 2
    if len(found) == 2:  # both named: trust the first mention
        first = _OPTION_RE.search(text)
        assert first is not None
        return 1 if first.group(1) == "1" else 2
    return None


GENERATION_SYSTEM = "You are a helpful assistant. Keep your answer under {max_words} words."
#: The summary describes the reader in the system turn; the user turn is the request alone, so the last thing
#: the model reads is what it must answer (small models copy a description placed right before the question).
GENERATION_READER = (
    " Here is a description of the person you are answering: {summary}\n"
    "Answer their request in the way that suits this person. Do not repeat or mention the description; "
    "reply only with your answer to the request."
)


def generation_messages(prompt: str, summary_text: str | None = None, *, max_words: int = 100) -> Messages:
    """A reply to ``prompt``; personalized when ``summary_text`` is given (it describes the reader, in the
    system turn, and is never the thing to answer)."""
    system = GENERATION_SYSTEM.format(max_words=max_words)
    if summary_text:
        system += GENERATION_READER.format(summary=summary_text.strip())
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


def clip_words(text: str, max_words: int) -> str:
    """``text`` cut to ``max_words`` words, at the last sentence end within the budget when there is one."""
    words = text.split()
    if len(words) <= max_words:
        return text.strip()
    clipped = " ".join(words[:max_words])
    end = max(clipped.rfind(". "), clipped.rfind("! "), clipped.rfind("? "), clipped.rfind("\n"))
    if clipped[-1:] in ".!?":
        return clipped
    return clipped[: end + 1].strip() if end > len(clipped) // 2 else clipped

