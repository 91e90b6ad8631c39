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
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from plus_sdk import batching
from plus_sdk.backends.base import Messages
from plus_sdk.cancel import cancelled, raise_if_cancelled
from plus_sdk.models import check_adapter_folder, load_causal_lm, load_tokenizer, model_id_of, resolve_model
from plus_sdk.quiet import quiet_loading
from plus_sdk.types import SamplingConfig


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

    @quiet_loading()
    def add_adapter(self, path: str | Path, name: str, *, trainable: bool = False) -> str:
        """Load a saved LoRA adapter under ``name`` (a no-op if already loaded)."""
        from peft import PeftModel  # optional at import: loaded with the first model

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

    @quiet_loading()
    def add_new_adapter(self, name: str, lora_config: Any) -> None:
        """Create a fresh trainable LoRA adapter under ``name``."""
        from peft import PeftModel, get_peft_model  # optional at import: loaded with the first model

        with self.lock:
            if isinstance(self.model, PeftModel):
                self.model.add_adapter(name, lora_config)
            else:
                self.model = get_peft_model(self.model, lora_config, adapter_name=name)
            self.adapters[name] = "new"

    @quiet_loading()
    def save_adapter(self, name: str, folder: str | Path) -> None:
        """Save the LoRA adapter ``name`` flat into ``folder`` (peft nests non-default ones)."""
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
        from peft import PeftModel  # optional at import: loaded with the first model

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
        from peft import PeftModel  # optional at import: loaded with the first model

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

    The text grows incrementally: each step decodes only the row's newest tokens (a window
    that starts a few tokens back so merged pieces and multi-byte characters come out right),
    so the cost per step is O(rows), not O(rows x new tokens) as with decoding every row's
    whole text. Rows that finish early are padded by ``generate`` like rows that emitted EOS;
    the whole batch ends as soon as every row is finished, which is what saves time on a CPU
    (one decoding step costs about the same for one row or eight).
    """

    def __init__(self, tokenizer: Any, prompt_width: int, done: Callable[[str], bool]) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.done = done
        self.rows: list[IncrementalText] = []
        self.finished: list[bool] = []
        self.seen = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if not self.rows:
            self.rows = [IncrementalText(self.tokenizer) for _ in range(input_ids.shape[0])]
            self.finished = [False] * input_ids.shape[0]
        new = input_ids[:, self.prompt_width + self.seen:].tolist()  # usually one token per row
        self.seen += len(new[0]) if new else 0
        for row, tokens in enumerate(new):
            if not self.finished[row]:
                self.finished[row] = self.done(self.rows[row].add(tokens))
        return torch.tensor(self.finished, dtype=torch.bool, device=input_ids.device)


class IncrementalText:
    """The decoded text of a growing token list, decoding only a short window per new token.

    ``text`` always equals ``decode(tokens)`` except that a trailing incomplete character
    (a byte-level piece of a multi-byte letter) waits until its last byte arrives.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.text = ""
        self.start = 0  # window start: decoding from here reproduces the text's tail
        self.done_at = 0  # tokens already turned into text

    def decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def add(self, tokens: list[int]) -> str:
        """Append ``tokens`` and return the whole text so far."""
        self.tokens.extend(tokens)
        before = self.decode(self.tokens[self.start:self.done_at])
        after = self.decode(self.tokens[self.start:])
        if after.endswith("\ufffd"):
            return self.text  # an incomplete character: wait for its remaining bytes
        if after.startswith(before):
            self.text += after[len(before):]
        else:  # the tokenizer rewrote the window's start (clean-up rules): decode everything once
            self.text = self.decode(self.tokens)
        self.start, self.done_at = self.done_at, len(self.tokens)
        return self.text


