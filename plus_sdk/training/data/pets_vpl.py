"""Pets and Pets-OOD the way VPL's generator builds them (``PetsConfig(source="vpl")``).

The paper's Pets numbers come from VPL's generator (Poddar et al.), not from plus-sdk's own Pets
(``pets.py``). What this module reproduces, and where plus-sdk Pets differs:

* **sentences**: VPL's own lists, neutral facts about each animal, read from ``vpl_path``;
  the first ``vpl_train_sentences`` (80) of each list are the train sentences, the rest the test
  sentences (plus-sdk Pets: its own sentences, which act out the helpful/harmful roles);
* **prompt**: one fixed request for every row (``vpl_prompt``; plus-sdk Pets: eight wordings);
* **rows**: ``n_train`` / ``n_test`` rows *per user type* (VPL: 2,000 / 200 for each of the two
  types, 4,000 / 400 in all), each row a user of its own whose pair type is drawn uniformly from
  the ten; its context holds ``n_context`` (8) controversial rows of the *same user type* and
  split, labelled by that type, never the row itself.

VPL's code is not vendored here, so its file layout is an assumption, stated in ``docs/data.md``:
``vpl_path`` is a checkout of VPL's code, or any folder, under which the four sentence lists
sit as ``birds.txt``, ``cats.txt``, ``dogs.txt`` and ``rabbits.txt``: one sentence per line, in
the generator's order, blank lines ignored (the first file of each name in sorted path order).
Draws use ``random.Random`` seeded by (seed, split), not VPL's numpy calls: the structure, pools,
prompt and counts match VPL's; which sentence lands in which row does not.

Pets-OOD is the PLUS paper's, not VPL's: ``n_ood`` (200) bird/rabbit users in all, with VPL's test
sentences, contexts of bird-vs-rabbit rows of the same user type.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from plus_sdk.training.data.pets import (
    CONTROVERSIAL_TYPES,
    OOD_ANALOGUE,
    OOD_PAIR_TYPE,
    PAIR_TYPES,
    TARGET_TYPES,
    USER_ROLES,
    PetsConfig,
    _orient,
    _Row,
    oracle_text,
)
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.upstream import SourceError
from plus_sdk.types import UserContext

logger = logging.getLogger(__name__)

#: animal -> the file name of its sentence list in VPL's layout (as assumed, see the module docstring)
VPL_FILES: dict[str, str] = {"bird": "birds.txt", "cat": "cats.txt", "dog": "dogs.txt", "rabbit": "rabbits.txt"}
#: the one request of every VPL Pets row, as the PLUS paper quotes it (App. I)
VPL_PROMPT = "Please talk about one kind of pets."
#: sentences per animal that VPL's generator uses for train; the rest of each list is test
VPL_TRAIN_SENTENCES = 80
DOWNLOAD_HINT = (
    "clone VPL's code (Poddar et al., 'Personalizing RLHF with variational preference learning', "
    "repository vpl_llm) elsewhere and copy it here, or copy only its four Pets sentence lists "
    "(birds.txt, cats.txt, dogs.txt, rabbits.txt) into one folder, then pass that folder as vpl_path"
)

SentencePools = dict[str, tuple[list[str], list[str]]]


def split_sentences(sentences: list[str], n_train: int) -> tuple[list[str], list[str]]:
    """VPL's split of one list: the first ``n_train`` sentences train, the rest test."""
    if len(sentences) <= n_train:
        raise ValueError(f"a sentence list has {len(sentences)} sentences; VPL's split needs more than {n_train} "
                         "(the first ones train, the rest test)")
    return sentences[:n_train], sentences[n_train:]


