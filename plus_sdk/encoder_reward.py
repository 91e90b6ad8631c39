"""The encoder-path reward model: r(reply | summary, prompt) from frozen sentence embeddings.

The summary z, the prompt x and the reply y are each read by one frozen sentence encoder
(``plus_sdk.encoder``), and a small trained head combines the three vectors:

    q = Q([f(y), f(y) ⊙ e(x), f(y) − e(x)])          what the reply is like, next to its prompt
    u = [e(z), e(z₊) − e(z₋)]                         the summary, and what it prefers over what
    r = G(u) · q / √h  +  w · q  +  α · e(z) · f(y)  +  β · (e(z₊) − e(z₋)) · f(y)

Mean-pooled sentence embeddings barely tell "cats rather than dogs" from "dogs rather than cats",
so a summary is also cut at its first contrast ("rather than", "over", "instead of", "not", ...)
into the part it prefers (z₊) and the part it does not (z₋), and their difference is a feature.

``G(u) · q`` is the personal part (how much this user likes what the reply is like), ``w · q``
the part every user shares (on topic, answers the question), and ``α · e(z) · f(y)`` a plain
similarity between the summary (and its contrast) and the reply, which carries over to users and wordings the head
never saw. With no summary the personal and similarity parts are zero, so the same head is the
BTL baseline when trained without summaries.

Training and judging only compute embeddings once per text (the encoder caches them), so the
head trains in seconds on a CPU. ``EncoderRewardModel`` is a ``PersonalizedRewardModel``: the
judge, the server and bundles use it through the same ``score_batch`` / ``save_pretrained``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from plus_sdk.encoder import SentenceEncoder
from plus_sdk.files import atomic_write_text, umask_mode
from plus_sdk.inputs import SummaryLike, summary_text

HEAD_FILE = "encoder_head.safetensors"
SPEC_FILE = "encoder_reward.json"
#: Seed of a fresh head, so untrained runs are reproducible.
HEAD_INIT_SEED = 0


#: Where a summary turns from what the user prefers to what they do not.
CONTRAST_RE = re.compile(r"\b(?:rather than|instead of|more than|over|than|not|never|without|no)\b", re.IGNORECASE)


def contrast_split(text: str) -> tuple[str, str] | None:
    """(preferred part, dispreferred part) of a summary cut at its first contrast word, or None.

    "likes cats rather than dogs" → ("likes cats", "dogs"); "no code please" → ("", "code please");
    a part may be empty (its embedding then counts as zero)."""
    match = CONTRAST_RE.search(text)
    if match is None:
        return None
    liked, disliked = text[: match.start()].strip(" ,;:-"), text[match.end():].strip(" ,;:.-!")
    return (liked, disliked) if liked or disliked else None


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with GELU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class EncoderRewardHead(nn.Module):
    """r(y | z, x) from the embeddings of the summary, the prompt and the reply (see the module doc)."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(HEAD_INIT_SEED)
        self.dim, self.hidden = dim, hidden
        self.reply = mlp([3 * dim, hidden, hidden])
        self.user = mlp([2 * dim, hidden, hidden])
        self.shared = nn.Linear(hidden, 1)
        self.similarity = nn.Parameter(torch.tensor(0.0))
        self.contrast = nn.Parameter(torch.tensor(0.0))
        torch.random.set_rng_state(generator_state)

    def reply_features(self, prompt: torch.Tensor, reply: torch.Tensor) -> torch.Tensor:
        """q: what the reply is like, next to its prompt ``[B, hidden]``."""
        return self.reply(torch.cat([reply, reply * prompt, reply - prompt], dim=-1))

    def forward(self, summary: torch.Tensor, has_summary: torch.Tensor, prompt: torch.Tensor,
                reply: torch.Tensor) -> torch.Tensor:
        """Rewards ``[B]``; ``summary`` is ``[B, 2·dim]`` (e(z), then e(z₊) − e(z₋)); ``has_summary`` is 1.0
        for rows with a summary, 0.0 for none."""
        q = self.reply_features(prompt, reply)
        personal = (self.user(summary) * q).sum(-1) / self.hidden ** 0.5
        whole, contrast = summary[:, : self.dim], summary[:, self.dim:]
        similar = self.similarity * (whole * reply).sum(-1) + self.contrast * (contrast * reply).sum(-1)
        return self.shared(q).squeeze(-1) + has_summary * (personal + similar)


def is_encoder_reward(folder: str | os.PathLike[str] | None) -> bool:
    """True when ``folder`` (a bundle's ``reward/``) holds an encoder-path head."""
    return folder is not None and (Path(folder) / SPEC_FILE).is_file()