class CancelStop:
    """Stopping criterion: every row is done once the current request is cancelled (``plus_sdk.cancel``)."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), cancelled(), dtype=torch.bool, device=input_ids.device)


def generate_options(tokenizer: Any, sampling: SamplingConfig) -> dict[str, Any]:
    """``model.generate`` keyword arguments for ``sampling`` (greedy unsets the sampling knobs)."""
    kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens, "do_sample": sampling.do_sample,
                              "pad_token_id": tokenizer.pad_token_id}
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


class LocalBackend:
    """``ChatBackend`` over a local model: left-padded batched generation with a KV cache.

    Prompts are sorted by length before batching (length bucketing: little padding), and an
    optional ``stop`` predicate ends each row as soon as its text is complete.

    ``batch_size``: rows per batch; ``None`` follows the device: ``CPU_GENERATION_BATCH`` on
    CPU, and on CUDA as many rows as the free memory holds for the batch's longest prompt plus
    ``max_new_tokens`` (see ``plus_sdk.batching``). ``static_cache=True`` (CUDA only; ignored on
    CPU) generates with a static KV cache, which transformers compiles with ``torch.compile``:
    slower on the first call of each shape, faster after.
    """

    def __init__(self, model: LocalModel, *, batch_size: int | None = None, static_cache: bool = False) -> None:
        self.model = model
        self.requested_batch_size = batch_size
        self.static_cache = static_cache

    @property
    def on_cuda(self) -> bool:
        return self.model.device.type == "cuda"

    @property
    def batch_size(self) -> int:
        """Rows a caller should hand over at once (``chat`` splits further by memory on CUDA)."""
        if self.requested_batch_size is not None:
            return self.requested_batch_size
        return batching.MAX_GENERATION_ROWS if self.on_cuda else batching.CPU_GENERATION_BATCH

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self.requested_batch_size = value

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def render(self, messages_batch: list[Messages]) -> list[str]:
        tok = self.model.tokenizer
        return [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages_batch]

    def plan(self, sorted_lengths: list[int], max_new_tokens: int) -> list[list[int]]:
        """Runs of positions in ``sorted_lengths`` (ascending) that form one generation batch each."""
        if self.requested_batch_size is not None or not self.on_cuda:
            size = self.batch_size
            return [list(range(i, min(i + size, len(sorted_lengths)))) for i in range(0, len(sorted_lengths), size)]
        base = self.model.base
        config = base.model.config
        dtype_bytes = batching.dtype_size(base.model)
        per_token = (batching.kv_bytes_per_token(config, dtype_bytes)
                     + batching.activation_bytes_per_token(config, dtype_bytes))
        budget = int(batching.cuda_free_bytes(self.model.device) * batching.HEADROOM) // per_token
        return batching.plan_rows(sorted_lengths, max_new_tokens, budget, batching.MAX_GENERATION_ROWS)

    def generate_kwargs(self, sampling: SamplingConfig) -> dict[str, Any]:
        kwargs = generate_options(self.model.tokenizer, sampling)
        if self.static_cache and self.on_cuda:
            kwargs["cache_implementation"] = "static"
        return kwargs

    @torch.inference_mode()
    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig | None = None, *,
             stop: Callable[[str], bool] | None = None) -> list[str]:
        """Replies to many conversations, in the order given.

        ``stop``: called on each row's text so far; ``True`` ends that row (e.g. a summary
        that is complete), in addition to the end-of-turn token and ``max_new_tokens``.
        ``sampling`` None: ``SamplingConfig()`` (greedy).
        """
        sampling = sampling or SamplingConfig()
        tok = self.model.tokenizer
        texts = self.render(messages_batch)
        lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []
        order = sorted(range(len(texts)), key=lambda i: lengths[i])  # length bucketing
        outputs: list[str] = [""] * len(texts)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        kwargs = self.generate_kwargs(sampling)
        for run in self.plan([lengths[i] for i in order], sampling.max_new_tokens):
            rows = [order[k] for k in run]
            chunk = [texts[i] for i in rows]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
            from transformers import StoppingCriteriaList  # optional at import: loaded with the first model

            criteria: list[Any] = [CancelStop()]  # a cancelled request (client gone) stops at the next token
            if stop is not None:
                criteria.append(TextStop(tok, enc["input_ids"].shape[1], stop))
            with self.model.active() as model:
                generated = model.generate(**enc, **kwargs, stopping_criteria=StoppingCriteriaList(criteria))
            raise_if_cancelled()
            new_tokens = generated[:, enc["input_ids"].shape[1]:]
            for row, text in zip(rows, tok.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                outputs[row] = text
        return [text.strip() for text in outputs]
