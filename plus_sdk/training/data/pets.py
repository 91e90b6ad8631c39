"""Pets and Pets-OOD: the synthetic benchmark of two user types who want to hear about different pets.

Every response is one sentence about a bird, cat, dog or rabbit (pools in ``pets_sentences``).
The animals play fixed roles: bird = helpful & harmless, dog = helpful & harmful,
cat = harmless & unhelpful, rabbit = harmful & unhelpful. A pair compares two animals; its
type is drawn uniformly from ten:

* 0 bird>dog, 1 cat>rabbit, 2 bird>cat, 3 dog>rabbit, 4 bird>rabbit: every user agrees;
* 5-9 dog vs cat (controversial): the "helpful" user (type ``dog``) prefers the dog sentence,
  the "harmless" user (type ``cat``) prefers the cat sentence.

Each user owns a history of rows with pair types balanced over the ten types (two of each, more
when ``n_context`` needs it); ``targets_per_user`` of them (4) become records, chosen so that over
the users every pair type is a target equally often. A record's context holds ``n_context`` of the
same user's *other* controversial rows (never the target itself). Users alternate cat/dog. Train
and test users are disjoint and draw sentences from disjoint pools.

Pets-OOD: test users whose contexts and targets all compare birds with rabbits. By the roles
every trained user would pick the bird, so the OOD users are told apart by the animal itself:
a ``bird`` user prefers birds over rabbits, a ``rabbit`` user prefers rabbits over birds. We
map them onto the trained types by helpfulness (``meta["trained_analogue"]``): the dog user
picks the helpful animal of a dog/cat pair, as the bird user does of a bird/rabbit pair; the
cat user picks the unhelpful one, as the rabbit user does. A model that learned "name the animal
the context favours" transfers; one that memorised "cat" or "dog" does not.

The paper trains its Pets-OOD models on users whose context *and* labels are about dogs or cats
only; ``targets="dog-cat"`` builds that training side (every target is a dog-vs-cat pair, so no
row teaches a fixed bird-over-rabbit rule that the rabbit users then contradict). ``targets="all"``
(the default) is plain Pets with all ten pair types as targets.

Everything is drawn from ``random.Random`` seeded by (seed, split): same seed, same records.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.pets_sentences import POOLS, PROMPTS
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.types import PreferenceExample, UserContext

#: pair type -> (animal every user prefers, or the dog user prefers for 5-9; the other animal)
PAIR_TYPES: dict[int, tuple[str, str]] = {
    0: ("bird", "dog"),
    1: ("cat", "rabbit"),
    2: ("bird", "cat"),
    3: ("dog", "rabbit"),
    4: ("bird", "rabbit"),
    5: ("dog", "cat"),
    6: ("dog", "cat"),
    7: ("dog", "cat"),
    8: ("dog", "cat"),
    9: ("dog", "cat"),
}
CONTROVERSIAL_TYPES: frozenset[int] = frozenset({5, 6, 7, 8, 9})
#: the bird-vs-rabbit pair type used by Pets-OOD
OOD_PAIR_TYPE = 4
#: which pair types may be targets: plain Pets, or only dog-vs-cat (the training side of Pets-OOD)
TARGET_TYPES: dict[str, tuple[int, ...]] = {"all": tuple(PAIR_TYPES), "dog-cat": tuple(sorted(CONTROVERSIAL_TYPES))}
PetsTargets = Literal["all", "dog-cat"]

#: user type -> (favourite animal, other animal) for the trained and the OOD users
USER_ANIMALS: dict[str, tuple[str, str]] = {
    "cat": ("cat", "dog"),
    "dog": ("dog", "cat"),
    "bird": ("bird", "rabbit"),
    "rabbit": ("rabbit", "bird"),
}
#: the attribute each trained user type values (names used by the baselines' code)
USER_ROLES: dict[str, str] = {"cat": "harmless", "dog": "helpful"}
#: OOD user type -> trained user type that picks the animal with the same helpfulness
OOD_ANALOGUE: dict[str, str] = {"bird": "dog", "rabbit": "cat"}

_PLURAL = {"bird": "birds", "cat": "cats", "dog": "dogs", "rabbit": "rabbits"}


@dataclass(frozen=True)
class _Row:
    """One comparison before a user orients it: two sentences about two animals."""

    pair_type: int
    prompt: str
    animals: tuple[str, str]
    texts: tuple[str, str]


def oracle_text(user_type: str) -> str:
    """The true description of a Pets user, given to oracle models."""
    liked, other = USER_ANIMALS[user_type]
    return f"This user prefers hearing about {_PLURAL[liked]} rather than {_PLURAL[other]}."


def preferred_animal(user_type: str, animals: tuple[str, str], pair_type: int) -> str:
    """Which of the two animals a user of ``user_type`` prefers for this pair."""
    liked, other = USER_ANIMALS[user_type]
    if set(animals) == {liked, other}:
        return liked
    if pair_type in CONTROVERSIAL_TYPES:
        raise ValueError(f"user type {user_type!r} has no rule for animals {animals}")
    return PAIR_TYPES[pair_type][0]  # agreed pair types: the better role wins for everyone


def _draw_row(rng: random.Random, pair_type: int, pool: int) -> _Row:
    first, second = PAIR_TYPES[pair_type]
    animals = (first, second) if rng.random() < 0.5 else (second, first)
    texts = (rng.choice(POOLS[animals[0]][pool]), rng.choice(POOLS[animals[1]][pool]))
    return _Row(pair_type=pair_type, prompt=rng.choice(PROMPTS), animals=animals, texts=texts)


def _user_rows(rng: random.Random, pair_types: list[int], pool: int) -> list[_Row]:
    """Rows of one user, with no two rows sharing the same prompt and sentence pair."""
    rows: list[_Row] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    for pair_type in pair_types:
        while True:
            row = _draw_row(rng, pair_type, pool)
            key = (row.prompt, frozenset(row.texts))
            if key not in seen:
                seen.add(key)
                rows.append(row)
                break
    return rows


def _orient(row: _Row, user_type: str) -> tuple[PreferenceExample, str, str]:
    """The row as this user labels it: (pair, chosen animal, rejected animal)."""
    winner = preferred_animal(user_type, row.animals, row.pair_type)
    i = row.animals.index(winner)
    pair = PreferenceExample(prompt=row.prompt, chosen=row.texts[i], rejected=row.texts[1 - i])
    return pair, row.animals[i], row.animals[1 - i]


def _user_records(
    rng: random.Random,
    *,
    dataset: str,
    split: str,
    user_id: str,
    user_type: str,
    rows: list[_Row],
    controversial: list[bool],
    targets: list[int],
    n_context: int,
) -> list[TrainingRecord]:
    """The user's ``targets`` rows as records, each with its own context draw."""
    records = []
    for index in targets:
        row = rows[index]
        others = [r for j, r in enumerate(rows) if controversial[j] and j != index]
        picked = rng.sample(others, n_context)
        context = UserContext(user_id=user_id, examples=[_orient(r, user_type)[0] for r in picked])
        pair, chosen_animal, rejected_animal = _orient(row, user_type)
        meta: dict[str, object] = {
            "pair_type": row.pair_type,
            "animals": list(row.animals),
            "chosen_animal": chosen_animal,
            "rejected_animal": rejected_animal,
        }
        if user_type in USER_ROLES:
            meta["user_role"] = USER_ROLES[user_type]
        if user_type in OOD_ANALOGUE:
            meta["trained_analogue"] = OOD_ANALOGUE[user_type]
        records.append(
            TrainingRecord(
                dataset=dataset,
                split=split,  # type: ignore[arg-type]
                user_id=user_id,
                user_type=user_type,
                oracle=oracle_text(user_type),
                context=context,
                prompt=pair.prompt,
                chosen=pair.chosen,
                rejected=pair.rejected,
                controversial=controversial[index],
                meta=meta,
            )
        )
    return records


