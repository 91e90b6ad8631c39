"""PRISM: real users' choices between model replies, with their stated preferences.

Upstream files (``HannahRoseKirk/prism-alignment``, or a local folder holding them):

* ``survey.jsonl`` - one row per user: ``user_id``, ``stated_prefs`` (0-100 scores for values,
  creativity, fluency, factuality, diversity, safety, personalisation, helpfulness), ...;
* ``conversations.jsonl`` - one row per conversation: ``conversation_id``, ``user_id``,
  ``conversation_type``, ``generated_datetime`` and ``conversation_history``, a list of
  ``{turn, role ("user" | "model"), content, model_name, score, if_chosen, within_turn_id}``;
* ``utterances.jsonl`` - one row per model reply (``conversation_id``, ``turn``, ``user_prompt``,
  ``model_response``, ``model_name``, ``score``, ``if_chosen``, ...). Read only when
  ``conversations.jsonl`` is absent, to rebuild the conversations from it.

Records: in every turn the reply with ``if_chosen`` true is the chosen one and each other reply
of the turn a rejected one (turn 0 has up to four replies, later turns two); the prompt is the
dialogue so far (earlier user messages and *chosen* replies, then the new user message).
Users are kept when they are in the survey with all eight stated preferences and have at least
``min_conversations`` (6) usable conversations. A seeded share of them (308 of 1,308 in the
paper) is held out as unseen users (``test``); the others are the seen users (``train``), of
whom ``seen_test_conversations`` last conversations can also go to ``test``
(``unseen_split="ood"`` then puts the unseen users in ``ood``; ``preset="table6"`` sets both). The context of a
target is ``n_context`` (3) pairs from *other* conversations of the same user (for held-out
conversations of seen users: from their training conversations), at most one per turn.
``stated_prefs`` are kept in ``meta`` and written out as the oracle description.

Upstream quirks, handled on purpose:

* an empty text is stored as the literal string ``"EMPTY STRING"``: such a reply is no reply
  (never paired), and a turn whose user message is empty is malformed;
* at later turns the two replies can be the same text, and then both are marked chosen: the turn
  keeps one copy as its chosen reply (so the dialogue goes on) but yields no pair;
* at turn 0 upstream marks a random one of the replies tied on the top score as chosen: with
  ``tied_scores="drop"`` (default) a reply scored the same as the chosen one is not paired, at
  every turn (a later turn's two replies can tie too);
* a user may choose a real reply over an empty one (or the empty one): such a pair is not made
  unless ``empty_reply_text`` gives a text to show for the empty reply; a turn whose chosen reply
  is empty is then no usable turn (``turns_with_an_empty_chosen_reply``) and ends the conversation;
* ``utterances.jsonl`` has no dates: rebuilt conversations are in file order, so holding out
  "the last" conversations (``seen_test_conversations``) needs ``conversations.jsonl``.

A turn without exactly one user message and one chosen reply is skipped (and the later turns of
that conversation with it, their history being broken); rows that are not shaped as above are
skipped. Every skip is counted in the build report.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm.auto import tqdm

from plus_sdk.training.data.prism_config import PrismConfig, preset_report
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.result import BuildResult, cap
from plus_sdk.training.data.upstream import SourceError, iter_rows
from plus_sdk.types import PreferenceExample, UserContext

logger = logging.getLogger(__name__)

STATED_PREFS: tuple[str, ...] = (
    "values",
    "creativity",
    "fluency",
    "factuality",
    "diversity",
    "safety",
    "personalisation",
    "helpfulness",
)
#: how PRISM stores an empty text
EMPTY_STRING = "EMPTY STRING"


@dataclass(frozen=True)
class _Reply:
    content: str
    score: float | None
    model_name: str | None


@dataclass
class _Turn:
    index: int
    user: str
    chosen: _Reply
    rejected: list[_Reply]
    tied: list[_Reply] = field(default_factory=list)


@dataclass
class _Conversation:
    conversation_id: str
    user_id: str
    conversation_type: str
    when: str
    order: int
    turns: list[_Turn] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    conversation: _Conversation
    turn: _Turn
    rejected: _Reply


def oracle_text(stated_prefs: dict[str, float]) -> str:
    """The oracle description of a PRISM user from their stated-preference scores."""
    ranked = sorted(stated_prefs.items(), key=lambda kv: (-kv[1], kv[0]))
    scores = ", ".join(f"{name} {value:g}" for name, value in ranked)
    return f"How much each quality of a reply matters to this user (0-100, higher matters more): {scores}."


def _local_file(source: str, name: str) -> Path | None:
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return None
    path = folder / f"{name}.jsonl"
    return path if path.exists() else None


def _rows(config: PrismConfig, name: str) -> Any:
    folder = Path(config.source).expanduser()
    if folder.is_dir():
        path = _local_file(config.source, name)
        if path is None:
            raise SourceError(
                f"{folder} has no {name}.jsonl (the PRISM folder needs survey.jsonl and conversations.jsonl)"
            )
        return iter_rows(path)
    return iter_rows(config.source, name=name)


def load_survey(config: PrismConfig, skipped: Counter[str]) -> dict[str, dict[str, float]]:
    """user_id -> stated-preference scores, for survey rows with all eight scores."""
    users: dict[str, dict[str, float]] = {}
    for row in _rows(config, "survey"):
        prefs = row.get("stated_prefs") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("user_id"), str) or not isinstance(prefs, dict):
            skipped["survey_rows_malformed"] += 1
            continue
        try:
            scores = {name: float(prefs[name]) for name in STATED_PREFS}
        except (KeyError, TypeError, ValueError):
            skipped["survey_rows_without_all_stated_prefs"] += 1
            continue
        users[row["user_id"]] = scores
    return users


def text_of(value: Any) -> str | None:
    """A stripped text, or ``None`` for a missing, blank or ``"EMPTY STRING"`` one."""
    if not isinstance(value, str) or not value.strip() or value.strip() == EMPTY_STRING:
        return None
    return value.strip()


def _reply(item: dict[str, Any], empty_text: str | None = None) -> _Reply | None:
    """A model reply; an empty one (``"EMPTY STRING"``) is ``None``, or ``empty_text`` when that is set."""
    content = text_of(item.get("content"))
    if content is None and empty_text is not None and isinstance(item.get("content"), str):
        content = empty_text
    if content is None:
        return None
    score = item.get("score")
    return _Reply(
        content=content,
        score=float(score) if isinstance(score, (int, float)) else None,
        model_name=item.get("model_name"),
    )


def _split_replies(chosen: _Reply, others: list[_Reply], tied_scores: str) -> tuple[list[_Reply], list[_Reply]]:
    """(rejected, tied) replies of a turn: a different text, scored below (or, kept, the same as) the chosen."""
    others = [r for r in others if r.content != chosen.content]
    tied = [r for r in others if r.score is not None and r.score == chosen.score]
    if tied_scores == "keep":
        return others, tied
    return [r for r in others if r not in tied], tied


def _turns(history: list[Any], skipped: Counter[str], tied_scores: str = "drop",
           empty_text: str | None = None) -> list[_Turn]:
    """Usable turns of one conversation, in order; stops at the first malformed turn."""
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in history:
        if isinstance(item, dict) and isinstance(item.get("turn"), int):
            grouped[item["turn"]].append(item)
        else:
            skipped["history_items_malformed"] += 1
    turns: list[_Turn] = []
    for index in sorted(grouped):
        items = grouped[index]
        users = [text_of(i.get("content")) for i in items if i.get("role") == "user"]
        replies = [(i, _reply(i, empty_text)) for i in items if i.get("role") in ("model", "assistant")]
        chosen = [r for i, r in replies if r is not None and i.get("if_chosen") is True]
        others = [r for i, r in replies if r is not None and i.get("if_chosen") is not True]
        if len(users) != 1 or users[0] is None or len({r.content for r in chosen}) != 1:
            empty_chosen = not chosen and any(i.get("if_chosen") is True for i, _ in replies)
            skipped["turns_with_an_empty_chosen_reply" if empty_chosen else "turns_malformed"] += 1
            skipped["turns_after_a_malformed_turn"] += len(grouped) - len(turns) - 1
            break
        if len(chosen) > 1:  # identical A/B replies, both marked chosen: one copy goes on, no pair
            skipped["turns_with_identical_replies"] += 1
        rejected, tied = _split_replies(chosen[0], others, tied_scores)
        turns.append(_Turn(index=index, user=users[0], chosen=chosen[0], rejected=rejected, tied=tied))
    return turns


def _conversations_from_utterances(config: PrismConfig, skipped: Counter[str]) -> list[dict[str, Any]]:
    """Rebuild ``conversations.jsonl``-shaped rows from ``utterances.jsonl``."""
    rows: dict[str, dict[str, Any]] = {}
    for row in _rows(config, "utterances"):
        needed = ("conversation_id", "user_id", "turn", "user_prompt", "model_response")
        if not isinstance(row, dict) or any(row.get(k) is None for k in needed):
            skipped["utterance_rows_malformed"] += 1
            continue
        conversation = rows.setdefault(
            row["conversation_id"],
            {
                "conversation_id": row["conversation_id"],
                "user_id": row["user_id"],
                "conversation_type": row.get("conversation_type", ""),
                "conversation_history": [],
                "_prompts": set(),
            },
        )
        history = conversation["conversation_history"]
        if row["turn"] not in conversation["_prompts"]:
            conversation["_prompts"].add(row["turn"])
            history.append({"turn": row["turn"], "role": "user", "content": row["user_prompt"]})
        history.append(
            {
                "turn": row["turn"],
                "role": "model",
                "content": row["model_response"],
                "model_name": row.get("model_name"),
                "score": row.get("score"),
                "if_chosen": row.get("if_chosen"),
                "within_turn_id": row.get("within_turn_id"),
            }
        )
    for conversation in rows.values():
        del conversation["_prompts"]
    return list(rows.values())


def load_conversations(config: PrismConfig, skipped: Counter[str]) -> list[_Conversation]:
    """Conversations with at least one usable turn."""
    folder = Path(config.source).expanduser()
    if folder.is_dir() and _local_file(config.source, "conversations") is None:
        logger.info("%s has no conversations.jsonl; rebuilding conversations from utterances.jsonl", folder)
        rows: Any = _conversations_from_utterances(config, skipped)
    else:
        rows = _rows(config, "conversations")
    conversations = []
    for order, row in enumerate(tqdm(rows, desc="PRISM conversations", disable=None)):
        history = row.get("conversation_history") if isinstance(row, dict) else None
        if (
            not isinstance(row, dict)
            or not isinstance(history, list)
            or not isinstance(row.get("conversation_id"), str)
            or not isinstance(row.get("user_id"), str)
        ):
            skipped["conversation_rows_malformed"] += 1
            continue
        turns = _turns(history, skipped, config.tied_scores, config.empty_reply_text)
        if not turns:
            skipped["conversations_without_a_usable_turn"] += 1
            continue
        conversations.append(
            _Conversation(
                conversation_id=row["conversation_id"],
                user_id=row["user_id"],
                conversation_type=str(row.get("conversation_type") or ""),
                when=str(row.get("generated_datetime") or ""),
                order=order,
                turns=turns,
            )
        )
    return conversations


def _messages(conversation: _Conversation, turn: _Turn) -> list[dict[str, str]]:
    """The dialogue up to and including the user message of ``turn``."""
    messages = []
    for earlier in conversation.turns:
        if earlier.index >= turn.index:
            break
        messages += [
            {"role": "user", "content": earlier.user},
            {"role": "assistant", "content": earlier.chosen.content},
        ]
    return [*messages, {"role": "user", "content": turn.user}]


def dialogue_prompt(messages: list[dict[str, str]]) -> str:
    """A dialogue as one prompt string: the message itself for a first turn, else a transcript."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages)


