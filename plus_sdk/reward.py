"""PersonalizedRewardModel: r(prompt, response | summary).

A causal-LM backbone (optionally with a LoRA adapter) reads the conditioning turn (the
user's summary, or an oracle description, or nothing), the prompt, and the response as the
assistant turn; a linear head on the hidden state of the last non-pad token gives the
reward. The head may have more than one output (distributional baselines use 2 or 10).

Every input is tokenized the same canonical way, ``prefix + suffix``: the prefix is the
chat template up to the start of the assistant turn, the suffix the response and its
end-of-turn tokens. Training, scoring and prefix-shared scoring all see identical ids.

Bundles of the encoder path (the embedded default on a CPU) hold no LM adapter: their
``reward/`` folder holds a small head over frozen sentence embeddings, and the model scores
through an ``EncoderScorer`` (``plus_sdk.encoder_reward``) behind the same methods.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plus_sdk import prompts
from plus_sdk.backends.local import LocalModel
from plus_sdk.bundle import open_bundle, write_card
from plus_sdk.encoder_reward import EncoderScorer, is_encoder_reward
from plus_sdk.fast_scoring import device_tokens_per_batch, score_prefix_shared, sharing_pays
from plus_sdk.inputs import SummaryLike, summary_text
from plus_sdk.models import DEFAULT_MODEL
from plus_sdk.types import AdapterCard

logger = logging.getLogger(__name__)

HEAD_FILE = "head.safetensors"
#: Seed of a fresh (untrained) head, so untrained runs are reproducible.
HEAD_INIT_SEED = 0
#: Tokens kept from the start of an over-long prefix (the template's opening).
PREFIX_HEAD_TOKENS = 16



class RewardHead(nn.Module):
    """Linear map from the last hidden state to ``out_features`` reward values."""

    def __init__(self, hidden_size: int, out_features: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, out_features)
        generator = torch.Generator().manual_seed(HEAD_INIT_SEED)
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 1.0 / (hidden_size + 1) ** 0.5, generator=generator)
            self.linear.bias.zero_()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask).argmax(dim=1)


class PersonalizedRewardModel:
    """Scores a response for a user described by a summary."""

    def __init__(self, model: LocalModel | None = None, head: RewardHead | None = None, *,
                 card: AdapterCard | None = None, max_length: int = 1024, batch_size: int = 16,
                 prefix_sharing: bool = True, tokens_per_batch: int | None = None,
                 scorer: EncoderScorer | None = None) -> None:
        """Either ``model`` and ``head`` (a causal-LM reward model) or ``scorer`` (the encoder path)."""
        if scorer is None and (model is None or head is None):
            raise ValueError("give a causal-LM model and head, or an encoder scorer (PersonalizedRewardModel."
                             "from_encoder)")
        self.scorer = scorer
        self.model = model  # type: ignore[assignment]
        self.head = head.to(model.device) if model is not None and head is not None else None  # type: ignore[assignment]
        self.card = card
        self.max_length = max_length
        self.batch_size = batch_size
        #: Score with each (condition, prompt) prefix encoded once (``False``: one full pass per item).
        self.prefix_sharing = prefix_sharing
        #: Token slots per forward batch of the prefix-shared path (bounds memory); None follows the
        #: device (``fast_scoring.device_tokens_per_batch``).
        self.tokens_per_batch = tokens_per_batch
        self._suffix_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(cls, base: str | os.PathLike[str] | None = None, adapter: str | os.PathLike[str] | None = None,
                        *, device: str | None = None, dtype: str | torch.dtype | None = None,
                        out_features: int = 1, **kwargs: Any) -> PersonalizedRewardModel:
        """Load a reward model.

        ``base`` may be a bundle folder (``card.json`` + ``reward/``), a model name or
        folder, or ``None`` for the trained default bundle (or the untrained default base).
        ``adapter`` is a folder holding a LoRA adapter and ``head.safetensors``.
        """
        bundle, card = open_bundle(base, adapter, quiet=kwargs.pop("quiet", False))
        if bundle is not None and card is not None:
            adapter = bundle / "reward"
            base = card.base_model
        if is_encoder_reward(adapter):
            return cls(scorer=EncoderScorer.load_folder(adapter, device=device), card=card, **kwargs)  # type: ignore[arg-type]
        adapter_has_lora = adapter is not None and (Path(adapter) / "adapter_config.json").exists()
        model = LocalModel.load(None if base is None else str(base), adapter if adapter_has_lora else None,
                                role="reward", device=device, dtype=dtype)
        hidden = model.base.model.config.hidden_size
        head_path = Path(adapter) / HEAD_FILE if adapter is not None else None
        if head_path is not None and head_path.exists():
            from safetensors.torch import load_file  # optional at import: loaded when weights are read

            state = load_file(str(head_path))
            head = RewardHead(hidden, state["linear.weight"].shape[0])
            head.load_state_dict(state)
        else:
            if adapter is not None:
                raise FileNotFoundError(f"{adapter} has no {HEAD_FILE}; save reward models with save_pretrained")
            head = RewardHead(hidden, out_features)
            logger.warning("Reward model on %s has an untrained head: its rewards are not meaningful yet",
                           model.base.base_id)
        head = head.to(dtype=model.base.model.dtype)
        return cls(model, head, card=card, **kwargs)

    @classmethod
    def from_encoder(cls, encoder: str | None = None, *, hidden: int = 256, device: str | None = None,
                     card: AdapterCard | None = None) -> PersonalizedRewardModel:
        """A fresh encoder-path reward model (untrained head) on a sentence encoder (None: all-MiniLM-L6-v2)."""
        return cls(scorer=EncoderScorer.create(encoder, hidden=hidden, device=device), card=card)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write the LoRA adapter (if any) and the head into ``folder``."""
        from safetensors.torch import save_file  # optional at import: loaded when weights are read

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.scorer is not None:
            self.scorer.save_pretrained(folder)
            if self.card is not None:
                write_card(folder, self.card)
            return
        if self.model.adapter is not None:
            self.model.base.save_adapter(self.model.adapter, folder)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.head.state_dict().items()}
        tmp = folder / f".{HEAD_FILE}.tmp"
        save_file(state, str(tmp))
        os.replace(tmp, folder / HEAD_FILE)
        if self.card is not None:
            write_card(folder, self.card)

    # ------------------------------------------------------------------ properties
    @property
    def tokenizer(self) -> Any:
        if self.scorer is not None:
            raise TypeError("an encoder-path reward model reads sentence embeddings and has no LM tokenizer")
        return self.model.tokenizer

    @property
    def device(self) -> torch.device:
        return torch.device("cpu") if self.scorer is not None else self.model.device

    @property
    def model_id(self) -> str:
        return self.scorer.model_id if self.scorer is not None else self.model.model_id

    @property
    def trained(self) -> bool:
        return bool(self.card and self.card.trained)

    @property
    def base_name(self) -> str:
        if self.scorer is not None:
            return self.scorer.encoder.name
        return self.model.base.name or DEFAULT_MODEL

    # ------------------------------------------------------------------ tokenization
    def condition_for(self, summary: SummaryLike) -> str | None:
        """The conditioning text for a summary (``None`` means unconditioned)."""
        text = summary_text(summary)
        return prompts.summary_condition(text) if text else None

    def _end_of_turn(self) -> str:
        """What the chat template writes after an assistant message."""
        if "eot" not in self._suffix_cache:
            probe = "PLUSPROBE"
            tok = self.tokenizer
            head = tok.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                           tokenize=False)
            full = tok.apply_chat_template([{"role": "user", "content": "x"},
                                            {"role": "assistant", "content": probe}], tokenize=False)
            tail = full[len(head):] if full.startswith(head) else full[full.rfind(probe):]
            self._suffix_cache["eot"] = tail[tail.find(probe) + len(probe):]
        return self._suffix_cache["eot"]

    def encode_split(self, prompt: str, response: str, condition: str | None = None) -> tuple[list[int], list[int]]:
        """Token ids of (prefix, suffix): the shared part and the response part."""
        tok = self.tokenizer
        messages = prompts.reward_messages(prompt, response, condition=condition)[:1]
        prefix = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        suffix_ids = tok(response + self._end_of_turn(), add_special_tokens=False)["input_ids"]
        return prefix_ids, suffix_ids

    def encode(self, prompt: str, response: str, condition: str | None = None) -> list[int]:
        """Token ids of one scored sequence, truncated to ``max_length`` keeping the response."""
        prefix_ids, suffix_ids = self.encode_split(prompt, response, condition)
        return self.fit(prefix_ids, suffix_ids)

    def fit(self, prefix_ids: list[int], suffix_ids: list[int]) -> list[int]:
        """Join prefix and suffix, cutting the middle of the prefix if over ``max_length``."""
        overflow = len(prefix_ids) + len(suffix_ids) - self.max_length
        if overflow <= 0:
            return prefix_ids + suffix_ids
        logger.warning("A reward-model input has %d tokens > max_length=%d: cutting %d prefix tokens",
                       len(prefix_ids) + len(suffix_ids), self.max_length, overflow)
        keep_tail = max(len(prefix_ids) - PREFIX_HEAD_TOKENS - overflow, 0)
        prefix = prefix_ids[:PREFIX_HEAD_TOKENS] + (prefix_ids[-keep_tail:] if keep_tail else [])
        return (prefix + suffix_ids)[-self.max_length:]

    def collate(self, sequences: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad token id lists into (input_ids, attention_mask) on the model's device."""
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        return ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------ forward / scoring
    def hidden_last(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-token hidden states of the backbone body ``model`` (already activated)."""
        body = self.model.base.decoder(model)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        index = last_token_index(attention_mask)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Head outputs ``[batch, out_features]`` (with gradients when enabled)."""
        with self.model.active() as model:
            last = self.hidden_last(model, input_ids, attention_mask)
        return self.head(last)

    @torch.inference_mode()
    def score_ids(self, sequences: Sequence[list[int]]) -> torch.Tensor:
        """Scalar rewards (first head output) of pre-tokenized sequences, batched by length."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        rewards = torch.empty(len(sequences), dtype=torch.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask = self.collate([sequences[i] for i in chunk])
            rewards[chunk] = self.forward(ids, mask)[:, 0].float().cpu()
        return rewards

    def score(self, summary: SummaryLike, prompt: str, response: str) -> float:
        """r(prompt, response | summary) for one response."""
        return self.score_batch([(summary, prompt, response)])[0]

    def score_batch(self, items: Sequence[tuple[SummaryLike, str, str]], *,
                    prefix_sharing: bool | None = None) -> list[float]:
        """Rewards for many (summary, prompt, response) triples.

        With prefix sharing (the default, see ``plus_sdk.fast_scoring``) each distinct
        (summary, prompt) prefix is encoded once; ``prefix_sharing=False`` scores every
        item as one full sequence (the reference computation, same results).
        """
        if not items:
            return []
        if self.scorer is not None:
            return self.scorer.score_batch(items)
        sharing = self.prefix_sharing if prefix_sharing is None else prefix_sharing
        if not sharing:
            sequences = [self.encode(prompt, response, self.condition_for(summary))
                         for summary, prompt, response in items]
            return self.score_ids(sequences).tolist()
        keys = [self.condition_for(summary) for summary, _, _ in items]  # one encoded head per user
        pairs = self.encode_items(items)
        if not sharing_pays(self.device.type, [len(p) + len(s) for p, s in pairs]):
            return self.score_ids([self.fit(p, s) for p, s in pairs]).tolist()
        return self.score_split(pairs, keys=keys).tolist()

    def encode_items(self, items: Sequence[tuple[SummaryLike, str, str]]) -> list[tuple[list[int], list[int]]]:
        """``encode_split`` of many items, tokenizing each distinct (condition, prompt) prefix once."""
        tok = self.tokenizer
        prefixes: dict[tuple[str | None, str], list[int]] = {}
        for summary, prompt, _ in items:
            key = (self.condition_for(summary), prompt)
            if key not in prefixes:
                messages = prompts.reward_messages(prompt, "", condition=key[0])[:1]
                text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                prefixes[key] = tok(text, add_special_tokens=False)["input_ids"]
        eot = self._end_of_turn()
        suffixes = tok([response + eot for _, _, response in items], add_special_tokens=False)["input_ids"]
        return [(prefixes[(self.condition_for(s), p)], list(ids))
                for (s, p, _), ids in zip(items, suffixes, strict=True)]

    @torch.inference_mode()
    def score_split(self, pairs: Sequence[tuple[list[int], list[int]]],
                    keys: Sequence[Any] | None = None) -> torch.Tensor:
        """Scalar rewards of (prefix_ids, suffix_ids) pairs, each distinct prefix encoded once.

        Items with equal ``keys`` (e.g. conditions) also share the encoding of their prefixes'
        common head. Items longer than ``max_length`` are cut by ``fit`` and scored unshared.
        """
        rewards = torch.empty(len(pairs), dtype=torch.float32)
        fits = [i for i, (p, s) in enumerate(pairs) if len(p) + len(s) <= self.max_length]
        over = [i for i in range(len(pairs)) if len(pairs[i][0]) + len(pairs[i][1]) > self.max_length]
        if over:
            rewards[over] = self.score_ids([self.fit(*pairs[i]) for i in over])
        if fits:
            with self.model.active() as model:
                body = self.model.base.decoder(model)
                rewards[fits] = score_prefix_shared(
                    body, self.head, [pairs[i][0] for i in fits], [pairs[i][1] for i in fits],
                    pad_id=self.tokenizer.pad_token_id, device=self.device,
                    dtype=body.get_input_embeddings().weight.dtype,
                    keys=None if keys is None else [keys[i] for i in fits],
                    tokens_per_batch=self.tokens_per_batch or device_tokens_per_batch(body, self.device,
                                                                                      self.max_length))
        return rewards
