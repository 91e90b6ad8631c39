"""The encoder-path summarizer: a user's context read through a frozen sentence encoder, the summary
written by SmolLM2 (+ LoRA) from a few soft tokens.

    context items ──encoder──▶ pooled features ──regress──▶ ê (where the description's embedding should be)
    ê ──project──▶ k soft tokens ──▶ the LM, between a short instruction ──▶ summary text

- **Features** (``ContextReader.features``): for pairs the mean of q(x, chosen) − q(x, rejected),
  where q is the reward model's reply tower (frozen, copied into the reader: it has learned what
  matters in a reply), and the mean of e(chosen) − e(rejected), which points from what the user
  rejects to what they pick; for conversations the mean embedding of the user's
  own turns; for a guideline or profile its embedding; and three flags saying which are present.
  The cost does not grow with the context beyond one cached embedding per item: a user with 500
  pairs costs the LM what a user with 4 costs.
- **ê** is trained to land on the sentence embedding of a description of the user (cosine loss on
  the hand-written wordings), so the soft tokens carry the user's side whatever the context held.
- **Soft tokens** enter the LM as token ids past its vocabulary: ``SoftEmbedding`` replaces the
  input embedding layer and looks those ids up in a per-batch table. Generation, log-probs and the
  PPO update therefore run on plain token ids, unchanged.
- **Hints** (optional): a reader may hold a bank of known descriptions (their texts in the spec,
  their unit embeddings in the weights). The ``hints`` texts nearest to ê are written after the soft
  tokens as one line of the prompt, so the LM can copy a description instead of decoding ê. A
  reader without a bank renders exactly the prompt it always did.

``ContextReader`` holds the two small networks; ``ReaderBackend`` is what ``Summarizer`` drives for
a bundle of this kind (``summarizer/reader.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plus_sdk.backends.local import LocalModel, generate_options
from plus_sdk.encoder import SentenceEncoder
from plus_sdk.encoder_reward import mlp
from plus_sdk.files import atomic_write_text, umask_mode
from plus_sdk.types import SamplingConfig, UserContext

READER_FILE = "reader.safetensors"
READER_SPEC = "reader.json"
#: Soft tokens per context.
SOFT_TOKENS = 4
#: Where the soft tokens go in the instruction.
SLOT = "<context>"
SYSTEM = "Describe what this user likes in replies."
INSTRUCTION = SLOT
#: Leads the line of hints after the soft tokens.
HINTS_LEAD = "Closest known descriptions:"


def is_reader(folder: str | os.PathLike[str] | None) -> bool:
    """True when ``folder`` (a bundle's ``summarizer/``) holds an encoder-path context reader."""
    return folder is not None and (Path(folder) / READER_SPEC).is_file()


def feature_size(dim: int) -> int:
    """Width of ``context_features`` for an encoder of width ``dim``."""
    return 3 * dim + 3


def pair_differences(encoder: SentenceEncoder, tower: nn.Module, contexts: Sequence[UserContext], *,
                     progress: bool = False) -> torch.Tensor:
    """Mean of q(x, chosen) − q(x, rejected) over each context's pairs ``[n, tower width]`` (zeros: no pairs)."""
    rows = [(e.prompt, e.chosen, e.rejected) for c in contexts for e in c.examples]
    width = int(tower[-1].out_features)  # type: ignore[index]
    out = torch.zeros(len(contexts), width)
    if not rows:
        return out
    prompts_, chosen, rejected = (encoder.encode([r[i] for r in rows], progress=progress) for i in range(3))
    with torch.no_grad():
        diff = (tower(torch.cat([chosen, chosen * prompts_, chosen - prompts_], -1))
                - tower(torch.cat([rejected, rejected * prompts_, rejected - prompts_], -1)))
    start = 0
    for row, context in enumerate(contexts):
        count = len(context.examples)
        if count:
            out[row] = diff[start:start + count].mean(0)
        start += count
    return out


def context_features(encoder: SentenceEncoder, contexts: Sequence[UserContext], *,
                     progress: bool = False) -> torch.Tensor:
    """Pooled features ``[n, 3·dim + 3]`` of contexts (see the module doc); every text encoded once."""
    texts: list[str] = []
    for context in contexts:
        for example in context.examples:
            texts += [example.chosen, example.rejected]
        texts += [t.content for c in context.conversations for t in c.turns if t.role == "user"]
        stated = stated_text(context)
        if stated:
            texts.append(stated)
    vectors = dict(zip(texts, encoder.encode(texts, progress=progress), strict=True)) if texts else {}
    dim = encoder.dim
    out = torch.zeros(len(contexts), feature_size(dim))
    for row, context in enumerate(contexts):
        if context.examples:
            diffs = [vectors[e.chosen] - vectors[e.rejected] for e in context.examples]
            out[row, :dim] = torch.stack(diffs).mean(0)
            out[row, 3 * dim] = 1.0
        turns = [vectors[t.content] for c in context.conversations for t in c.turns if t.role == "user"]
        if turns:
            out[row, dim:2 * dim] = torch.stack(turns).mean(0)
            out[row, 3 * dim + 1] = 1.0
        stated = stated_text(context)
        if stated:
            out[row, 2 * dim:3 * dim] = vectors[stated]
            out[row, 3 * dim + 2] = 1.0
    return out


def stated_text(context: UserContext) -> str | None:
    """What the user stated about themselves (guidelines, then the profile as ``key: value`` lines)."""
    parts = [context.guidelines] if context.guidelines else []
    if context.profile:
        parts += [f"{key}: {value}" for key, value in context.profile.items()]
    return "\n".join(parts) if parts else None


class ContextReader(nn.Module):
    """features → ê (unit length, in the encoder's space) → ``SOFT_TOKENS`` vectors of the LM's width.

    ``pair_hidden``: width of the frozen reply tower ``pairs`` (a copy of the reward head's), whose
    chosen-minus-rejected outputs lead the features."""

    def __init__(self, dim: int, d_model: int, *, k: int = SOFT_TOKENS, hidden: int = 512,
                 embed_rms: float = 1.0, pair_hidden: int = 256) -> None:
        super().__init__()
        self.dim, self.d_model, self.k, self.hidden, self.pair_hidden = dim, d_model, k, hidden, pair_hidden
        self.pairs = mlp([3 * dim, pair_hidden, pair_hidden]).requires_grad_(False)
        self.regress = mlp([pair_hidden + feature_size(dim), hidden, dim])
        self.project = mlp([dim, hidden, k * d_model])
        self.register_buffer("embed_rms", torch.tensor(float(embed_rms)))
        self.hint_texts: list[str] = []
        self.hint_count = 0

    def set_hints(self, texts: Sequence[str], vectors: torch.Tensor, count: int) -> None:
        """Hold a bank of known descriptions: ``texts`` and their unit embeddings ``vectors`` ``[G, dim]``;
        ``count`` of them (the nearest to ê) are shown per prompt."""
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(f"a hint bank of {len(texts)} texts needs vectors of shape ({len(texts)}, {self.dim}), "
                             f"got {tuple(vectors.shape)}")
        self.hint_texts = list(texts)
        self.hint_count = int(count)
        self.register_buffer("bank", nn.functional.normalize(vectors.detach().float(), dim=-1))

    def hints(self, described: torch.Tensor, n: int | None = None) -> list[list[str]]:
        """Per row of ``described`` (ê or e(text)), the texts of the ``n`` bank entries of highest cosine,
        distinct and best first (``n``: the reader's own count; none without a bank)."""
        n = self.hint_count if n is None else n
        if not self.hint_texts or n <= 0:
            return [[] for _ in range(described.shape[0])]
        with torch.no_grad():
            bank = self.get_buffer("bank")
            cosine = nn.functional.normalize(described.float().to(bank.device), dim=-1) @ bank.T
            order = cosine.argsort(-1, descending=True)
        out: list[list[str]] = []
        for row in order.tolist():
            texts: list[str] = []
            for index in row:
                if self.hint_texts[index] not in texts:
                    texts.append(self.hint_texts[index])
                if len(texts) == n:
                    break
            out.append(texts)
        return out

    def features(self, encoder: SentenceEncoder, contexts: Sequence[UserContext], *,
                 progress: bool = False) -> torch.Tensor:
        """The regressor's inputs: pair differences through ``pairs``, then ``context_features``."""
        return torch.cat([pair_differences(encoder, self.pairs, contexts, progress=progress),
                          context_features(encoder, contexts, progress=progress)], -1)

    def describe(self, features: torch.Tensor) -> torch.Tensor:
        """ê: where the embedding of this user's description should be ``[n, dim]``."""
        return nn.functional.normalize(self.regress(features), dim=-1)

    def soft_tokens(self, described: torch.Tensor) -> torch.Tensor:
        """Soft tokens ``[n, k, d_model]`` from description embeddings (ê, or e(text) when training)."""
        raw = self.project(described).view(-1, self.k, self.d_model)
        return raw * self.embed_rms / raw.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()

    def spec(self) -> dict[str, Any]:
        spec = {"kind": "encoder", "dim": self.dim, "d_model": self.d_model, "k": self.k, "hidden": self.hidden,
                "pair_hidden": self.pair_hidden}
        if self.hint_texts:  # a reader without a bank writes the spec it always did
            spec.update(hints=self.hint_count, hint_texts=self.hint_texts)
        return spec


class SoftEmbedding(nn.Module):
    """The LM's input embedding, plus ids ≥ vocabulary size looked up in ``table`` (set per batch)."""

    def __init__(self, base: nn.Embedding) -> None:
        super().__init__()
        self.base = base
        self.vocab = int(base.num_embeddings)
        self.table: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:  # tied output heads and size checks read the real matrix
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.vocab

    @property
    def embedding_dim(self) -> int:
        return int(self.base.embedding_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        soft = ids >= self.vocab
        out = self.base(ids.masked_fill(soft, 0))
        if bool(soft.any()):
            if self.table is None:
                raise RuntimeError("soft token ids were given but no soft-token table is set")
            rows = self.table[(ids[soft] - self.vocab)].to(out.dtype)
            out = out.masked_scatter(soft.unsqueeze(-1), rows)
        return out


def install_soft_embedding(model: Any) -> SoftEmbedding:
    """Put a ``SoftEmbedding`` in place of ``model``'s input embedding (once; returns it)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    current = inner.get_input_embeddings()
    if isinstance(current, SoftEmbedding):
        return current
    soft = SoftEmbedding(current)
    inner.set_input_embeddings(soft)
    return soft


@contextlib.contextmanager
def soft_table(embedding: SoftEmbedding, table: torch.Tensor) -> Iterator[None]:
    """Soft tokens ``table`` ``[n·k, d_model]`` visible to the LM for the duration."""
    embedding.table = table
    try:
        yield
    finally:
        embedding.table = None


def hint_line(hints: Sequence[str]) -> str:
    """The line of the prompt that shows ``hints``: ``Closest known descriptions: 1) … 2) …``."""
    return " ".join([HINTS_LEAD] + [f"{i}) {text.strip()}" for i, text in enumerate(hints, start=1)])


def instruction(hints: Sequence[str] = ()) -> str:
    """The user turn: the soft-token slot, then the line of hints when there are any."""
    return f"{INSTRUCTION}\n{hint_line(hints)}" if hints else INSTRUCTION


def prompt_ids(tokenizer: Any, vocab: int, slot: int, k: int = SOFT_TOKENS, hints: Sequence[str] = ()) -> list[int]:
    """Token ids of the summarizer prompt whose soft tokens are rows ``slot·k … slot·k + k − 1`` of the table,
    with the line of ``hints`` after them (none: the bare instruction)."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": instruction(hints)}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    before, after = text.split(SLOT, 1)
    ids_before = tokenizer(before, add_special_tokens=False)["input_ids"]
    ids_after = tokenizer(after, add_special_tokens=False)["input_ids"]
    return ids_before + [vocab + slot * k + j for j in range(k)] + ids_after


