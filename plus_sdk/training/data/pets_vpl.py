"""Pets and Pets-OOD the way VPL's generator builds them (``PetsConfig(source="vpl")``).

The paper's Pets numbers come from VPL's generator (Poddar et al., repository ``vpl_llm``), not
from plus-sdk's own Pets (``pets.py``). What VPL's code does, and what this module reproduces:

* **sentences**: VPL keeps them in a Python module, ``hidden_context/data_utils/simple_templates.py``
  (``vpl_modules/data_utils/`` in later copies), as the lists ``bird_sentences``,
  ``cat_sentences``, ``dog_sentences`` and ``rabbit_sentences`` (neutral facts). We read those four
  list literals with ``ast`` (nothing is imported or run). ``generate_simple_data.py``
  (``generate_synthetic_dataset``) takes ``[:80]`` of each list for train and ``[80:]`` for test.
* **prompt**: one fixed request, ``'Human: Please talk about one kind of pets.'``; we keep the
  request without the ``Human:`` turn marker (``vpl_prompt``).
* **rows**: ``generate_llm_data_pets.sh`` runs the generator once per user type (``helpful``,
  ``harmless``) and split, 2,000 train / 200 test rows each; every run seeds numpy with 0 and makes
  the same numpy calls, so both user types get the *same* rows (pair type and sentences), labelled
  each by its own type. Here too: a split's rows are drawn once and every user type labels them
  (``n_train`` / ``n_test`` rows per user type). A row's pair type is uniform over the ten
  (``np.random.randint(10)``; 5-9 are dog vs cat).
* **contexts**: ``data_processing.generate_contexts`` gives every row 8 rows drawn *with
  replacement* from the controversial rows of the same file (same user type and split), labelled by
  that type; the row itself may be drawn. Same here, except that a draw equal to the row's own pair
  is redrawn (records forbid a target inside its own context). Both user types get the same draws.

Draws use ``random.Random`` seeded by (seed, split), not VPL's numpy stream: the structure, pools,
prompt and counts match VPL's; which sentence lands in which row does not.

Pets-OOD is the PLUS paper's, not VPL's: ``n_ood`` (200) bird/rabbit users in all, with VPL's test
sentences, contexts of bird-vs-rabbit rows of the same user type.
"""

from __future__ import annotations

import ast
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

#: the module of VPL's code that holds the sentence lists
VPL_MODULE = "simple_templates.py"
#: animal -> the name of its sentence list in that module
VPL_LISTS: dict[str, str] = {"bird": "bird_sentences", "cat": "cat_sentences", "dog": "dog_sentences",
                             "rabbit": "rabbit_sentences"}
