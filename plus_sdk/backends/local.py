"""Local engine: transformers models with peft LoRA adapters.

A ``SharedBase`` holds one base model in memory; each role (summarizer, reward model,
generator, critic) is a named LoRA adapter on it, or the bare base. ``LocalModel`` is one
role's view: it switches the right adapter on (or all adapters off) around every forward
pass, so several roles share one copy of the weights. ``LocalBackend`` generates text
with left-padded batches and a KV cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from plus_sdk.backends.base import Messages
from plus_sdk.cancel import cancelled, raise_if_cancelled
from plus_sdk.models import check_adapter_folder, load_causal_lm, load_tokenizer, model_id_of, resolve_model
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)


def adapter_fingerprint(path: str | Path) -> str:
    """A short hash of a saved adapter's weights: part of cache keys."""
    folder = Path(path)
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.json")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


class SharedBase:
    """One base model in memory, with any number of named LoRA adapters."""

    _pool: ClassVar[dict[tuple[str, str, str], SharedBase]] = {}
    _pool_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: Any, tokenizer: Any, name: str | None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.base_id = model_id_of(name)
        self.lock = threading.RLock()
        self.adapters: dict[str, str] = {}  # adapter name -> fingerprint

    @classmethod
    def load(cls, name: str | None = None, *, device: str | None = None,
             dtype: str | torch.dtype | None = None, share: bool = True) -> SharedBase:
        """Load a base model, reusing one already loaded with the same settings."""
        key = (resolve_model(name), str(device), str(dtype))
        with cls._pool_lock:
            if share and key in cls._pool:
                return cls._pool[key]
            base = cls(load_causal_lm(name, device=device, dtype=dtype), load_tokenizer(name), name)
            if share:
                cls._pool[key] = base
            return base

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def add_adapter(self, path: str | Path, name: str, *, trainable: bool = False) -> str:
        """Load a saved LoRA adapter under ``name`` (a no-op if already loaded)."""
        from peft import PeftModel

        check_adapter_folder(path)
        with self.lock:
            fingerprint = adapter_fingerprint(path)
            if self.adapters.get(name) == fingerprint:
                return name
            if isinstance(self.model, PeftModel):
                if name in self.model.peft_config:
                    self.model.delete_adapter(name)
                self.model.load_adapter(str(path), adapter_name=name, is_trainable=trainable)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name,
                                                       is_trainable=trainable)
            if not trainable:
                self.model.eval()
            self.adapters[name] = fingerprint
            return name

    def add_new_adapter(self, name: str, lora_config: Any) -> None:
        """Create a fresh trainable LoRA adapter under ``name``."""
        from peft import PeftModel, get_peft_model

        with self.lock:
            if isinstance(self.model, PeftModel):
                self.model.add_adapter(name, lora_config)
            else:
                self.model = get_peft_model(self.model, lora_config, adapter_name=name)
            self.adapters[name] = "new"

    def save_adapter(self, name: str, folder: str | Path) -> None:
        """Save the LoRA adapter ``name`` flat into ``folder`` (peft nests non-default ones)."""
        import os

        folder = Path(folder)
        self.model.save_pretrained(str(folder), selected_adapters=[name])
        nested = folder / name
        if nested.is_dir():
            for file in nested.iterdir():
                os.replace(file, folder / file.name)
            nested.rmdir()
        (folder / "README.md").unlink(missing_ok=True)  # peft's stub card names this machine's cache path

    @contextlib.contextmanager
    def use(self, adapter: str | None) -> Iterator[Any]:
        """The model with ``adapter`` active, or with every adapter off when ``None``."""
        from peft import PeftModel

        with self.lock:
            if not isinstance(self.model, PeftModel):
                yield self.model
            elif adapter is None:
                with self.model.disable_adapter():
                    yield self.model
            else:
                self.model.set_adapter(adapter)
                yield self.model

    def decoder(self, model: Any) -> Any:
        """The transformer body (no LM head) of ``model``; LoRA layers live inside it."""
        from peft import PeftModel

        inner = model.get_base_model() if isinstance(model, PeftModel) else model
        if hasattr(inner, "get_decoder") and inner.get_decoder() is not None:
            return inner.get_decoder()
        return inner.model


