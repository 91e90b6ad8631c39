"""OpenAI-compatible engine: any server that speaks ``POST /v1/chat/completions``.

Works with OpenAI itself, Azure-style gateways, ``vllm serve``, ``plus serve`` or any other
compatible server: give a model name and a ``base_url``. The API key comes from the
environment (``OPENAI_API_KEY`` by default, or the variable named by ``api_key_env``) and is
never logged or shown in ``repr``.

The retry policy is ours, not the client's (the client is built with ``max_retries=0``):
rate limits (429), request timeouts (408), server errors (5xx), network timeouts and
connection errors are retried with exponential backoff and full jitter, waiting at least
what a ``Retry-After`` header asks for (capped). Every other 4xx fails at once with a
``BackendRequestError`` that names the status and the fix.

A batch is sent as concurrent requests (``AsyncOpenAI`` + an ``asyncio.Semaphore`` bounding
how many are in flight); ``chat`` is the synchronous face of ``achat`` and is safe to call
from code that already runs an event loop (the batch then runs in a worker thread).
Token usage is added up in ``usage`` and the retry history in ``stats``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from plus_sdk.backends.base import Messages
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)

#: Environment variable holding the API key unless ``api_key_env`` names another.
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: 4xx statuses worth another try (every 5xx is retried too).
RETRYABLE_STATUS = frozenset({408, 429})
#: Placeholder key for servers without auth (the client insists on a non-empty key).
NO_KEY = "no-key"


class BackendRequestError(RuntimeError):
    """A request the server refused or that kept failing after every retry."""

    def __init__(self, message: str, *, status_code: int | None, attempts: int) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


class MissingAPIKeyError(ValueError):
    """No API key was found for a server that needs one."""


@dataclass
class Usage:
    """Tokens and requests counted over the life of a backend."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens}


@dataclass
class RetryStats:
    """What the retry policy did: attempts, retries and the waits it chose (seconds)."""

    attempts: int = 0
    retries: int = 0
    failures: int = 0
    waits: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "retries": self.retries, "failures": self.failures,
                "waits_s": [round(w, 3) for w in self.waits], "reasons": list(self.reasons)}


# ---------------------------------------------------------------------------------------
# Retry policy: which errors, how long to wait
# ---------------------------------------------------------------------------------------


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an ``openai`` error, if it has one."""
    return getattr(exc, "status_code", None)


def is_retryable(exc: BaseException) -> bool:
    """True for rate limits, 408, 5xx, timeouts and connection errors."""
    import openai  # optional at import: loaded with an OpenAI backend

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    status = status_of(exc)
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


def retry_after_seconds(exc: BaseException, *, now: float | None = None) -> float | None:
    """What a ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms`` header asks for."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def backoff_seconds(attempt: int, *, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, initial * 2^(attempt-1))]."""
    return rng.uniform(0.0, min(maximum, initial * 2 ** (attempt - 1)))


def _describe(exc: BaseException) -> str:
    status = status_of(exc)
    return f"HTTP {status}" if status is not None else type(exc).__name__


def _fix_hint(status: int | None, api_key_env: str) -> str:
    hints = {
        400: "the request is malformed; check the messages and sampling settings",
        401: f"the API key was refused; set a valid key in ${api_key_env} (or pass api_key=)",
        403: "the key has no access to this model or endpoint",
        404: "unknown model or route; check model= and base_url= (it usually ends in /v1)",
        413: "the request is too large; shorten the context",
        422: "the server could not process the request body; check the messages",
    }
    return hints.get(status or 0, "see the server's message above")


# ---------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------


