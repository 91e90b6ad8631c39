"""Sampling summaries and scoring them token by token: the rollout half of PPO (read top to bottom).

Numbered by the steps of a co-adaptation iteration (``coadapt.py``, Algorithm 1) that use them:

1. **rollout** — ``summarizer_prompt_ids`` tokenizes a user's context as the summarizer's chat
   prompt, dropping the oldest pairs until it fits; ``left_pad`` batches prompts.
   ``sample_responses`` prefills each prompt once, copies its KV cache for the ``k`` samples of
   that prompt, and samples token by token (temperature, optional top-p). Token ids and masks are
   kept exactly as generated.
3-5. **log-probs** — ``response_logprobs`` runs the prompt once (with gradients when training),
   shares its cache across the ``k`` responses, and returns per-token log-probs and entropies
   (``entropy_from_logits``); ``response_values`` the critic's values (the hidden states a value head
   needs). The reference policy (step 3) is the same base with every adapter off, so no second copy
   of the model exists; steps 4 (old log-probs, values) and 5 (the update's forward) use the adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from plus_sdk import prompts
from plus_sdk.fast_scoring import cache_argument, new_cache
from plus_sdk.types import UserContext


def summarizer_prompt_ids(tokenizer: Any, context: UserContext, task: str, max_tokens: int) -> list[int]:
    """Token ids of the summarizer's chat prompt for ``context``; the oldest pairs go until it fits."""
    while True:
        messages = prompts.summarizer_messages(context, task)
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        if len(ids) <= max_tokens or len(context.examples) <= 1:
            return ids
        context = context.model_copy(update={"examples": list(context.examples[1:])})


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists into (ids, mask)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            ids[row, width - len(seq):] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids, mask


def prompt_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded prompts (pads get 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


# ---------------------------------------------------------------------------------------
# 1. Rollout: sample k responses per prompt, sharing each prompt's KV cache
# ---------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """What sampling produced: prompts (left-padded) and k responses each (right-padded)."""

    prompt_ids: torch.Tensor  # [B, P]
    prompt_mask: torch.Tensor  # [B, P]
    response_ids: torch.Tensor  # [B*k, S]
    response_mask: torch.Tensor  # [B*k, S]; 1 on generated tokens, EOS included
    samples_per_prompt: int

    @property
    def num_responses(self) -> int:
        return int(self.response_ids.shape[0])

    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)


def _forward_body(body: Any, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                  cache: Any) -> tuple[torch.Tensor, Any]:
    """One forward of the transformer body with a KV cache: (hidden states, updated cache)."""
    out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
               **{cache_argument(body): cache})
    return out.last_hidden_state, cache  # the cache object is updated in place


def _prefill(body: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, k: int) -> tuple[Any, torch.Tensor]:
    """Run the prompts once; return their KV cache repeated k times and last hidden states."""
    hidden, cache = _forward_body(body, prompt_ids, prompt_mask, prompt_positions(prompt_mask), new_cache(body))
    if k > 1:
        cache.batch_repeat_interleave(k)
    return cache, hidden[:, -1:].repeat_interleave(k, dim=0)


def _sample_token(logits: torch.Tensor, temperature: float, top_p: float,
                  generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from softmax(logits / T), restricted to the top-p mass."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    # exponential race (argmax of p / E, E ~ Exp(1)) draws from p, on the model's device
    noise = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / noise).argmax(dim=-1)


