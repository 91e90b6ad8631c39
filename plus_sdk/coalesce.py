"""Request coalescing: many concurrent async calls → one batch through the fast paths.

A ``Coalescer`` collects the items that callers ``submit`` for up to ``window_ms``
milliseconds (or until ``max_batch`` items are waiting), then runs them as one call of a
synchronous batch function (``PersonalizedJudge.prefer_batch``, ``Summarizer.summarize_batch``)
on the model's worker thread, and hands each caller its own result. If the batch raises,
each item is retried alone, so a bad item fails only its own caller.

Local models run on **one worker per model**: ``worker_for(obj)`` returns a single-thread
executor keyed by the model's shared base weights, so the event loop never blocks and two
batches never fight over one model. Remote backends skip all this and stay async end to end.

The async twins (``Summarizer.asummarize``, ``PersonalizedJudge.aprefer``, ``PersonalizedGenerator.agenerate``
...) sit beside their sync methods in each class and build on this module: single calls with default
options go through ``coalescer_for``; batch calls and per-call options run on ``run_on_worker``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class CoalesceSettings:
    """How long to wait for company and how big a batch may get."""

    window_ms: float = 5.0
    max_batch: int = 64

    def __post_init__(self) -> None:
        if self.window_ms < 0:
            raise ValueError(f"window_ms={self.window_ms} must be >= 0")
        if self.max_batch < 1:
            raise ValueError(f"max_batch={self.max_batch} must be >= 1")


#: CPU default: a short window (the batch is bounded by compute, not by waiting) and 64 items.
CPU_SETTINGS = CoalesceSettings(window_ms=5.0, max_batch=64)
#: GPU default: a shorter window and bigger batches (a GPU batch of 128 costs little more than one).
GPU_SETTINGS = CoalesceSettings(window_ms=2.0, max_batch=128)


def default_settings(device: Any = None) -> CoalesceSettings:
    """``GPU_SETTINGS`` for a CUDA device, else ``CPU_SETTINGS``."""
    return GPU_SETTINGS if str(device or "").startswith("cuda") else CPU_SETTINGS


def settings_of(obj: Any) -> CoalesceSettings:
    """``obj.coalesce`` when set, else the defaults for the device its model sits on."""
    chosen = getattr(obj, "coalesce", None)
    return chosen if chosen is not None else default_settings(getattr(model_key(obj), "device", None))


def run_isolated(run_batch: Callable[[list[T]], Sequence[R]], items: list[T]) -> list[R | Exception]:
    """``run_batch(items)``; if it raises, each item alone, so an error fails only its own item."""
    try:
        results = list(run_batch(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        logger.info("a batch of %d failed (%s); retrying its items one by one", len(items), exc)
        return [run_isolated(run_batch, [item])[0] for item in items]
    if len(results) != len(items):
        raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
    return results


# ---------------------------------------------------------------------------------------
# One worker per model
# ---------------------------------------------------------------------------------------

_workers: weakref.WeakKeyDictionary[Any, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_workers_lock = threading.Lock()


def model_key(obj: Any) -> Any:
    """The object whose weights ``obj`` computes with: a local model's shared base, else ``obj``.

    Follows ``reward_model`` (a reward-model judge), ``backend`` and ``model`` down to a
    ``SharedBase`` (the object that owns a ``lock`` and the weights).
    """
    if hasattr(obj, "adapters") and hasattr(obj, "lock"):  # a SharedBase
        return obj
    for attr in ("reward_model", "backend", "model", "base"):
        inner = getattr(obj, attr, None)
        if inner is not None and inner is not obj:
            return model_key(inner)
    return obj


def worker_for(obj: Any) -> ThreadPoolExecutor:
    """The single-thread executor of the model behind ``obj`` (created on first use)."""
    key = model_key(obj)
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None:
            worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plus-model")
            _workers[key] = worker
            weakref.finalize(key, worker.shutdown, wait=False)  # the thread ends with its model
        return worker


async def run_on_worker(obj: Any, fn: Callable[[], R]) -> R:
    """Run ``fn()`` on the worker of ``obj``'s model without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(worker_for(obj), fn)


def is_local(obj: Any) -> bool:
    """True when ``obj``'s backend computes in this process (it has no ``achat``)."""
    return not hasattr(getattr(obj, "backend", None), "achat")


# ---------------------------------------------------------------------------------------
# The coalescer
# ---------------------------------------------------------------------------------------


class Coalescer(Generic[T, R]):
    """Collects concurrent ``submit`` calls into batches of ``run_batch`` on ``executor``.

    Bound to the event loop of its first ``submit``; use ``coalescer_for`` to get one per loop.
    ``batches`` and ``items`` count what ran (for tests and benchmarks).
    """

    def __init__(self, run_batch: Callable[[list[T]], Sequence[R]], *, executor: ThreadPoolExecutor,
                 window_ms: float = CPU_SETTINGS.window_ms, max_batch: int = CPU_SETTINGS.max_batch) -> None:
        settings = CoalesceSettings(window_ms=window_ms, max_batch=max_batch)  # validates
        self.run_batch = run_batch
        self.executor = executor
        self.window_s = settings.window_ms / 1000.0
        self.max_batch = settings.max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0
        self.items = 0
        self.batch_sizes: list[int] = []

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and wait for its own result (or its own error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        self.items += len(items)
        self.batch_sizes.append(len(items))
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.executor, run_isolated, self.run_batch, items)
        except Exception as exc:
            results = [exc] * len(items)
        logger.debug("coalesced batch of %d in %.1f ms", len(items), (time.perf_counter() - start) * 1000)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def coalescer_for(owner: Any, name: str, run_batch: Callable[[list[Any]], Sequence[Any]],
                  settings: CoalesceSettings) -> Coalescer[Any, Any]:
    """The coalescer ``name`` of ``owner`` for the running event loop (made on first use).

    Kept on ``owner._coalescers`` keyed by (loop, name), so each loop gets its own and the
    settings in force at creation apply (change ``owner.coalesce`` before the first call).
    """
    loop = asyncio.get_running_loop()
    table: weakref.WeakKeyDictionary[Any, dict[str, Coalescer[Any, Any]]] = owner.__dict__.setdefault(
        "_coalescers", weakref.WeakKeyDictionary())
    per_loop = table.setdefault(loop, {})
    if name not in per_loop:
        per_loop[name] = Coalescer(run_batch, executor=worker_for(owner), window_ms=settings.window_ms,
                                   max_batch=settings.max_batch)
    return per_loop[name]