class OpenAIBackend:
    """``ChatBackend`` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = DEFAULT_API_KEY_ENV, timeout: float = 60.0, connect_timeout: float = 10.0,
                 max_attempts: int = 6, backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 max_retry_after: float = 120.0, concurrency: int = 8, batch_size: int = 64,
                 extra_body: dict[str, Any] | None = None, seed: int | None = None) -> None:
        if not model or not isinstance(model, str):
            raise ValueError("model must be a non-empty model name, e.g. model='gpt-4o-mini'")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.api_key_env = api_key_env
        self._api_key = self._resolve_key(api_key)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.concurrency = concurrency
        #: How many conversations callers (e.g. the summarizer) should hand over per ``chat`` call.
        self.batch_size = batch_size
        self.extra_body = extra_body or {}
        self.usage = Usage()
        self.stats = RetryStats()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def _resolve_key(self, api_key: str | None) -> str:
        key = api_key or os.environ.get(self.api_key_env)
        if key:
            return key
        if self.base_url is None:
            raise MissingAPIKeyError(
                f"no API key: set the environment variable {self.api_key_env} (or pass api_key=, "
                "or api_key_env= to name another variable)"
            )
        return NO_KEY  # a self-hosted server without auth

    def __repr__(self) -> str:
        return (f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, "
                f"concurrency={self.concurrency}, key={'set' if self._api_key != NO_KEY else 'none'})")

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}@{self.base_url or 'api.openai.com'}"

    # ------------------------------------------------------------------ sync face
    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig | None = None) -> list[str]:
        """One reply per conversation; runs the async batch, in a worker thread if a loop is running."""
        sampling = sampling or SamplingConfig()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.achat(messages_batch, sampling))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="plus-openai") as pool:
            return pool.submit(asyncio.run, self.achat(messages_batch, sampling)).result()

    # ------------------------------------------------------------------ async core
    async def achat(self, messages_batch: list[Messages], sampling: SamplingConfig | None = None) -> list[str]:
        """One reply per conversation, at most ``concurrency`` requests in flight (``sampling`` None: greedy)."""
        import openai  # optional at import: loaded with an OpenAI backend

        sampling = sampling or SamplingConfig()
        if not messages_batch:
            return []
        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                    timeout=openai.Timeout(self.timeout, connect=self.connect_timeout))
        gate = asyncio.Semaphore(self.concurrency)

        async def one(messages: Messages) -> str:
            async with gate:
                return await self._complete(client, messages, sampling)

        try:
            return list(await asyncio.gather(*(one(m) for m in messages_batch)))
        finally:
            await client.close()

    def _request(self, messages: Messages, sampling: SamplingConfig) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": sampling.max_new_tokens}
        if sampling.do_sample:
            body.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            body["temperature"] = 0.0
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.extra_body:
            body["extra_body"] = dict(self.extra_body)
        return body

    async def _complete(self, client: Any, messages: Messages, sampling: SamplingConfig) -> str:
        """One request under the retry policy."""
        # optional at import: loaded with an OpenAI backend
        from tenacity import AsyncRetrying, RetryError, retry_if_exception, stop_after_attempt

        request = self._request(messages, sampling)
        retrying = AsyncRetrying(retry=retry_if_exception(is_retryable), stop=stop_after_attempt(self.max_attempts),
                                 wait=self._wait, before_sleep=self._before_sleep, reraise=False)
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    with self._lock:
                        self.stats.attempts += 1
                    response = await client.chat.completions.create(**request)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            with self._lock:
                self.stats.failures += 1
            raise BackendRequestError(
                f"{self.model_id}: gave up after {attempts} attempts; last error {_describe(last)}: {last}",
                status_code=status_of(last) if last else None, attempts=attempts) from last
        except Exception as exc:
            import openai  # optional at import: loaded with an OpenAI backend

            if not isinstance(exc, openai.OpenAIError):
                raise
            with self._lock:
                self.stats.failures += 1
            status = status_of(exc)
            raise BackendRequestError(
                f"{self.model_id}: request refused ({_describe(exc)}): {exc}. Fix: "
                f"{_fix_hint(status, self.api_key_env)}", status_code=status, attempts=attempts) from exc
        self._count(response)
        if not response.choices:
            raise BackendRequestError(f"{self.model_id}: the server returned no choices", status_code=None,
                                      attempts=attempts)
        return (response.choices[0].message.content or "").strip()

    def _wait(self, retry_state: Any) -> float:
        """Backoff with jitter, but never shorter than the server's Retry-After (capped)."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        with self._lock:
            wait = backoff_seconds(retry_state.attempt_number, initial=self.backoff_initial,
                                   maximum=self.backoff_max, rng=self._rng)
        asked = retry_after_seconds(exc) if exc is not None else None
        if asked is not None:
            wait = max(wait, min(asked, self.max_retry_after))
        return wait

    def _before_sleep(self, retry_state: Any) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        reason = _describe(exc) if exc is not None else "?"
        with self._lock:
            self.stats.retries += 1
            self.stats.waits.append(wait)
            self.stats.reasons.append(reason)
        logger.warning("%s: attempt %d failed (%s); retrying in %.2f s", self.model_id,
                       retry_state.attempt_number, reason, wait)

    def _count(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        with self._lock:
            self.usage.requests += 1
            if usage is not None:
                self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
                self.usage.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def reset_counters(self) -> None:
        """Zero the usage and retry counters."""
        with self._lock:
            self.usage = Usage()
            self.stats = RetryStats()
