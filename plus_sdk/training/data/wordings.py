"""Wordings: many hand-written descriptions per user type, so a model learns the meaning, not one sentence.

Every styles side (``styles.AXES``: 9 axes x 2 sides) and every Pets user type (dog, cat and the
Pets-OOD types bird, rabbit) has descriptions in three splits (tables in ``wordings_text`` and ``wordings_pets``):

* ``train``: 12 third-person wordings ("wants replies kept short"); training draws one at random
  for each record, so a reward model conditioned on the description sees many phrasings;
* ``heldout``: 4 or more other wordings, never used in training: accuracy under them says whether
  the model follows the meaning of a description or memorised the training sentences;
* ``typed``: short lowercase fragments the way a person types into the review UI ("short answers
  pls", "no code", "cats!!"): accuracy under them says whether a summary a user edits by hand is
  still followed.

Every styles wording names its side by ``styles.names_side`` and no keyword of another axis; every
Pets wording names its user's animal first (``summary_metrics.pets.animals_named``). ``describe_styles``,
``describe_pets`` and ``describe_record`` compose a description from one split with a seeded
``random.Random``; ``heldout_record_oracles`` returns records whose ``oracle`` is such a
description (one per user, deterministic for a seed), to evaluate under held-out or typed
wordings. ``handwritten_checks`` holds 24 user-written summaries, each with a pair of new replies
that differ only on what the summary is about.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Literal

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.wordings_pets import HANDWRITTEN, PETS_WORDINGS
from plus_sdk.training.data.wordings_text import STYLE_WORDINGS

WordingSplit = Literal["train", "heldout", "typed"]
#: the wording splits: drawn in training, held out for evaluation, typed by users
WORDING_SPLITS: tuple[str, ...] = ("train", "heldout", "typed")
#: datasets ``describe_record`` knows
WORDING_DATASETS: tuple[str, ...] = ("styles", "pets", "pets-ood")

_SUBJECTS = ("This user", "The user", "This person")
_AGAIN = ("The same user", "This user", "The user")


def _check_split(split: str) -> None:
    if split not in WORDING_SPLITS:
        raise ValueError(f"unknown wording split {split!r}; use one of {', '.join(WORDING_SPLITS)}")


def side_wordings(axis: str, side: str, split: str) -> tuple[str, ...]:
    """The wordings of one styles side in ``split`` (verb phrases for train/heldout, fragments for typed)."""
    _check_split(split)
    try:
        return STYLE_WORDINGS[(axis, side)][split]
    except KeyError:
        raise ValueError(f"no wordings for styles side {axis}={side}; sides: "
                         + ", ".join(f"{a}={s}" for a, s in STYLE_WORDINGS)) from None


def pets_wordings(user_type: str, split: str) -> tuple[str, ...]:
    """The wordings of one Pets user type (dog, cat, bird, rabbit) in ``split``."""
    _check_split(split)
    try:
        return PETS_WORDINGS[user_type][split]
    except KeyError:
        raise ValueError(f"no wordings for Pets user type {user_type!r}; types: {', '.join(PETS_WORDINGS)}") from None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one(phrase: str, rng: random.Random) -> str:
    """One verb phrase as a sentence: after a subject, or as a note without one."""
    if rng.random() < 0.25:
        return f"{_capital(phrase)}."
    return f"{rng.choice(_SUBJECTS)} {phrase}."


def _two(first: str, second: str, rng: random.Random) -> str:
    """Two verb phrases as one sentence or two, with a joiner drawn by ``rng``."""
    subject = rng.choice(_SUBJECTS)
    shapes = (
        lambda: f"{subject} {first}; also {second}.",
        lambda: f"{subject} {first}, and {second}.",
        lambda: f"{subject} {first} and also {second}.",
        lambda: f"{subject} {first}. {rng.choice(_AGAIN)} also {second}.",
        lambda: f"{_capital(first)}; also {second}.",
        lambda: f"{_capital(first)}. Also {second}.",
    )
    return rng.choice(shapes)()


_TYPED_JOINERS = (", ", ". ", " + ", " and ", "; ", " / ")


def _typed(fragments: Sequence[str], rng: random.Random) -> str:
    """Typed fragments as a person would leave them: joined loosely, no subject, no capitals."""
    joiner = rng.choice(_TYPED_JOINERS)
    if len(fragments) > 1 and fragments[0][-1] in "!?" and joiner.strip() in {".", ",", ";"}:
        joiner = " "  # "snippet? no numbers", not "snippet?. no numbers"
    return joiner.join(fragments)


def describe_styles(preferences: Sequence[tuple[str, str]], rng: random.Random, split: str) -> str:
    """A description of a styles user who prefers one or two (axis, side) pairs, drawn from ``split``.

    One wording per side, in random order, joined into one sentence or two (typed: into one
    fragment line); under 40 words. Same ``rng`` state, same text."""
    _check_split(split)
    prefs = [tuple(p) for p in preferences]
    if not 1 <= len(prefs) <= 2:
        raise ValueError(f"a styles description covers one or two axes, got {len(prefs)}: {prefs}")
    if len({a for a, _ in prefs}) != len(prefs):
        raise ValueError(f"a styles user prefers one side per axis, got {prefs}")
    phrases = [rng.choice(side_wordings(axis, side, split)) for axis, side in prefs]
    rng.shuffle(phrases)
    if split == "typed":
        return _typed(phrases, rng)
    return _one(phrases[0], rng) if len(phrases) == 1 else _two(phrases[0], phrases[1], rng)


def describe_pets(user_type: str, rng: random.Random, split: str) -> str:
    """A description of a Pets user (dog, cat, bird, rabbit) drawn from ``split``."""
    phrase = rng.choice(pets_wordings(user_type, split))
    return phrase if split == "typed" else _one(phrase, rng)


def describe_record(record: TrainingRecord, rng: random.Random, split: str) -> str:
    """A description of the record's user from ``split``: styles by ``meta['preferences']``, Pets and
    Pets-OOD by ``user_type``; other datasets raise ``ValueError``."""
    if record.dataset == "styles":
        prefs = record.meta.get("preferences")
        if not prefs:
            raise ValueError(f"styles record of user {record.user_id!r} has no meta['preferences']")
        return describe_styles([(str(a), str(s)) for a, s in prefs], rng, split)
    if record.dataset in ("pets", "pets-ood"):
        if record.user_type is None:
            raise ValueError(f"{record.dataset} record of user {record.user_id!r} has no user_type")
        return describe_pets(record.user_type, rng, split)
    raise ValueError(f"no wordings for dataset {record.dataset!r}; wordings cover {', '.join(WORDING_DATASETS)}")


def heldout_record_oracles(records: Iterable[TrainingRecord], split: str = "heldout",
                           seed: int = 0) -> list[TrainingRecord]:
    """Copies of ``records`` whose ``oracle`` is a description drawn from ``split``.

    One description per user (drawn by ``seed``, ``split`` and the user id), so every record of a
    user reads the same text, and the same seed gives the same texts. ``meta`` gains
    ``wording_split`` and ``original_oracle``; the input records are not changed."""
    _check_split(split)
    by_user: dict[str, str] = {}
    out = []
    for record in records:
        if record.user_id not in by_user:
            rng = random.Random(f"wordings/{split}/{seed}/{record.user_id}")
            by_user[record.user_id] = describe_record(record, rng, split)
        meta = {**record.meta, "wording_split": split, "original_oracle": record.oracle}
        out.append(record.model_copy(update={"oracle": by_user[record.user_id], "meta": meta}))
    return out


def handwritten_checks() -> list[tuple[str, str, str, str, str]]:
    """24 user-written one-line summaries, each as (summary, prompt, reply_a, reply_b, 'a' or 'b').

    The replies are new text (not from the styles items or the Pets pools) and differ only on what
    the summary is about: both sides of all 9 styles axes, and dog, cat, bird and rabbit users.
    They add to ``benchmarks/handwritten_users.py`` (other prompts, other summaries); the preferred
    reply is 'a' for half of them."""
    return [(summary, prompt, a, b, preferred) for _, summary, prompt, a, b, preferred in HANDWRITTEN]


def handwritten_topics() -> list[str]:
    """What each of ``handwritten_checks()`` is about, in order: 'axis=side' or 'pets=animal'."""
    return [about for about, *_ in HANDWRITTEN]
