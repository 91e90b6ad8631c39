"""Adapter bundles: a folder with ``card.json`` (the ``AdapterCard``), ``summarizer/`` and ``reward/``.

Everything that finds, reads or writes a bundle lives here: the card, the shipped bundles,
``save_bundle`` (from live objects) and the human-readable ``README.md`` an export writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from plus_sdk import prompts
from plus_sdk.files import atomic_write_text, staged_dir
from plus_sdk.models import (
    BUNDLE_FOLDERS,
    DEFAULT_HUB_ID,
    ModelNotFoundError,
    bundle_search_folders,
    is_default,
)
from plus_sdk.types import AdapterCard, SamplingConfig
from plus_sdk.version import __version__

#: the one line saying which bundle ``from_pretrained`` loaded (INFO, shown by default: see ``announce``)
loaded_logger = logging.getLogger("plus_sdk.loaded")
loaded_logger.setLevel(logging.INFO)

CARD_FILE = "card.json"
#: THE name of the default bundle: ``from_pretrained()`` with no argument, ``plus demo``, CLI help and docs.
DEFAULT_BUNDLE = "general-smollm2"
#: bundle folders already announced in this process (a judge loads one bundle twice: summarizer and reward)
_ANNOUNCED: set[str] = set()
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("plus_sdk_quiet_loads", default=False)


@contextlib.contextmanager
def quiet_loads(quiet: bool = True) -> Iterator[None]:
    """Inside the block, loading a bundle announces nothing (``from_pretrained(..., quiet=True)``)."""
    token = _QUIET.set(quiet or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


def announcements_on() -> bool:
    """False inside ``quiet_loads()`` or with ``PLUS_SDK_QUIET=1`` in the environment."""
    return not _QUIET.get() and os.environ.get("PLUS_SDK_QUIET", "").strip().lower() in ("", "0", "false", "no")


def read_card(folder: str | os.PathLike[str]) -> AdapterCard:
    """The ``AdapterCard`` of a bundle folder."""
    path = Path(folder) / CARD_FILE
    if not path.exists():
        raise ModelNotFoundError(f"{folder} has no {CARD_FILE}: it is not a plus-sdk adapter bundle")
    try:
        return AdapterCard.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # pydantic's ValidationError (bad JSON or fields) is a ValueError
        raise ValueError(f"{path} is not a valid adapter card: {str(exc).splitlines()[0]}; restore the bundle "
                         "or export it again") from None


def announce(folder: str | os.PathLike[str], card: AdapterCard) -> None:
    """Say on stderr, once per process and folder, which bundle was loaded and which users it was trained for.

    The line is an INFO record of the ``plus_sdk.loaded`` logger (level INFO, so it shows by default): an
    app that configured logging gets it through its handlers; one that did not gets it on stderr, as
    Python's last-resort handler does for warnings. ``quiet_loads()`` or ``PLUS_SDK_QUIET=1`` silence it.
    """
    key = str(Path(folder).resolve())
    if key in _ANNOUNCED or not announcements_on():
        return
    _ANNOUNCED.add(key)
    state = "trained" if card.trained else "an UNTRAINED reward head"
    args = (card.name, folder, state, card.base_model, card.trained_on or "unstated data", card.summary_task)
    message = "Loaded bundle '%s' (%s, %s on %s): trained for users of %s; summaries use the '%s' prompt"
    if loaded_logger.hasHandlers():
        loaded_logger.info(message, *args)
    elif loaded_logger.isEnabledFor(logging.INFO):
        handler = logging.StreamHandler(sys.stderr)
        handler.handle(loaded_logger.makeRecord(loaded_logger.name, logging.INFO, __file__, 0, message, args, None))


def open_bundle(base: str | os.PathLike[str] | None, adapter: object = None, *,
                quiet: bool = False) -> tuple[Path | None, AdapterCard | None]:
    """The bundle ``base`` names and its card (announced once unless ``quiet``), or ``(None, None)``.

    With neither ``base`` nor ``adapter`` given, the trained default bundle is meant (when it ships).
    """
    if base is None and adapter is None:
        base = default_bundle_dir()
    bundle = find_bundle(base)
    if bundle is None:
        return None, None
    card = read_card(bundle)
    with quiet_loads(quiet):
        announce(bundle, card)
    return bundle, card


def write_card(folder: str | os.PathLike[str], card: AdapterCard) -> None:
    """Write ``card.json`` atomically."""
    atomic_write_text(Path(folder) / CARD_FILE, card.model_dump_json(indent=2))


def is_bundle(path: str | os.PathLike[str] | None) -> bool:
    """True if ``path`` is a folder holding a plus-sdk ``card.json``."""
    return path is not None and (Path(path).expanduser() / CARD_FILE).is_file()


def shipped_bundle_dir(name: str = DEFAULT_BUNDLE) -> Path | None:
    """A trained bundle shipped in the wheel (or found in the repository's ``adapters/``) by name."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    for folder in (root / name for root in BUNDLE_FOLDERS):
        if is_bundle(folder):
            return folder
    return None


def default_bundle_dir() -> Path | None:
    """The trained default adapters (``DEFAULT_BUNDLE``), shipped in the wheel or found in the repository."""
    return shipped_bundle_dir(DEFAULT_BUNDLE)


def _is_bare_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith((".", "~"))


def find_bundle(base: str | os.PathLike[str] | None) -> Path | None:
    """The bundle folder ``base`` names, or ``None`` when it names none.

    ``base`` is a folder holding ``card.json``, or a bundle NAME looked up, before any hub call, in
    ``./adapters/``, the shipped bundles, then the user bundle folder (``PLUS_SDK_BUNDLES``, default
    ``<cache>/bundles``): ``models.bundle_search_folders``. The one resolver of bundles: ``from_pretrained``,
    ``init_from`` and the evaluation commands all go through it.
    """
    if base is None:
        return None
    if is_bundle(base):
        return Path(base).expanduser()
    name = str(base)
    if not _is_bare_name(name):
        return None
    return next((root / name for root in bundle_search_folders() if is_bundle(root / name)), None)


class BundledSummarizer(Protocol):
    """What a bundle reads of a summarizer (``plus_sdk.summarizer.Summarizer`` is one); bundles sit below it."""

    backend: Any
    card: AdapterCard | None
    sampling: SamplingConfig
    task: str
    context_kind: str

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None: ...


def save_bundle(folder: str | os.PathLike[str], card: AdapterCard, summarizer: BundledSummarizer | None,
                reward_model: Any = None) -> None:
    """Write an adapter bundle (``card.json``, ``summarizer/``, ``reward/``) atomically.

    The bundle is staged in a sibling folder and moved into place, so a reader never sees half
    of it. A summarizer without a LoRA adapter (the bare base) writes no ``summarizer/`` folder.
    """
    with staged_dir(folder, force=True) as staging:  # save_pretrained replaces, as in transformers; never "."
        model = getattr(getattr(summarizer, "backend", None), "model", None)
        if summarizer is not None and model is not None and model.adapter is not None:
            summarizer.save_pretrained(staging / "summarizer")
        if reward_model is not None:
            reward_model.save_pretrained(staging / "reward")
        write_card(staging, card)


def card_for(summarizer: BundledSummarizer | None, base_model: str, **fields: Any) -> AdapterCard:
    """The card of a bundle built from live objects (the summarizer's own card when it has one)."""
    if summarizer is not None and summarizer.card is not None:
        return summarizer.card.model_copy(update=fields)
    config = {"summary_max_new_tokens": summarizer.sampling.max_new_tokens} if summarizer else {}
    return AdapterCard(name=fields.pop("name", Path(base_model).name), base_model=base_model, config=config,
                       prompt_version=prompts.PROMPT_VERSION,
                       summary_task=summarizer.task if summarizer else "generic",
                       context_kind=summarizer.context_kind if summarizer else "pairs",
                       plus_sdk_version=__version__, **fields)


def card_markdown(card: AdapterCard) -> str:
    """The human-readable card (``README.md``) of a bundle: what it is, how it was trained, how it scores."""
    cfg = card.config
    iterations = int(card.metrics.get("iterations", card.metrics.get("iteration", 0)))
    what = ("A plus-sdk adapter bundle: a summarizer LoRA adapter (`summarizer/`) and a reward-model LoRA adapter "
            "with its head (`reward/`), trained together by PLUS co-adaptation.")
    if cfg.get("kind") == "encoder":
        what = ("A plus-sdk adapter bundle of the encoder path (docs/encoder.md): a summarizer LoRA adapter with its "
                "context reader (`summarizer/`), which reads the context through a frozen sentence encoder, and a "
                f"reward head on that encoder's embeddings (`reward/`, encoder `{cfg.get('encoder', '?')}`), trained "
                "by `plus train general` on hand-written wordings of each user's description (no co-adaptation yet). "
                "`test_*` metrics are held-out styles users, `ood_*` held-out Pets users.")
    lines = [
        f"# {card.name}",
        "",
        f"{what} Load it with `PersonalizedJudge.from_pretrained(path_to_this_folder)`.",
        "",
        f"- Base model (both roles): `{card.base_model}`"
        + (f"; reward model on `{cfg['reward_base_model']}`" if cfg.get("reward_base_model", card.base_model)
           != card.base_model else ""),
        f"- Trained on: {card.trained_on}; summarizer prompt family `{card.summary_task}`, "
        f"prompt version {card.prompt_version}, context kind `{card.context_kind}`",
        (f"- Steps: reward model {cfg.get('rm_steps', '?')}, reader {cfg.get('reader', {}).get('regress_steps', '?')} "
         f"+ {cfg.get('reader', {}).get('decode_steps', '?')}" if cfg.get("kind") == "encoder" else
         f"- Iterations: {iterations or '?'}; checkpoint `{cfg.get('checkpoint', '?')}`")
        + (f"; warm-started from `{cfg['init_from']}`" if cfg.get("init_from") else "")
        + (f" ({' and '.join(cfg['init_roles'])} only)"
           if cfg.get("init_from") and len(cfg.get("init_roles", ())) == 1 else ""),
        f"- Written by plus-sdk {card.plus_sdk_version} on {card.created_at:%Y-%m-%d}",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value:.4g} |" for key, value in sorted(card.metrics.items())]
    lines += ["", "`card.json` holds the same facts and the whole training configuration.", ""]
    return "\n".join(lines)


def portable_base_name(folder: Path, base: str | None) -> None:
    """Name the base in ``adapter_config.json`` by its id, not by this machine's cache path."""
    path = folder / "adapter_config.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = DEFAULT_HUB_ID if is_default(base) else str(base)
        atomic_write_text(path, json.dumps(data, indent=2))