def rows_per_type(n_rows: int, rows_per: str, n_types: int = 2) -> list[int]:
    """Rows of each user type: ``n_rows`` each (``rows_per="user_type"``), or ``n_rows`` shared out."""
    if rows_per == "user_type":
        return [n_rows] * n_types
    return [n_rows // n_types + (1 if k < n_rows % n_types else 0) for k in range(n_types)]


def find_sentence_lists(vpl_path: str | None) -> dict[str, Path]:
    """animal -> its sentence list under ``vpl_path``; a clear error naming what is missing."""
    if not vpl_path:
        raise SourceError(f"pets source=vpl needs vpl_path (a local copy of VPL's generator); {DOWNLOAD_HINT}")
    root = Path(vpl_path).expanduser()
    if not root.exists():
        raise SourceError(f"vpl_path {root} does not exist; {DOWNLOAD_HINT}")
    found: dict[str, Path] = {}
    for animal, name in VPL_FILES.items():
        matches = [root] if root.is_file() and root.name == name else sorted(root.rglob(name))
        if matches:
            found[animal] = matches[0]
    missing = [VPL_FILES[a] for a in VPL_FILES if a not in found]
    if missing:
        raise SourceError(f"{root} holds no {', '.join(missing)} (searched every folder under it); {DOWNLOAD_HINT}")
    return found


def read_sentence_lists(vpl_path: str | None, n_train: int = VPL_TRAIN_SENTENCES) -> SentencePools:
    """animal -> (train sentences, test sentences) from VPL's lists."""
    pools: SentencePools = {}
    for animal, path in find_sentence_lists(vpl_path).items():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        try:
            pools[animal] = split_sentences([line for line in lines if line], n_train)
        except ValueError as exc:
            raise SourceError(f"{path}: {exc}") from None
        logger.info("VPL Pets: %s: %d train and %d test sentences", path, *map(len, pools[animal]))
    return pools


def _row(rng: random.Random, pair_type: int, pools: SentencePools, test: bool, prompt: str) -> _Row:
    first, second = PAIR_TYPES[pair_type]
    animals = (first, second) if rng.random() < 0.5 else (second, first)
    texts = (rng.choice(pools[animals[0]][test]), rng.choice(pools[animals[1]][test]))
    return _Row(pair_type=pair_type, prompt=prompt, animals=animals, texts=texts)


def _type_records(
    rng: random.Random,
    *,
    dataset: str,
    split: str,
    user_type: str,
    n_rows: int,
    types: tuple[int, ...],
    context_types: frozenset[int],
    pools: SentencePools,
    config: PetsConfig,
    first_user: int,
) -> list[TrainingRecord]:
    """``n_rows`` rows of one user type; each one user whose context comes from the type's other rows."""
    test = split != "train"
    rows = [_row(rng, rng.choice(types), pools, test, config.vpl_prompt) for _ in range(n_rows)]
    bank = [r for r in rows if r.pair_type in context_types]
    records = []
    for index, row in enumerate(rows):
        others = [r for r in bank if r is not row and set(r.texts) != set(row.texts)]
        while len(others) < config.n_context:  # tiny builds: extra rows of a context type, for contexts only
            extra = _row(rng, rng.choice(sorted(context_types)), pools, test, config.vpl_prompt)
            bank.append(extra)
            others += [extra] if set(extra.texts) != set(row.texts) else []
        picked = rng.sample(others, config.n_context)
        pair, chosen_animal, rejected_animal = _orient(row, user_type)
        user_id = f"{dataset}-vpl-{split}-{first_user + index:05d}"
        meta: dict[str, object] = {"source": "vpl", "pair_type": row.pair_type, "animals": list(row.animals),
                                   "chosen_animal": chosen_animal, "rejected_animal": rejected_animal}
        if user_type in USER_ROLES:
            meta["user_role"] = USER_ROLES[user_type]
        if user_type in OOD_ANALOGUE:
            meta["trained_analogue"] = OOD_ANALOGUE[user_type]
        records.append(TrainingRecord(
            dataset=dataset, split=split,  # type: ignore[arg-type]
            user_id=user_id, user_type=user_type, oracle=oracle_text(user_type),
            context=UserContext(user_id=user_id, examples=[_orient(r, user_type)[0] for r in picked]),
            prompt=pair.prompt, chosen=pair.chosen, rejected=pair.rejected,
            controversial=row.pair_type in context_types, meta=meta,
        ))
    return records


def _split(dataset: str, split: str, user_types: tuple[str, ...], counts: list[int], types: tuple[int, ...],
           context_types: frozenset[int], pools: SentencePools, config: PetsConfig) -> list[TrainingRecord]:
    rng = random.Random(f"{dataset}-vpl/{split}/{config.seed}")
    records: list[TrainingRecord] = []
    for user_type, n_rows in zip(user_types, counts, strict=True):
        records += _type_records(rng, dataset=dataset, split=split, user_type=user_type, n_rows=n_rows, types=types,
                                 context_types=context_types, pools=pools, config=config, first_user=len(records))
    rng.shuffle(records)
    return records


def build_vpl_pets(config: PetsConfig, dataset: str = "pets") -> dict[str, list[TrainingRecord]]:
    """Pets (``train``/``test``) or Pets-OOD (also ``ood``) from VPL's sentence lists (module docstring)."""
    pools = read_sentence_lists(config.vpl_path, config.vpl_train_sentences)
    rows_per = config.rows_per or "user_type"
    targets = config.targets or ("dog-cat" if dataset == "pets-ood" else "all")
    types = TARGET_TYPES[targets]
    logger.info("VPL Pets: %s rows %s, %s test rows %s, %d context rows, targets %s, prompt %r",
                config.n_train, "per user type" if rows_per == "user_type" else "in all", config.n_test,
                "per user type" if rows_per == "user_type" else "in all", config.n_context, targets, config.vpl_prompt)
    splits = {
        split: _split(dataset, split, ("cat", "dog"), rows_per_type(n, rows_per), types, CONTROVERSIAL_TYPES,
                      pools, config)
        for split, n in (("train", config.n_train), ("test", config.n_test))
    }
    if dataset == "pets-ood":
        ood = _split("pets-ood", "ood", ("bird", "rabbit"), rows_per_type(config.n_ood, "all"), (OOD_PAIR_TYPE,),
                     frozenset({OOD_PAIR_TYPE}), pools, config)
        splits["ood"] = ood
    return splits


def expected_vpl_counts(n_train: int, n_test: int, rows_per: str = "user_type", n_ood: int | None = None
                        ) -> dict[str, int]:
    """Rows per split that VPL's generator writes for these sizes (same for every sentence list)."""
    counts = {"train": sum(rows_per_type(n_train, rows_per)), "test": sum(rows_per_type(n_test, rows_per))}
    if n_ood is not None:
        counts["ood"] = n_ood
    return counts


__all__ = [
    "VPL_FILES",
    "VPL_PROMPT",
    "VPL_TRAIN_SENTENCES",
    "build_vpl_pets",
    "expected_vpl_counts",
    "find_sentence_lists",
    "read_sentence_lists",
    "rows_per_type",
    "split_sentences",
]