@torch.no_grad()
def sample_responses(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, *, k: int,
                     max_new_tokens: int, eos_ids: Sequence[int], pad_id: int, temperature: float = 1.0,
                     top_p: float = 1.0, greedy: bool = False,
                     generator: torch.Generator | None = None) -> Rollout:
    """Sample ``k`` responses per prompt; each prompt is run through the model once."""
    device = prompt_ids.device
    n = prompt_ids.shape[0] * k
    body, head = causal_lm_parts(model)
    cache, hidden = _prefill(body, prompt_ids, prompt_mask, k)
    logits = head(hidden)[:, -1]
    mask = prompt_mask.repeat_interleave(k, dim=0)
    start = prompt_mask.sum(-1).repeat_interleave(k, dim=0)
    eos = torch.tensor(list(eos_ids), device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    tokens: list[torch.Tensor] = []
    alive: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        token = logits.argmax(-1) if greedy else _sample_token(logits, temperature, top_p, generator)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        alive.append(~done)
        tokens.append(token)
        done = done | torch.isin(token, eos)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, alive[-1].long().unsqueeze(-1)], dim=-1)
        hidden, cache = _forward_body(body, token.unsqueeze(-1), mask, (start + step).unsqueeze(-1), cache)
        logits = head(hidden)[:, -1]
    response_ids = torch.stack(tokens, dim=1)
    response_mask = torch.stack(alive, dim=1).long()
    return Rollout(prompt_ids, prompt_mask, response_ids, response_mask, k)


# ---------------------------------------------------------------------------------------
# 3-5. Log-probs (reference, policy) and hidden states (critic), prompt run once per group
# ---------------------------------------------------------------------------------------


def _response_hidden(body: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                     response_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Hidden states at the positions that predict each response token: [B*k, S, H]."""
    cache, last_prompt = _prefill(body, prompt_ids, prompt_mask, k)
    start = prompt_mask.sum(-1).repeat_interleave(k, dim=0)
    positions = start.unsqueeze(-1) + torch.arange(response_ids.shape[1], device=response_ids.device)
    mask = torch.cat([prompt_mask.repeat_interleave(k, dim=0), response_mask], dim=-1)
    hidden, _ = _forward_body(body, response_ids, mask, positions, cache)
    return torch.cat([last_prompt, hidden[:, :-1]], dim=1)


def _full_sequence_hidden(body: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          response_ids: torch.Tensor, response_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Like ``_response_hidden`` but in one cache-free forward over prompt + response (the prompt repeated
    k times): what layer-wise gradient checkpointing can recompute."""
    ids = torch.cat([prompt_ids.repeat_interleave(k, dim=0), response_ids], dim=-1)
    mask = torch.cat([prompt_mask.repeat_interleave(k, dim=0), response_mask], dim=-1)
    out = body(input_ids=ids, attention_mask=mask, position_ids=prompt_positions(mask), use_cache=False)
    width = prompt_ids.shape[1]
    return out.last_hidden_state[:, width - 1 : width - 1 + response_ids.shape[1]]


def causal_lm_parts(model: Any) -> tuple[Any, Any]:
    """(transformer body, lm head) of a causal LM, peft-wrapped or not."""
    from peft import PeftModel  # optional: peft, imported on first use (about 0.5 s)

    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    body = inner.get_decoder() if hasattr(inner, "get_decoder") and inner.get_decoder() is not None else inner.model
    return body, inner.get_output_embeddings()


@dataclass
class LogProbs:
    """Per-token log-probs of the taken tokens, with the entropy of each distribution."""

    logprobs: torch.Tensor  # [N, S]
    entropy: torch.Tensor  # [N, S]


def response_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                      response_mask: torch.Tensor, k: int, temperature: float = 1.0, *,
                      share_prefix: bool = True) -> LogProbs:
    """log π(token | prefix) / T-scaled for every response token (with grads if enabled).

    ``share_prefix=False`` runs each prompt + response in one cache-free forward instead of the prompt once
    per group (more compute; what gradient checkpointing needs)."""
    body, head = causal_lm_parts(model)
    hidden_of = _response_hidden if share_prefix else _full_sequence_hidden
    hidden = hidden_of(body, prompt_ids, prompt_mask, response_ids, response_mask, k)
    logits = head(hidden).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    entropy = entropy_from_logits(logits)
    return LogProbs(logprobs * response_mask, entropy * response_mask)


def response_values(model: Any, value_head: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                    response_ids: torch.Tensor, response_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Critic values V(s_t) for every response position: [N, S]."""
    body, _ = causal_lm_parts(model)
    hidden = _response_hidden(body, prompt_ids, prompt_mask, response_ids, response_mask, k)
    return value_head(hidden.to(next(value_head.parameters()).dtype)).squeeze(-1).float() * response_mask


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) along the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
