"""Rollouts on vLLM (optional, ``ppo.rollout_engine: vllm``): sample summaries with a vLLM engine.

Sampling is the slowest phase of co-adaptation on a GPU; vLLM's paged attention and continuous
batching make it several times faster than HF ``generate``. The engine holds its own copy of the
summarizer's base weights. Before sampling, the summarizer's *current* LoRA weights are saved to a
fresh folder and served as a new ``LoRARequest`` (vLLM caches adapters by id, so each policy
version gets a new id). Completions come back as token ids, exactly as generated, and are packed
into the same ``Rollout`` that the HF path returns. Log-probs are then recomputed by the training
model; vLLM's own log-probs are never used, so the PPO ratios refer to the trained weights.

``vllm`` is imported when the engine is built; without it the error names the install command.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from plus_sdk.backends.vllm import import_vllm, next_lora_id
from plus_sdk.training.ppo.rollout import Rollout

#: Adapter folders kept on disk (the one being served and the previous one).
KEEP_VERSIONS = 2


def pack_rollout(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, responses: Sequence[Sequence[int]],
                 k: int, pad_id: int) -> Rollout:
    """A ``Rollout`` from left-padded prompts and ``len(prompts) * k`` token lists (prompt-major order)."""
    if len(responses) != prompt_ids.shape[0] * k:
        raise ValueError(f"expected {prompt_ids.shape[0] * k} responses ({prompt_ids.shape[0]} prompts x k={k}), "
                         f"got {len(responses)}")
    width = max(1, max((len(r) for r in responses), default=0))
    response_ids = torch.full((len(responses), width), pad_id, dtype=torch.long)
    response_mask = torch.zeros((len(responses), width), dtype=torch.long)
    for row, tokens in enumerate(responses):
        if tokens:
            response_ids[row, : len(tokens)] = torch.tensor(list(tokens), dtype=torch.long)
            response_mask[row, : len(tokens)] = 1
    device = prompt_ids.device
    return Rollout(prompt_ids, prompt_mask, response_ids.to(device), response_mask.to(device), k)


class VLLMRolloutEngine:
    """A vLLM ``LLM`` that samples with the summarizer's latest LoRA weights."""

    def __init__(self, model_path: str, workdir: str | Path, *, max_lora_rank: int,
                 gpu_memory_utilization: float, dtype: str = "auto", seed: int = 0,
                 max_model_len: int | None = None, llm: Any = None) -> None:
        """``llm``: an already running ``vllm.LLM`` with LoRA enabled (e.g. a ``VLLMBackend``'s) to
        sample with instead of starting a second engine; the other engine options are then unused."""
        vllm = import_vllm()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if llm is None:
            options: dict[str, Any] = {"model": model_path, "enable_lora": True, "max_lora_rank": max_lora_rank,
                                       "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype, "seed": seed}
            if max_model_len is not None:
                options["max_model_len"] = max_model_len
            llm = vllm.LLM(**options)
        self.llm = llm
        self.version = 0
        self.request: Any = None

    def publish(self, base: Any, adapter: str) -> Any:
        """Save ``adapter``'s current weights from ``base`` and make them the served version."""
        from vllm.lora.request import LoRARequest  # vllm: optional dependency (plus-sdk[vllm])

        self.version += 1
        folder = self.workdir / f"v{self.version:06d}"
        shutil.rmtree(folder, ignore_errors=True)
        base.save_adapter(adapter, folder)
        stale = self.workdir / f"v{self.version - KEEP_VERSIONS:06d}"
        shutil.rmtree(stale, ignore_errors=True)
        self.request = LoRARequest(f"{adapter}-v{self.version}", next_lora_id(), str(folder))
        return self.request

    def sample(self, prompt_token_ids: Sequence[Sequence[int]], *, k: int, max_new_tokens: int,
               temperature: float, top_p: float, greedy: bool, seed: int | None = None) -> list[list[int]]:
        """``k`` completions per prompt (1 when greedy), as token id lists in prompt-major order."""
        from vllm import SamplingParams  # vllm: optional dependency (plus-sdk[vllm])

        if self.request is None:
            raise RuntimeError("publish() the summarizer adapter before sampling")
        params = SamplingParams(n=1 if greedy else k, max_tokens=max_new_tokens,
                                temperature=0.0 if greedy else temperature, top_p=1.0 if greedy else top_p,
                                seed=seed)
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_token_ids]
        outputs = self.llm.generate(prompts, params, lora_request=self.request, use_tqdm=False)
        return [list(completion.token_ids) for output in outputs for completion in output.outputs]