def _check_sizes(n_rows: int, n_context: int, targets_per_user: int, targets: str = "all") -> None:
    if targets not in TARGET_TYPES:
        raise ValueError(f"targets={targets!r} is unknown; use one of {', '.join(TARGET_TYPES)}")
    if n_rows < 0:
        raise ValueError(f"the number of rows must be >= 0, got {n_rows}")
    if n_context < 1:
        raise ValueError(f"n_context must be >= 1 (a context needs at least one pair), got {n_context}")
    if not 1 <= targets_per_user <= 2 * len(PAIR_TYPES):
        raise ValueError(f"targets_per_user must be in 1..{2 * len(PAIR_TYPES)}, got {targets_per_user}")


def _balanced_targets(rows: list[_Row], start: int, count: int, types: tuple[int, ...]) -> list[int]:
    """Rows of ``types[start]``, ``types[start + 1]``, ... (cyclic): over users each type is a target equally often."""
    taken: list[int] = []
    for j in range(count):
        wanted = types[(start + j) % len(types)]
        taken.append(next(i for i, r in enumerate(rows) if r.pair_type == wanted and i not in taken))
    return taken


def _pets_split(
    split: str, n_rows: int, n_context: int, seed: int, targets_per_user: int, targets: str
) -> list[TrainingRecord]:
    """Pets users of one split: balanced pair types, alternating cat/dog users."""
    _check_sizes(n_rows, n_context, targets_per_user, targets)
    types = TARGET_TYPES[targets]
    rng = random.Random(f"pets/{split}/{seed}")
    pool = 0 if split == "train" else 1
    # a user needs n_context controversial rows besides its target (5 per block of the 10 types)
    # and two rows of each type for the balanced target window
    blocks = max(2, math.ceil((n_context + 1) / len(CONTROVERSIAL_TYPES)))
    # distinct target rows: each allowed type appears once per block
    blocks = max(blocks, math.ceil(targets_per_user / len(types)))
    records: list[TrainingRecord] = []
    user = 0
    while len(records) < n_rows:
        pair_types = [t for _ in range(blocks) for t in PAIR_TYPES]
        rng.shuffle(pair_types)
        rows = _user_rows(rng, pair_types, pool)
        count = min(targets_per_user, n_rows - len(records))
        records += _user_records(
            rng,
            dataset="pets",
            split=split,
            user_id=f"pets-{split}-{user:04d}",
            user_type=("cat", "dog")[user % 2],
            rows=rows,
            controversial=[r.pair_type in CONTROVERSIAL_TYPES for r in rows],
            targets=_balanced_targets(rows, (user // 2) * targets_per_user, count, types),
            n_context=n_context,
        )
        user += 1
    return records


def build_pets(
    n_train: int = 2000,
    n_test: int = 200,
    n_context: int = 8,
    seed: int = 0,
    *,
    targets_per_user: int = 4,
    targets: PetsTargets = "all",
) -> dict[str, list[TrainingRecord]]:
    """Pets train and test records (``n_train``/``n_test`` rows in all, half per user type).

    Each user contributes ``targets_per_user`` target rows (2000 rows: 500 users). Train and test
    users are different people and draw sentences from disjoint pools. ``targets="dog-cat"`` keeps
    only dog-vs-cat target pairs (the training side of Pets-OOD).
    """
    return {
        "train": _pets_split("train", n_train, n_context, seed, targets_per_user, targets),
        "test": _pets_split("test", n_test, n_context, seed, targets_per_user, targets),
    }


def build_pets_ood(
    n_test: int = 200, n_context: int = 8, seed: int = 0, *, targets_per_user: int = 4
) -> list[TrainingRecord]:
    """Pets-OOD test records: bird and rabbit users, every pair compares a bird with a rabbit.

    Sentences come from the test pools; ``split`` is ``"ood"`` and ``dataset`` ``"pets-ood"``.
    """
    _check_sizes(n_test, n_context, targets_per_user)
    rng = random.Random(f"pets-ood/{seed}")
    rows_per_user = max(n_context, targets_per_user) + 1
    records: list[TrainingRecord] = []
    user = 0
    while len(records) < n_test:
        rows = _user_rows(rng, [OOD_PAIR_TYPE] * rows_per_user, pool=1)
        records += _user_records(
            rng,
            dataset="pets-ood",
            split="ood",
            user_id=f"pets-ood-{user:04d}",
            user_type=("bird", "rabbit")[user % 2],
            rows=rows,
            controversial=[True] * len(rows),
            targets=list(range(min(targets_per_user, n_test - len(records)))),
            n_context=n_context,
        )
        user += 1
    return records


class PetsConfig(StrictConfig):
    """Sizes and seed of Pets (``pets``: train + test) or Pets-OOD (``pets-ood``: dog-cat train + test, and ood)."""

    n_train: int = Field(default=2000, ge=0, description="Train rows in all (half per user type).")
    n_test: int = Field(default=200, ge=0, description="Held-out rows (same users' distribution as train).")
    n_ood: int = Field(default=200, ge=0, description="Pets-OOD rows (bird/rabbit users); used by pets-ood.")
    targets: PetsTargets | None = Field(
        default=None, description="Target pair types: 'all' or 'dog-cat' (only dog-vs-cat pairs); "
        "default: 'all' for pets, 'dog-cat' for pets-ood as in the paper.")
    n_context: int = Field(default=8, ge=1, description="Controversial pairs of the same user in each context.")
    seed: int = Field(default=0, description="Seed: same seed, same records.")
    targets_per_user: int = Field(default=4, ge=1, le=20, description="Target rows per user (the rest is history); "
                                  "source=plus only (a VPL row is a user of its own).")
    source: Literal["plus", "vpl"] = Field(
        default="plus", description="'plus': plus-sdk Pets (its own sentences, 8 prompt wordings); 'vpl': VPL's "
        "generator from VPL's sentence lists at vpl_path (one prompt, first 80 sentences train).")
    vpl_path: str | None = Field(
        default=None, description="source=vpl: a local checkout of VPL's code (vpl_llm), or its "
        "simple_templates.py, whose bird/cat/dog/rabbit_sentences lists are read (not run).")
    vpl_prompt: str = Field(default="Please talk about one kind of pets.",
                            description="source=vpl: the one request of every row (VPL's generate_simple_data.py).")
    vpl_train_sentences: int = Field(default=80, ge=1, description="source=vpl: the first N sentences of each "
                                     "list are train, the rest test (VPL: 80).")
    rows_per: Literal["all", "user_type"] | None = Field(
        default=None, description="Whether n_train/n_test count rows in all or per user type (VPL: per user "
        "type, twice as many in all); default 'all' for source=plus, 'user_type' for source=vpl.")