def move_slot(slot0_ids: list[int], vocab: int, slot: int, k: int = SOFT_TOKENS) -> list[int]:
    """The ids of ``prompt_ids(..., slot=0)`` with its soft tokens pointed at ``slot`` instead."""
    return [i + slot * k if i >= vocab else i for i in slot0_ids]


class PromptCache:
    """``prompt_ids`` for any slot and hints: each distinct list of hints is rendered and tokenized once,
    then only the soft ids move."""

    def __init__(self, tokenizer: Any, vocab: int, k: int = SOFT_TOKENS) -> None:
        self.tokenizer, self.vocab, self.k = tokenizer, vocab, k
        self._slot0: dict[tuple[str, ...], list[int]] = {}

    def ids(self, slot: int, hints: Sequence[str] = ()) -> list[int]:
        key = tuple(hints)
        if key not in self._slot0:
            self._slot0[key] = prompt_ids(self.tokenizer, self.vocab, 0, self.k, key)
        return move_slot(self._slot0[key], self.vocab, slot, self.k)


def save_reader(reader: ContextReader, encoder_name: str, folder: str | os.PathLike[str]) -> None:
    """Write the reader's weights and spec into ``folder`` (next to the LoRA adapter)."""
    from safetensors.torch import save_file  # optional at import: loaded when weights are read

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in reader.state_dict().items()}
    tmp = folder / f".{READER_FILE}.tmp"
    save_file(state, str(tmp))
    os.chmod(tmp, umask_mode())  # safetensors writes 0600; a bundle is read by other users too
    os.replace(tmp, folder / READER_FILE)
    atomic_write_text(folder / READER_SPEC, json.dumps({**reader.spec(), "encoder": encoder_name}, indent=2))


