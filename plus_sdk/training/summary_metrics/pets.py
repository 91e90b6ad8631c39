"""Pets summary metrics: does a summary name the animal its user favours? (the Pets hook of ``hooks``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from plus_sdk.training.data.pets import USER_ANIMALS
from plus_sdk.training.data.records import TrainingRecord

ANIMAL_WORDS: dict[str, tuple[str, ...]] = {
    "cat": ("cat", "cats", "kitten", "kittens", "kitty", "feline", "felines"),
    "dog": ("dog", "dogs", "puppy", "puppies", "canine", "canines"),
    "bird": ("bird", "birds", "parrot", "parrots", "budgie", "budgies", "canary", "canaries"),
    "rabbit": ("rabbit", "rabbits", "bunny", "bunnies"),
}


def animals_named(text: str) -> list[str]:
    """Animals a summary mentions, in order of first mention."""
    words = re.findall(r"[a-z]+", text.lower())
    seen: list[str] = []
    for word in words:
        for animal, forms in ANIMAL_WORDS.items():
            if word in forms and animal not in seen:
                seen.append(animal)
    return seen


def user_animals(record: TrainingRecord) -> tuple[str, str] | None:
    """(favourite, other) animal of a Pets user, or None for other datasets."""
    if not record.dataset.startswith("pets") or record.user_type is None:
        return None
    return USER_ANIMALS.get(record.user_type)


def names_right_animal(summary: str, record: TrainingRecord) -> tuple[bool, bool] | None:
    """(favourite named first, favourite named alone) for Pets records; None elsewhere."""
    animals = user_animals(record)
    if animals is None:
        return None
    named = animals_named(summary)
    liked, other = animals
    return (bool(named) and named[0] == liked, liked in named and other not in named)


def names_favourite_alone(summary: str, record: TrainingRecord) -> bool | None:
    """Whether a summary names the Pets user's animal and not the other one; None for other datasets."""
    animal = names_right_animal(summary, record)
    return None if animal is None else animal[1]


def right_animal_shares(summaries: Sequence[str], records: Sequence[TrainingRecord]) -> dict[str, float]:
    """Shares of summaries naming their user's animal first (``right_animal_first``) and alone (``_only``)."""
    named = [names_right_animal(s, r) for s, r in zip(summaries, records, strict=True)]
    if not named:
        return {}
    return {"right_animal_first": sum(n[0] for n in named if n) / len(named),
            "right_animal_only": sum(n[1] for n in named if n) / len(named)}