def _targets(conversations: list[_Conversation]) -> list[_Target]:
    return [_Target(c, t, r) for c in conversations for t in c.turns for r in t.rejected]


def _pair(target: _Target) -> PreferenceExample:
    prompt = dialogue_prompt(_messages(target.conversation, target.turn))
    return PreferenceExample(prompt=prompt, chosen=target.turn.chosen.content, rejected=target.rejected.content)


def _context(target: _Target, history: list[_Conversation], n: int, rng: random.Random) -> list[PreferenceExample]:
    """Up to ``n`` pairs from other conversations of the user, at most one per turn."""
    turns = [
        (c, t)
        for c in history
        if c.conversation_id != target.conversation.conversation_id
        for t in c.turns
        if t.rejected
    ]
    picked = rng.sample(turns, min(n, len(turns)))
    return [_pair(_Target(c, t, rng.choice(t.rejected))) for c, t in picked]


def _record(
    target: _Target, split: str, user_split: str, prefs: dict[str, float], context: list[PreferenceExample]
) -> TrainingRecord:
    conversation, turn = target.conversation, target.turn
    pair = _pair(target)
    return TrainingRecord(
        dataset="prism",
        split=split,  # type: ignore[arg-type]
        user_id=conversation.user_id,
        user_type=None,
        oracle=oracle_text(prefs),
        context=UserContext(user_id=conversation.user_id, examples=context),
        prompt=pair.prompt,
        chosen=pair.chosen,
        rejected=pair.rejected,
        controversial=False,
        meta={
            "conversation_id": conversation.conversation_id,
            "conversation_type": conversation.conversation_type,
            "turn": turn.index,
            "user_split": user_split,
            "stated_prefs": prefs,
            "chosen_score": turn.chosen.score,
            "rejected_score": target.rejected.score,
            "chosen_model": turn.chosen.model_name,
            "rejected_model": target.rejected.model_name,
            "messages": _messages(conversation, turn),
            "n_context": len(context),
        },
    )


