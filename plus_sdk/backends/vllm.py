"""vLLM engine (optional extra ``plus-sdk[vllm]``): fast batched generation on GPUs.

Uses vLLM's offline ``LLM`` engine: ``LLM.chat`` renders each conversation with the
model's chat template and generates the whole batch at once; ``SamplingParams`` carries
the decoding settings; a LoRA adapter (e.g. a trained PLUS summarizer) is applied per
request through ``LoRARequest``, so one engine serves the base and several adapters.

``vllm`` is imported only when a ``VLLMBackend`` is built; without it the constructor
raises ``BackendUnavailableError`` saying how to install it.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import Any

from plus_sdk.backends.base import Messages
from plus_sdk.backends.local import adapter_fingerprint
from plus_sdk.models import model_id_of, resolve_model
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'plus-sdk[vllm]'  (vLLM needs a Linux machine with a CUDA GPU)"

_lora_ids = itertools.count(1)


def next_lora_id() -> int:
    """A LoRA id never used before in this process: vLLM caches adapters by id, so two
    adapters (a backend's and a rollout engine's, say) sharing an id would serve stale weights."""
    return next(_lora_ids)


class BackendUnavailableError(ImportError):
    """An optional engine's library is not installed."""


def import_vllm() -> Any:
    """The ``vllm`` module, or ``BackendUnavailableError`` naming the install command."""
    try:
        import vllm  # optional: the vllm extra
    except ImportError as exc:
        raise BackendUnavailableError(f"the vLLM backend needs the vllm package, which is not installed. "
                                      f"Fix: {INSTALL_HINT}") from exc
    return vllm


def sampling_params(sampling: SamplingConfig) -> Any:
    """vLLM ``SamplingParams`` equivalent to a ``SamplingConfig`` (temperature 0 = greedy)."""
    from vllm import SamplingParams  # optional: the vllm extra

    if sampling.do_sample:
        return SamplingParams(max_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                              top_p=sampling.top_p, seed=sampling.seed)
    return SamplingParams(max_tokens=sampling.max_new_tokens, temperature=0.0, seed=sampling.seed)


class VLLMBackend:
    """``ChatBackend`` over a vLLM ``LLM`` engine, optionally with a LoRA adapter."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *, adapter: str | os.PathLike[str] | None = None,
                 enable_lora: bool | None = None, max_lora_rank: int = 64, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, seed: int = 0, batch_size: int = 256,
                 engine_kwargs: dict[str, Any] | None = None, llm: Any = None) -> None:
        import_vllm()
        self.model_name = None if model is None else str(model)
        self.batch_size = batch_size
        if llm is None:
            from vllm import LLM  # optional: the vllm extra

            kwargs: dict[str, Any] = {
                "model": resolve_model(self.model_name), "dtype": dtype, "seed": seed,
                "gpu_memory_utilization": gpu_memory_utilization, "tensor_parallel_size": tensor_parallel_size,
                "enable_lora": adapter is not None if enable_lora is None else enable_lora,
            }
            if kwargs["enable_lora"]:
                kwargs["max_lora_rank"] = max_lora_rank
            if max_model_len is not None:
                kwargs["max_model_len"] = max_model_len
            kwargs.update(engine_kwargs or {})
            logger.info("starting a vLLM engine for %s", kwargs["model"])
            llm = LLM(**kwargs)
        self.llm = llm
        self.base_id = model_id_of(self.model_name)
        self.lora_request = self._lora(adapter) if adapter is not None else None

    @staticmethod
    def _lora(adapter: str | os.PathLike[str]) -> Any:
        from vllm.lora.request import LoRARequest  # optional: the vllm extra

        path = Path(adapter).expanduser()
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"adapter={path} has no adapter_config.json: pass a saved peft LoRA folder")
        name = f"{path.name}-{adapter_fingerprint(path)}"
        return LoRARequest(name, next_lora_id(), str(path))

    def with_adapter(self, adapter: str | os.PathLike[str] | None) -> VLLMBackend:
        """A view of the same engine with another LoRA adapter (or none); no second engine is built."""
        view = object.__new__(VLLMBackend)
        view.model_name, view.batch_size, view.llm, view.base_id = (self.model_name, self.batch_size,
                                                                    self.llm, self.base_id)
        view.lora_request = self._lora(adapter) if adapter is not None else None
        return view

    @property
    def model_id(self) -> str:
        if self.lora_request is None:
            return f"vllm:{self.base_id}"
        return f"vllm:{self.base_id}+{self.lora_request.lora_name}"

    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig | None = None) -> list[str]:
        """One reply per conversation; vLLM schedules the whole batch itself (``sampling`` None: greedy)."""
        sampling = sampling or SamplingConfig()
        if not messages_batch:
            return []
        outputs = self.llm.chat(messages_batch, sampling_params(sampling), use_tqdm=False,
                                lora_request=self.lora_request)
        return [out.outputs[0].text.strip() if out.outputs else "" for out in outputs]
