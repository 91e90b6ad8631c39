"""Text engines behind the ``ChatBackend`` protocol: local, OpenAI-compatible, vLLM.

The engine modules are light to import: each imports its heavy library (transformers and
peft, the ``openai`` client, ``vllm``) when it is built.
"""

from __future__ import annotations

from typing import Any

from plus_sdk.backends.base import ChatBackend
from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.backends.openai import OpenAIBackend
from plus_sdk.backends.vllm import VLLMBackend

#: The engine kinds ``make_backend`` knows.
BACKEND_KINDS: tuple[str, ...] = ("local", "openai", "vllm")


def make_backend(kind: str, **kwargs: Any) -> ChatBackend:
    """Build an engine by name.

    - ``"local"``: transformers + peft; kwargs ``model`` (name or folder, None = default),
      ``adapter``, ``device``, ``dtype``, ``batch_size`` (None: follows the device),
      ``static_cache`` (CUDA only).
    - ``"openai"``: any OpenAI-compatible server; kwargs of ``OpenAIBackend`` (``model``,
      ``base_url``, ``api_key_env``, ``concurrency``, ``timeout``, ...).
    - ``"vllm"``: kwargs of ``VLLMBackend`` (``model``, ``adapter``, ...).
    """
    if kind == "local":
        batch_size = kwargs.pop("batch_size", None)
        static_cache = kwargs.pop("static_cache", False)
        model = kwargs.pop("model", None)
        adapter = kwargs.pop("adapter", None)
        return LocalBackend(LocalModel.load(model, adapter, **kwargs), batch_size=batch_size,
                            static_cache=static_cache)
    if kind == "openai":
        return OpenAIBackend(**kwargs)
    if kind == "vllm":
        return VLLMBackend(**kwargs)
    raise ValueError(f"backend={kind!r} is unknown; use one of {', '.join(BACKEND_KINDS)} or pass a backend object")


def as_backend(backend: ChatBackend | str, options: dict[str, Any] | None = None) -> ChatBackend:
    """A backend object as is, or ``make_backend(backend, **options)`` for a kind name."""
    if isinstance(backend, str):
        return make_backend(backend, **(options or {}))
    if not isinstance(backend, ChatBackend):
        raise TypeError(f"backend must be a ChatBackend or one of {', '.join(BACKEND_KINDS)}, "
                        f"not {type(backend).__name__}")
    return backend


__all__ = ["BACKEND_KINDS", "ChatBackend", "as_backend", "make_backend"]