def pair_counts(conversations: list[_Conversation], tied_scores: str) -> dict[str, int]:
    """Pairs of a split's target conversations before and after dropping replies tied with the chosen one."""
    turns = [t for c in conversations for t in c.turns]
    after = sum(len(t.rejected) for t in turns)
    tied = sum(len(t.tied) for t in turns) if tied_scores == "drop" else 0
    return {"pairs_before_tie_filter": after + tied, "pairs_after_tie_filter": after}


def split_users(users: list[str], config: PrismConfig) -> set[str]:
    """The held-out (unseen) users: a seeded share of ``users``."""
    shuffled = sorted(users)
    random.Random(config.split_seed).shuffle(shuffled)
    count = config.n_unseen_users or max(1, round(config.unseen_fraction * len(shuffled)))
    if count >= len(shuffled):
        raise ValueError(
            f"{count} unseen users requested but only {len(shuffled)} users are kept; lower n_unseen_users"
        )
    return set(shuffled[:count])


def build_prism(config: PrismConfig | None = None, **overrides: Any) -> BuildResult:
    """PRISM train/test records (see the module docstring)."""
    given = config.model_dump(exclude_unset=True) if config is not None else {}
    config = PrismConfig.model_validate({**given, **overrides})
    if config.preset:
        logger.info("prism: preset %s chose %s", config.preset, preset_report(config)["chose"])
    skipped: Counter[str] = Counter()
    prefs = load_survey(config, skipped)
    by_user: dict[str, list[_Conversation]] = defaultdict(list)
    for conversation in load_conversations(config, skipped):
        by_user[conversation.user_id].append(conversation)
    kept = []
    for user, conversations in sorted(by_user.items()):
        if user not in prefs:
            skipped["users_without_a_complete_survey"] += 1
        elif len(conversations) < config.min_conversations:
            skipped["users_with_too_few_conversations"] += 1
        else:
            conversations.sort(key=lambda c: (c.when, c.order))
            kept.append(user)
    if len(kept) < 2:
        raise ValueError(
            f"{config.source}: only {len(kept)} PRISM users pass the filter (survey + "
            f">= {config.min_conversations} conversations); lower min_conversations or check the files"
        )
    if config.seen_test_conversations and any(not c.when for u in kept for c in by_user[u]):
        raise ValueError(
            f"{config.source}: seen_test_conversations={config.seen_test_conversations} holds out each user's latest "
            "conversations, but some conversations have no generated_datetime (utterances.jsonl has none); "
            "add conversations.jsonl to the source folder, or set seen_test_conversations=0"
        )
    unseen = split_users(kept, config)
    rng = random.Random(f"prism/{config.seed}")
    names = ["train", "test"] + (["ood"] if config.unseen_split == "ood" else [])
    planned: dict[str, list[tuple[_Target, str, list[_Conversation]]]] = {name: [] for name in names}
    targeted: dict[str, list[_Conversation]] = {name: [] for name in names}
    for user in kept:
        conversations = by_user[user]
        if user in unseen:
            planned[config.unseen_split] += [(t, "unseen", conversations) for t in _targets(conversations)]
            targeted[config.unseen_split] += conversations
            continue
        cut = len(conversations) - config.seen_test_conversations
        seen_train, seen_test = conversations[:cut], conversations[cut:]
        planned["train"] += [(t, "seen", seen_train) for t in _targets(seen_train)]
        planned["test"] += [(t, "seen", seen_train) for t in _targets(seen_test)]
        targeted["train"] += seen_train
        targeted["test"] += seen_test
    counts = {split: pair_counts(targeted[split], config.tied_scores) for split in planned}
    limits = {"train": config.max_train, "test": config.max_test}  # ood (unseen users): never capped
    splits: dict[str, list[TrainingRecord]] = {}
    for split, items in planned.items():
        records = []
        capped = cap(items, limits.get(split), rng)
        for target, user_split, history in tqdm(capped, desc=f"prism {split}", disable=None):
            context = _context(target, history, config.n_context, rng)
            if not context:
                skipped[f"{split}_targets_without_context"] += 1
                continue
            try:
                records.append(_record(target, split, user_split, prefs[target.conversation.user_id], context))
            except ValidationError as exc:  # e.g. a context pair identical to its target
                logger.debug("prism: record skipped: %s", exc)
                skipped[f"{split}_records_invalid"] += 1
        splits[split] = records
    result = BuildResult(
        splits=splits,
        skipped=skipped,
        info={
            "users": {"kept": len(kept), "seen": len(kept) - len(unseen), "unseen": len(unseen)},
            "counts": {split: {**counts[split], "records": len(records)} for split, records in splits.items()},
            "config": config.model_dump(),
            "preset": preset_report(config),
        },
    )
    result.log_skips("prism")
    return result