class LocalModel:
    """One role's view of a ``SharedBase``: the base plus at most one adapter."""

    def __init__(self, base: SharedBase, adapter: str | None = None) -> None:
        self.base = base
        self.adapter = adapter

    @classmethod
    def load(cls, name: str | None = None, adapter: str | Path | None = None, *, role: str = "default",
             device: str | None = None, dtype: str | torch.dtype | None = None) -> LocalModel:
        base = SharedBase.load(name, device=device, dtype=dtype)
        adapter_name = base.add_adapter(adapter, role) if adapter is not None else None
        return cls(base, adapter_name)

    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer

    @property
    def device(self) -> torch.device:
        return self.base.device

    @property
    def model_id(self) -> str:
        if self.adapter is None:
            return self.base.base_id
        return f"{self.base.base_id}+{self.adapter}@{self.base.adapters[self.adapter]}"

    def active(self) -> contextlib.AbstractContextManager[Any]:
        """Context manager yielding the model with this role's adapter switched on."""
        return self.base.use(self.adapter)

    def count_tokens(self, messages: Messages) -> int:
        """Tokens of ``messages`` rendered with the chat template and a generation prompt."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


class TextStop:
    """Stopping criterion: a row is finished once ``done(decoded new text)`` is true.

    Rows that finish early are padded by ``generate`` like rows that emitted EOS; the whole
    batch ends as soon as every row is finished, which is what saves time on a CPU (one
    decoding step costs about the same for one row or eight).
    """

    def __init__(self, tokenizer: Any, prompt_width: int, done: Callable[[str], bool]) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.done = done

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        return torch.tensor([self.done(text) for text in texts], dtype=torch.bool, device=input_ids.device)


class CancelStop:
    """Stopping criterion: every row is done once the current request is cancelled (``plus_sdk.cancel``)."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), cancelled(), dtype=torch.bool, device=input_ids.device)


class LocalBackend:
    """``ChatBackend`` over a local model: left-padded batched generation with a KV cache.

    Prompts are sorted by length before batching (length bucketing: little padding), and an
    optional ``stop`` predicate ends each row as soon as its text is complete.
    """

    def __init__(self, model: LocalModel, *, batch_size: int = 8) -> None:
        self.model = model
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def render(self, messages_batch: list[Messages]) -> list[str]:
        tok = self.model.tokenizer
        return [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages_batch]

    @torch.inference_mode()
    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig, *,
             stop: Callable[[str], bool] | None = None) -> list[str]:
        """Replies to many conversations, in the order given.

        ``stop``: called on each row's text so far; ``True`` ends that row (e.g. a summary
        that is complete), in addition to the end-of-turn token and ``max_new_tokens``.
        """
        tok = self.model.tokenizer
        texts = self.render(messages_batch)
        lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []
        order = sorted(range(len(texts)), key=lambda i: lengths[i])  # length bucketing
        outputs: list[str] = [""] * len(texts)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            chunk = [texts[i] for i in rows]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
            kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens, "do_sample": sampling.do_sample,
                                      "pad_token_id": tok.pad_token_id}
            if sampling.do_sample:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            from transformers import StoppingCriteriaList

            criteria: list[Any] = [CancelStop()]  # a cancelled request (client gone) stops at the next token
            if stop is not None:
                criteria.append(TextStop(tok, enc["input_ids"].shape[1], stop))
            kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
            with self.model.active() as model:
                generated = model.generate(**enc, **kwargs)
            raise_if_cancelled()
            new_tokens = generated[:, enc["input_ids"].shape[1]:]
            for row, text in zip(rows, tok.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                outputs[row] = text
        return [text.strip() for text in outputs]
