"""Styles: a multi-axis preference dataset of the kind apps see (short or long, formal or casual, ...).

Each user prefers one side of one or two *axes* (as UltraFeedback-P4's users each value one
attribute). An axis has two sides; a pair on an axis shows the same answer rendered once per
side, with everything else equal, so only the user's axis decides which reply they pick:

=========  ==================  ======================================================
axis       sides               what differs
=========  ==================  ======================================================
length     concise / detailed  the core answer alone, or with 2-3 sentences of depth
tone       formal / casual     the core answer written formally or chattily
format     bullets / prose     the same sentences as a list or as a paragraph
code       code / no-code      a short code snippet, or none (prompts that have one)
caveats    caveats / direct    a safety or caution sentence, or none
level      beginner / expert   plain words that explain, or terse technical ones
example    concrete / abstract a specific example, or the general principle
numbers    numbers / qualitative  a sentence with figures, or the same point without
clarify    clarify / immediate a clarifying question first, or straight to the answer
=========  ==================  ======================================================

The text is hand-written per prompt (``styles_items``: 16 domains under ``styles/``); only the
list and paragraph layouts are rendered, with varied markers. Prompts are split into train and
test by a seeded draw per domain, so no test prompt or test sentence appears in train.

A record's context holds ``n_context`` pairs of the same user on the user's axes (other prompts
than the target's). Targets are controversial pairs on the user's axes (users on the two sides
of an axis disagree) and, with ``agreed_share``, agreed pairs: an on-topic reply against a reply
written for another prompt, which every user rejects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pydantic import Field

from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.styles_items import StyleItem, load_all
from plus_sdk.types import PreferenceExample, UserContext


@dataclass(frozen=True)
class Axis:
    """One style axis: its two sides, a true description and summary keywords per side."""

    name: str
    sides: tuple[str, str]
    oracle: tuple[str, str]
    keywords: tuple[tuple[str, ...], tuple[str, ...]]


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("length", ("concise", "detailed"),
         ("prefers concise answers that get to the point", "prefers detailed, thorough answers"),
         (("concise", "short", "brief", "succinct", "to the point"),
          ("detailed", "detail", "thorough", "in-depth", "in depth", "comprehensive", "long", "elaborate"))),
    Axis("tone", ("formal", "casual"),
         ("prefers a formal, professional tone", "prefers a casual, friendly tone"),
         (("formal", "professional", "polite"), ("casual", "friendly", "informal", "relaxed", "chatty"))),
    Axis("format", ("bullets", "prose"),
         ("prefers answers laid out as bullet lists", "prefers answers written as flowing prose paragraphs"),
         (("bullet", "list", "points"), ("prose", "paragraph", "flowing"))),
    Axis("code", ("code", "no-code"),
         ("prefers answers that include a code example", "prefers answers without code"),
         (("code", "snippet", "script"),
          ("without code", "no code", "no-code", "plain language", "code-free", "without any code", "skip the code"))),
    Axis("caveats", ("caveats", "direct"),
         ("prefers answers that add safety caveats and warnings", "prefers direct answers without warnings"),
         (("caveat", "safety", "warning", "caution", "careful", "risk"),
          ("direct", "no warnings", "straightforward", "without warnings", "no caveats", "without caveats"))),
    Axis("level", ("beginner", "expert"),
         ("prefers beginner-friendly explanations in plain words", "prefers expert-level, technical answers"),
         (("beginner", "simple", "plain", "easy", "novice", "non-technical", "no jargon", "without jargon"),
          ("expert", "technical", "advanced", "jargon"))),
    Axis("example", ("concrete", "abstract"),
         ("prefers answers with a concrete example", "prefers general principles over specific examples"),
         (("example", "concrete", "specific", "instance"),
          ("abstract", "general", "principle", "conceptual", "over specific examples"))),
    Axis("numbers", ("numbers", "qualitative"),
         ("prefers answers that cite specific numbers and figures", "prefers qualitative answers without figures"),
         (("number", "figure", "statistic", "data", "quantit", "numeric"),
          ("qualitative", "without numbers", "no numbers", "descriptive", "without figures"))),
    Axis("clarify", ("clarify", "immediate"),
         ("prefers that the assistant first asks a clarifying question",
          "prefers an immediate answer without questions back"),
         (("clarif", "question", "ask"),
          ("immediate", "straight", "right away", "directly", "at once", "no questions", "without questions",
           "without asking"))),
)}

#: every (axis, side) a user can prefer
PREFERENCES: tuple[tuple[str, str], ...] = tuple((a.name, s) for a in AXES.values() for s in a.sides)


def side_description(axis: str, side: str) -> str:
    """The true description of one (axis, side), e.g. 'prefers concise answers that get to the point'."""
    spec = AXES[axis]
    return spec.oracle[spec.sides.index(side)]


def side_keywords(axis: str, side: str) -> tuple[str, ...]:
    """Words a summary that names this side contains (lower case)."""
    spec = AXES[axis]
    return spec.keywords[spec.sides.index(side)]


def oracle_text(preferences: list[tuple[str, str]]) -> str:
    """The true description of a styles user: 'This user prefers ... and prefers ...'."""
    return "This user " + " and ".join(side_description(a, s) for a, s in preferences) + "."


def sides_named(summary: str, axis: str) -> set[str]:
    """The sides of ``axis`` a summary names: those with a keyword in it (lower case, substrings).

    Keywords are matched longest first and each match is blanked out before the shorter ones are
    looked for, so a keyword inside a longer keyword of the other side does not count: "no code"
    names only no-code (not code), "informal" only casual (not formal)."""
    text = summary.lower()
    spec = AXES[axis]
    found: set[str] = set()
    for keyword, side in sorted(((k, s) for s, ks in zip(spec.sides, spec.keywords, strict=True) for k in ks),
                                key=lambda pair: -len(pair[0])):
        if keyword in text:
            found.add(side)
            text = text.replace(keyword, "\0")
    return found


def names_side(summary: str, axis: str, side: str) -> bool:
    """Whether a summary names the side (a keyword of it, and none of the other side's; see ``sides_named``)."""
    if side not in AXES[axis].sides:
        raise ValueError(f"axis {axis!r} has no side {side!r}; its sides are {AXES[axis].sides}")
    return sides_named(summary, axis) == {side}


# ---------------------------------------------------------------------------------------
# Rendering a reply from the pieces of an item
# ---------------------------------------------------------------------------------------

_BRIDGES = ("Until I know that, here is the general answer:", "In the meantime, the usual advice:",
            "Assuming the common case, though:", "For now, the short version:", "Either way, to start you off:")
_MARKERS = ("- ", "* ", "• ", "number")
_CODE_LEADS = ("", "Here is a small sketch:", "In code:", "A quick snippet:", "To try it:")


@dataclass(frozen=True)
class Style:
    """How to render one reply: a side for every axis that is set (None: not shown)."""

    sides: dict[str, str] = field(default_factory=dict)

    def with_side(self, axis: str, side: str) -> Style:
        return Style({**self.sides, axis: side})


def _sentences(item: StyleItem, style: Style) -> list[str]:
    s = style.sides
    core = getattr(getattr(item.core, s.get("level", "beginner")), s.get("tone", "formal"))
    parts = [core]
    if s.get("length") == "detailed":
        parts += item.detail
    if s.get("example") == "concrete":
        parts.append(item.example)
    elif s.get("example") == "abstract":
        parts.append(item.principle)
    if s.get("numbers") == "numbers":
        parts.append(item.numbers)
    elif s.get("numbers") == "qualitative":
        parts.append(item.qualitative)
    if s.get("caveats") == "caveats":
        parts.append(item.caveat)
    return parts


def render(item: StyleItem, style: Style, layout: random.Random) -> str:
    """The reply for ``item`` in ``style``; ``layout`` picks list markers and bridges (same seed, same text)."""
    parts = _sentences(item, style)
    marker, lead_in = layout.choice(_MARKERS), layout.random() < 0.5
    bridge, code_lead = layout.choice(_BRIDGES), layout.choice(_CODE_LEADS)
    if style.sides.get("format") == "bullets":
        head, items = (parts[0], parts[1:]) if lead_in and len(parts) > 2 else ("", parts)
        lines = [f"{i + 1}. {p}" if marker == "number" else f"{marker}{p}" for i, p in enumerate(items)]
        body = (head + "\n" if head else "") + "\n".join(lines)
    else:
        body = " ".join(parts)
    if style.sides.get("clarify") == "clarify":
        body = f"{item.question} {bridge}\n{body}" if "\n" in body else f"{item.question} {bridge} {body}"
    if style.sides.get("code") == "code" and item.code:
        fence = f"```{item.code_lang}\n{item.code}\n```"
        body = f"{body}\n\n{code_lead}\n{fence}" if code_lead else f"{body}\n\n{fence}"
    return body


def axis_pair(item: StyleItem, axis: str, base: Style, layout_seed: str) -> tuple[str, str]:
    """The two replies of ``item`` on ``axis`` (side 0, side 1), equal in everything else."""
    sides = AXES[axis].sides
    base = base.with_side("length", "detailed") if axis == "format" else base  # a list needs 3+ sentences
    return tuple(render(item, base.with_side(axis, side), random.Random(layout_seed)) for side in sides)  # type: ignore[return-value]


def _base_style(rng: random.Random, axis: str) -> Style:
    """The shared settings of a pair on ``axis``: level, tone and length drawn, extras now and then."""
    sides: dict[str, str] = {"level": rng.choice(AXES["level"].sides), "tone": rng.choice(AXES["tone"].sides),
                             "length": rng.choice(AXES["length"].sides)}
    for extra in ("example", "numbers", "caveats"):
        if rng.random() < 0.2:
            sides[extra] = rng.choice(AXES[extra].sides)
    if rng.random() < 0.2:
        sides["format"] = "bullets"
    sides.pop(axis, None)
    return Style(sides)


# ---------------------------------------------------------------------------------------
# Users, contexts and records
# ---------------------------------------------------------------------------------------


def split_items(items: list[StyleItem], test_share: float, seed: int) -> tuple[list[StyleItem], list[StyleItem]]:
    """Train and test items: ``test_share`` of each domain's prompts go to test, drawn by ``seed``."""
    by_domain: dict[str, list[StyleItem]] = {}
    for item in items:
        by_domain.setdefault(item.id.rsplit("-", 1)[0], []).append(item)
    train: list[StyleItem] = []
    test: list[StyleItem] = []
    for domain in sorted(by_domain):
        group = sorted(by_domain[domain], key=lambda i: i.id)
        random.Random(f"styles/split/{seed}/{domain}").shuffle(group)
        n_test = max(1, round(test_share * len(group)))
        test += group[:n_test]
        train += group[n_test:]
    return train, test


def _eligible(items: list[StyleItem], axis: str) -> list[StyleItem]:
    return [i for i in items if i.code] if axis == "code" else items


def _oriented(item: StyleItem, axis: str, side: str, rng: random.Random, tag: str) -> PreferenceExample:
    """A pair on ``axis`` labelled by a user who prefers ``side``."""
    replies = axis_pair(item, axis, _base_style(rng, axis), f"{tag}/{item.id}/{axis}")
    liked = AXES[axis].sides.index(side)
    return PreferenceExample(prompt=item.prompt, chosen=replies[liked], rejected=replies[1 - liked])


def _draw_user(rng: random.Random, index: int, two_axis_share: float) -> list[tuple[str, str]]:
    """A user's preferences: (axis, side) pairs on one or two distinct axes, balanced over users."""
    first = PREFERENCES[index % len(PREFERENCES)]
    prefs = [first]
    if rng.random() < two_axis_share:
        others = [p for p in PREFERENCES if p[0] != first[0]]
        prefs.append(rng.choice(others))
    return prefs


def _user_records(rng: random.Random, config: StylesConfig, split: str, items: list[StyleItem], index: int,
                  n_targets: int) -> list[TrainingRecord]:
    prefs = _draw_user(rng, index, config.two_axis_share)
    user_id = f"styles-{split}-{index:04d}"
    user_type = "+".join(f"{a}={s}" for a, s in prefs)
    records = []
    for t in range(n_targets):
        agreed = rng.random() < config.agreed_share
        axis, side = prefs[t % len(prefs)]
        target_item = rng.choice(_eligible(items, axis))
        # context: other prompts, spread over the user's axes
        pool = [i for i in items if i.id != target_item.id]
        context_pairs = []
        for c in range(config.n_context):
            c_axis, c_side = prefs[c % len(prefs)]
            c_item = rng.choice([i for i in _eligible(pool, c_axis) if i.prompt not in
                                 {p.prompt for p in context_pairs}])
            context_pairs.append(_oriented(c_item, c_axis, c_side, rng, f"{user_id}/ctx{t}/{c}"))
        tag = f"{user_id}/target{t}"
        if agreed:
            style = _base_style(rng, axis).with_side(axis, side)
            other = rng.choice([i for i in pool if i.id.rsplit("-", 1)[0] != target_item.id.rsplit("-", 1)[0]])
            chosen = render(target_item, style, random.Random(tag))
            rejected = render(other, style, random.Random(tag))
            meta = {"pair_kind": "agreed", "axis": axis, "side": side, "off_topic_item": other.id}
        else:
            pair = _oriented(target_item, axis, side, rng, tag)
            chosen, rejected = pair.chosen, pair.rejected
            meta = {"pair_kind": "axis", "axis": axis, "side": side}
        meta.update({"item": target_item.id, "domain": target_item.id.rsplit("-", 1)[0],
                     "preferences": [list(p) for p in prefs]})
        records.append(TrainingRecord(
            dataset="styles", split=split, user_id=user_id, user_type=user_type,  # type: ignore[arg-type]
            oracle=oracle_text(prefs), context=UserContext(user_id=user_id, examples=context_pairs),
            prompt=target_item.prompt, chosen=chosen, rejected=rejected, controversial=not agreed, meta=meta))
    return records


def flipped_side(axis: str, side: str) -> str:
    """The other side of ``axis``."""
    sides = AXES[axis].sides
    return sides[1 - sides.index(side)]


def twin_records(records: list[TrainingRecord]) -> list[TrainingRecord]:
    """The records of one user's twin: every side flipped, so every context pair and every target
    that users disagree on is reversed; agreed targets stay as they are.

    Trained on a user and their twin, a reward model cannot lower its loss with a prior over replies
    (longer, more formal, ...): on each pair the two users want opposite things, so only reading
    the user's description helps."""
    twins = []
    for record in records:
        prefs = [(a, flipped_side(a, s)) for a, s in record.meta["preferences"]]
        user_id = f"{record.user_id}-twin"
        context = UserContext(user_id=user_id, examples=[
            PreferenceExample(prompt=e.prompt, chosen=e.rejected, rejected=e.chosen) for e in record.context.examples])
        chosen, rejected = ((record.rejected, record.chosen) if record.controversial
                            else (record.chosen, record.rejected))
        meta = {**record.meta, "preferences": [list(p) for p in prefs], "twin_of": record.user_id}
        if record.controversial:
            meta["side"] = flipped_side(record.meta["axis"], record.meta["side"])
        twins.append(record.model_copy(update={
            "user_id": user_id, "user_type": "+".join(f"{a}={s}" for a, s in prefs), "oracle": oracle_text(prefs),
            "context": context, "chosen": chosen, "rejected": rejected, "meta": meta}))
    return twins


class StylesConfig(StrictConfig):
    """Sizes, mix and seed of the styles dataset."""

    n_train: int = Field(default=4000, ge=0, description="Train rows in all.")
    n_test: int = Field(default=400, ge=0, description="Held-out rows (held-out users on held-out prompts).")
    n_context: int = Field(default=8, ge=1, le=16, description="Pairs of the same user in each context.")
    targets_per_user: int = Field(default=4, ge=1, le=16, description="Target rows per user.")
    two_axis_share: float = Field(default=0.3, ge=0, le=1, description="Share of users who prefer a side of two axes.")
    agreed_share: float = Field(default=0.15, ge=0, le=1,
                                description="Share of targets that every user agrees on (on-topic vs off-topic).")
    test_share: float = Field(default=0.2, gt=0, lt=1, description="Share of each domain's prompts held out for test.")
    twins: bool = Field(default=False, description="Train split: follow each user by their twin, who prefers "
                        "every other side (same prompts, pairs reversed), so no reply prior fits the data; test is "
                        "unchanged.")
    seed: int = Field(default=0, description="Seed: same seed, same records.")


def build_styles(config: StylesConfig | None = None, *, items: list[StyleItem] | None = None
                 ) -> dict[str, list[TrainingRecord]]:
    """Train and test records of the styles dataset (held-out users on held-out prompts)."""
    config = config or StylesConfig()
    items = items if items is not None else [i for domain in load_all() for i in domain.items]
    if not items:
        raise ValueError("no styles items found; the package data under plus_sdk/training/data/styles/ is missing")
    train_items, test_items = split_items(items, config.test_share, config.seed)
    splits: dict[str, list[TrainingRecord]] = {}
    for split, pool, n_rows in (("train", train_items, config.n_train), ("test", test_items, config.n_test)):
        if config.n_context >= len(_eligible(pool, "code")) and n_rows:
            raise ValueError(f"n_context={config.n_context} needs more {split} prompts with code than "
                             f"{len(_eligible(pool, 'code'))}; lower n_context or add items")
        rng = random.Random(f"styles/{split}/{config.seed}")
        records: list[TrainingRecord] = []
        user = 0
        twins = config.twins and split == "train"
        while len(records) < n_rows:
            count = min(config.targets_per_user, n_rows - len(records))
            made = _user_records(rng, config, split, pool, user, count)
            records += made
            if twins:
                records += twin_records(made)[: n_rows - len(records)]
            user += 1
        splits[split] = records
    return splits