class EncoderScorer:
    """A frozen sentence encoder and a trained ``EncoderRewardHead``: rewards of (summary, prompt, reply)."""

    kind = "encoder"

    def __init__(self, encoder: SentenceEncoder, head: EncoderRewardHead, *, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.head = head.eval()
        self.batch_size = batch_size

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def create(cls, encoder: str | SentenceEncoder | None = None, *, hidden: int = 256,
               device: str | None = None) -> EncoderScorer:
        """A fresh (untrained) scorer on ``encoder`` (a name, a loaded encoder, or None for the default)."""
        if not isinstance(encoder, SentenceEncoder):
            encoder = SentenceEncoder.load(encoder, device=device)
        return cls(encoder, EncoderRewardHead(encoder.dim, hidden))

    @classmethod
    def load_folder(cls, folder: str | os.PathLike[str], *, device: str | None = None,
                    encoder: SentenceEncoder | None = None) -> EncoderScorer:
        """Load ``folder`` (a bundle's ``reward/``): the spec, then the encoder it names, then the head."""
        from safetensors.torch import load_file  # optional at import: loaded when weights are read

        folder = Path(folder)
        spec_path = folder / SPEC_FILE
        try:
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
            name, dim, hidden = spec["encoder"], int(spec["dim"]), int(spec["hidden"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{spec_path} is missing or damaged ({exc.__class__.__name__}: {exc}); export the "
                             "bundle again") from None
        encoder = encoder or SentenceEncoder.load(name, device=device)
        if encoder.dim != dim:
            raise ValueError(f"{folder}: the head was trained on {dim}-d embeddings but encoder {name!r} gives "
                             f"{encoder.dim}-d ones; load the encoder the bundle names")
        head = EncoderRewardHead(dim, hidden)
        try:
            head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"{folder / HEAD_FILE} cannot be read ({str(exc).splitlines()[0]}); export the "
                             "bundle again") from None
        return cls(encoder, head)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write the head and its spec (which encoder, what sizes) into ``folder``."""
        from safetensors.torch import save_file  # optional at import: loaded when weights are read

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.head.state_dict().items()}
        tmp = folder / f".{HEAD_FILE}.tmp"
        save_file(state, str(tmp))
        os.chmod(tmp, umask_mode())  # safetensors writes 0600; a bundle is read by other users too
        os.replace(tmp, folder / HEAD_FILE)
        spec = {"kind": self.kind, "encoder": self.encoder.name, "dim": self.head.dim, "hidden": self.head.hidden}
        atomic_write_text(folder / SPEC_FILE, json.dumps(spec, indent=2))

    @property
    def model_id(self) -> str:
        return f"encoder:{self.encoder.name}"

    # ------------------------------------------------------------------ scoring
    def features(self, items: Sequence[tuple[SummaryLike, str, str]]) -> dict[str, torch.Tensor]:
        """The head's inputs for (summary, prompt, reply) triples: every distinct text encoded once."""
        summaries = [summary_text(s) for s, _, _ in items]
        distinct = sorted({s for s in summaries if s})
        splits = {s: contrast_split(s) for s in distinct}
        parts = sorted({p for pair in splits.values() if pair for p in pair if p})
        texts = distinct + parts + [p for _, p, _ in items] + [r for _, _, r in items]
        vectors = self.encoder.encode(texts)
        dim = self.encoder.dim
        known = dict(zip(distinct + parts, vectors[: len(distinct) + len(parts)], strict=True))
        zero = torch.zeros(dim)
        rows: dict[str, torch.Tensor] = {}
        for text in distinct:
            liked, disliked = splits[text] or ("", "")
            contrast = (known[liked] if liked else zero) - (known[disliked] if disliked else zero)
            rows[text] = torch.cat([known[text], contrast])
        summary = torch.stack([rows[s] if s else torch.zeros(2 * dim) for s in summaries])
        has = torch.tensor([1.0 if s else 0.0 for s in summaries])
        start = len(distinct) + len(parts)
        prompt = vectors[start:start + len(items)]
        reply = vectors[start + len(items):]
        return {"summary": summary, "has_summary": has, "prompt": prompt, "reply": reply}

    @torch.inference_mode()
    def score_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rewards of precomputed features, in batches."""
        n = features["reply"].shape[0]
        out = torch.empty(n)
        for start in range(0, n, self.batch_size):
            part = {k: v[start:start + self.batch_size] for k, v in features.items()}
            out[start:start + self.batch_size] = self.head(part["summary"], part["has_summary"], part["prompt"],
                                                           part["reply"])
        return out

    def score_batch(self, items: Sequence[tuple[SummaryLike, str, str]], *,
                    prefix_sharing: bool | None = None) -> list[float]:
        """Rewards for many (summary, prompt, response) triples (``prefix_sharing`` has no meaning here)."""
        if not items:
            return []
        return self.score_features(self.features(items)).tolist()