def load_reader(folder: str | os.PathLike[str]) -> tuple[ContextReader, str]:
    """The reader saved in ``folder`` and the name of its encoder."""
    from safetensors.torch import load_file  # optional at import: loaded when weights are read

    folder = Path(folder)
    try:
        spec = json.loads((folder / READER_SPEC).read_text(encoding="utf-8"))
        reader = ContextReader(int(spec["dim"]), int(spec["d_model"]), k=int(spec["k"]), hidden=int(spec["hidden"]),
                               pair_hidden=int(spec["pair_hidden"]))
        texts = [str(t) for t in spec.get("hint_texts") or []]
        if texts:  # the bank's vectors are in the weights file
            reader.set_hints(texts, torch.zeros(len(texts), reader.dim), int(spec["hints"]))
        reader.load_state_dict(load_file(str(folder / READER_FILE)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{folder} holds a damaged context reader ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0]}); export the bundle again") from None
    return reader.eval(), str(spec.get("encoder") or "all-minilm-l6-v2")


class ReaderBackend:
    """What ``Summarizer`` drives for an encoder-path bundle: contexts in, summary texts out."""

    reads_contexts = True

    def __init__(self, model: LocalModel, reader: ContextReader, encoder: SentenceEncoder, *,
                 batch_size: int = 16) -> None:
        self.model = model
        self.reader = reader
        self.encoder = encoder
        self.batch_size = batch_size
        with model.active() as lm:
            self.embedding = install_soft_embedding(lm)
        self.prompts = PromptCache(model.tokenizer, self.embedding.vocab, reader.k)

    @property
    def model_id(self) -> str:
        return f"{self.model.model_id}+reader:{self.encoder.name}"

    def prompt(self, slot: int, hints: Sequence[str] = ()) -> list[int]:
        """``prompt_ids`` for ``slot`` and ``hints`` (rendered once per distinct hints; only the soft ids move)."""
        return self.prompts.ids(slot, hints)

    @torch.inference_mode()
    def read(self, contexts: Sequence[UserContext], sampling: SamplingConfig) -> list[str]:
        """Raw generated texts, one per context, in order."""
        tok = self.model.tokenizer
        outputs: list[str] = []
        for start in range(0, len(contexts), self.batch_size):
            chunk = list(contexts[start:start + self.batch_size])
            described = self.reader.describe(self.reader.features(self.encoder, chunk))
            soft = self.reader.soft_tokens(described)
            rows = [self.prompt(i, hints) for i, hints in enumerate(self.reader.hints(described))]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows], device=self.model.device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.model.device)
            kwargs = generate_options(tok, sampling)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            with self.model.active() as lm, soft_table(self.embedding, soft.reshape(-1, soft.shape[-1])):
                generated = lm.generate(input_ids=ids, attention_mask=mask, **kwargs)
            outputs += [t.strip() for t in tok.batch_decode(generated[:, width:], skip_special_tokens=True)]
        return outputs