#: the one request of every VPL Pets row (VPL's text without its "Human: " turn marker)
VPL_PROMPT = "Please talk about one kind of pets."
#: sentences per animal that VPL's generator uses for train; the rest of each list is test
VPL_TRAIN_SENTENCES = 80
DOWNLOAD_HINT = (
    "clone VPL's code (Poddar et al., 'Personalizing RLHF with variational preference learning', "
    f"repository vpl_llm) and pass the checkout, or its {VPL_MODULE} "
    "(hidden_context/data_utils/ in that repository), as vpl_path"
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


def find_sentence_module(vpl_path: str | None) -> Path:
    """VPL's ``simple_templates.py`` at or under ``vpl_path``; a clear error naming what is missing."""
    if not vpl_path:
        raise SourceError(f"pets source=vpl needs vpl_path (a local copy of VPL's generator); {DOWNLOAD_HINT}")
    root = Path(vpl_path).expanduser()
    if not root.exists():
        raise SourceError(f"vpl_path {root} does not exist; {DOWNLOAD_HINT}")
    if root.is_file():
        return root
    matches = sorted(root.rglob(VPL_MODULE))
    if not matches:
        raise SourceError(f"{root} holds no {VPL_MODULE} (searched every folder under it); {DOWNLOAD_HINT}")
    return matches[0]


def parse_sentence_lists(path: Path) -> dict[str, list[str]]:
    """animal -> its sentences, read from the list literals of VPL's module (the code is not run)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path} cannot be parsed as Python: {exc}") from None
    names = {name: animal for animal, name in VPL_LISTS.items()}
    lists: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            animal = names.get(node.targets[0].id)
            if animal is None:
                continue
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SourceError(f"{path}: {node.targets[0].id} is not a list of strings")
            lists[animal] = [v.strip() for v in value if v.strip()]
    missing = [VPL_LISTS[a] for a in VPL_LISTS if a not in lists]
    if missing:
        raise SourceError(f"{path} defines no {', '.join(missing)}; {DOWNLOAD_HINT}")
    return lists


def read_sentence_lists(vpl_path: str | None, n_train: int = VPL_TRAIN_SENTENCES) -> SentencePools:
    """animal -> (train sentences, test sentences) from VPL's lists."""
    path = find_sentence_module(vpl_path)
    pools: SentencePools = {}
    for animal, sentences in parse_sentence_lists(path).items():
        try:
            pools[animal] = split_sentences(sentences, n_train)
        except ValueError as exc:
            raise SourceError(f"{path}: {VPL_LISTS[animal]}: {exc}") from None
        logger.info("VPL Pets: %s: %d train and %d test sentences", VPL_LISTS[animal], *map(len, pools[animal]))
    return pools


def _row(rng: random.Random, pair_type: int, pools: SentencePools, test: bool, prompt: str) -> _Row:
    first, second = PAIR_TYPES[pair_type]
    animals = (first, second) if rng.random() < 0.5 else (second, first)
    texts = (rng.choice(pools[animals[0]][test]), rng.choice(pools[animals[1]][test]))
    return _Row(pair_type=pair_type, prompt=prompt, animals=animals, texts=texts)


def _context_draws(rng: random.Random, rows: list[_Row], context_types: frozenset[int], n_context: int,
                   pools: SentencePools, test: bool, prompt: str) -> list[list[_Row]]:
    """Per row, ``n_context`` controversial rows drawn with replacement (VPL), never the row's own pair."""
    bank = [r for r in rows if r.pair_type in context_types]
    for _ in range(1000):  # tiny builds: add rows until two different pairs can be drawn
        if bank and any(set(r.texts) != set(bank[0].texts) for r in bank):
            break
        bank.append(_row(rng, rng.choice(sorted(context_types)), pools, test, prompt))
    else:
        raise SourceError("the sentence lists are too short to draw two different context pairs")
    draws = []
    for row in rows:
        picked: list[_Row] = []
        while len(picked) < n_context:
            pick = rng.choice(bank)
            if set(pick.texts) != set(row.texts):  # a record never holds its own pair
                picked.append(pick)
        draws.append(picked)
    return draws


def _split(dataset: str, split: str, user_types: tuple[str, ...], counts: list[int], types: tuple[int, ...],
           context_types: frozenset[int], pools: SentencePools, config: PetsConfig) -> list[TrainingRecord]:
    """One split: rows drawn once, labelled by every user type (the first ``counts[k]`` for type k)."""
    rng = random.Random(f"{dataset}-vpl/{split}/{config.seed}")
    test = split != "train"
    rows = [_row(rng, rng.choice(types), pools, test, config.vpl_prompt) for _ in range(max(counts, default=0))]
    contexts = _context_draws(rng, rows, context_types, config.n_context, pools, test, config.vpl_prompt)
    records: list[TrainingRecord] = []
    for user_type, n_rows in zip(user_types, counts, strict=True):
        for index, (row, picked) in enumerate(zip(rows[:n_rows], contexts[:n_rows], strict=True)):
            pair, chosen_animal, rejected_animal = _orient(row, user_type)
            user_id = f"{dataset}-vpl-{split}-{len(records):05d}"
            meta: dict[str, object] = {"source": "vpl", "pair_type": row.pair_type, "animals": list(row.animals),
                                       "chosen_animal": chosen_animal, "rejected_animal": rejected_animal,
                                       "vpl_row": index}
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
    "VPL_LISTS",
    "VPL_MODULE",
    "VPL_PROMPT",
    "VPL_TRAIN_SENTENCES",
    "build_vpl_pets",
    "expected_vpl_counts",
    "find_sentence_module",
    "parse_sentence_lists",
    "read_sentence_lists",
    "rows_per_type",
    "split_sentences",
]
