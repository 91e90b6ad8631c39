"""Async twins and request coalescing, on tiny real models (and a real server for the remote path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from plus_sdk import PersonalizedGenerator, PersonalizedJudge, PersonalizedRewardModel, Summarizer, UserContext
from plus_sdk.backends.local import LocalBackend
from plus_sdk.backends.openai import OpenAIBackend
from plus_sdk.coalesce import Coalescer, CoalesceSettings, default_settings, model_key, run_isolated, worker_for
from plus_sdk.server import ServeConfig, Services, create_app, serve_in_thread
from plus_sdk.types import PreferenceExample, SamplingConfig

SHORT = SamplingConfig(max_new_tokens=6)


class CountingBackend(LocalBackend):
    """The real local backend, counting how many conversations it generated for."""

    def __init__(self, backend: LocalBackend) -> None:
        super().__init__(backend.model, batch_size=backend.batch_size)
        self.calls: list[int] = []

    def chat(self, messages_batch: Any, sampling: SamplingConfig, **kwargs: Any) -> list[str]:
        self.calls.append(len(messages_batch))
        return super().chat(messages_batch, sampling, **kwargs)


@pytest.fixture()
def summarizer(tiny_model_dir: Path) -> Summarizer:
    base = Summarizer.from_pretrained(tiny_model_dir, sampling=SHORT)
    base.backend = CountingBackend(base.backend)  # type: ignore[arg-type]
    return base


@pytest.fixture()
def judge(tiny_model_dir: Path, summarizer: Summarizer) -> PersonalizedJudge:
    reward = PersonalizedRewardModel.from_pretrained(tiny_model_dir)
    return PersonalizedJudge(reward, summarizer, coalesce=CoalesceSettings(window_ms=20, max_batch=64))


def contexts(n: int) -> list[UserContext]:
    return [UserContext(examples=[PreferenceExample(prompt=f"Question {i}?", chosen=f"Yes {i}.", rejected="No.")])
            for i in range(n)]


# ---------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------


def test_a_failing_item_fails_alone_in_run_isolated() -> None:
    def square_unless_negative(items: list[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * i for i in items]

    results = run_isolated(square_unless_negative, [1, -2, 3])
    assert results[0] == 1 and results[2] == 9
    assert isinstance(results[1], ValueError)


def test_default_settings_depend_on_the_device() -> None:
    assert default_settings("cuda:0").max_batch > default_settings("cpu").max_batch
    assert default_settings(None) == default_settings("cpu")
    with pytest.raises(ValueError, match="max_batch"):
        CoalesceSettings(max_batch=0)


def test_coalescer_batches_concurrent_submits_and_respects_max_batch() -> None:
    seen: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        seen.append(list(items))
        return [2 * i for i in items]

    async def main() -> list[int]:
        coalescer: Coalescer[int, int] = Coalescer(double, executor=ThreadPoolExecutor(1), window_ms=50, max_batch=4)
        return list(await asyncio.gather(*(coalescer.submit(i) for i in range(10))))

    assert asyncio.run(main()) == [2 * i for i in range(10)]
    assert [len(b) for b in seen] == [4, 4, 2]


def test_roles_on_one_base_share_one_worker(judge: PersonalizedJudge, summarizer: Summarizer) -> None:
    assert model_key(judge) is model_key(summarizer) is summarizer.backend.model.base  # type: ignore[attr-defined]
    assert worker_for(judge) is worker_for(summarizer)


# ---------------------------------------------------------------------------------------
# Local models
# ---------------------------------------------------------------------------------------


def test_concurrent_aprefer_equals_prefer_and_runs_in_few_batches(judge: PersonalizedJudge) -> None:
    items = [("likes short answers", f"Question {i}?", f"Answer {i}.", "Another answer.") for i in range(12)]
    expected = judge.prefer_batch(items)

    async def main() -> tuple[list[Any], Coalescer[Any, Any]]:
        results = list(await asyncio.gather(*(judge.aprefer(*item) for item in items)))
        return results, judge._coalescers[asyncio.get_running_loop()]["prefer"]  # type: ignore[attr-defined]

    got, coalescer = asyncio.run(main())
    for g, e in zip(got, expected, strict=True):
        assert g.choice == e.choice and g.probability == pytest.approx(e.probability, abs=1e-5)
    assert coalescer.items == 12 and coalescer.batches <= 2


def test_one_bad_item_fails_only_its_caller(judge: PersonalizedJudge) -> None:
    async def main() -> list[Any]:
        good = [judge.aprefer("likes cats", "Pet?", f"Cat {i}.", "Dog.") for i in range(3)]
        bad = judge.aprefer(12345, "Pet?", "Cat.", "Dog.")  # type: ignore[arg-type]
        return list(await asyncio.gather(*good, bad, return_exceptions=True))

    results = asyncio.run(main())
    assert all(r.method == "reward_model" for r in results[:3])
    assert isinstance(results[3], TypeError) and "context must be" in str(results[3])


def test_aprefer_validates_before_queueing(judge: PersonalizedJudge) -> None:
    with pytest.raises(ValueError, match="identical"):
        asyncio.run(judge.aprefer("likes cats", "Pet?", "Cat.", "Cat."))
    with pytest.raises(ValueError, match="prompt must be"):
        asyncio.run(judge.aprefer_batch([("likes cats", " ", "Cat.", "Dog.")]))


def test_the_event_loop_keeps_running_while_a_model_works(judge: PersonalizedJudge) -> None:
    items = [("likes cats", f"Pet {i}?", "Cat." * 50, "Dog." * 50) for i in range(16)]

    async def main() -> int:
        ticks = 0
        task = asyncio.ensure_future(judge.aprefer_batch(items))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.001)
        await task
        return ticks

    assert asyncio.run(main()) > 3


def test_concurrent_asummarize_summarizes_each_distinct_context_once(summarizer: Summarizer) -> None:
    users = contexts(4)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(summarizer.asummarize(users[i % 4]) for i in range(16))))

    summaries = asyncio.run(main())
    assert sum(summarizer.backend.calls) == 4  # type: ignore[attr-defined]
    assert [s.source_hash for s in summaries] == [users[i % 4].source_hash() for i in range(16)]
    assert asyncio.run(summarizer.asummarize_batch(users)) == summaries[:4]  # cached now


def test_agenerate_matches_generate(tiny_model_dir: Path, summarizer: Summarizer) -> None:
    generator = PersonalizedGenerator(summarizer.backend, summarizer, max_words=5, sampling=SHORT)

    async def main() -> list[str]:
        return list(await asyncio.gather(generator.agenerate("likes cats", "Hello?"),
                                         generator.agenerate("likes cats", "Hi?", max_words=3)))

    got = asyncio.run(main())
    assert got == [generator.generate("likes cats", "Hello?"), generator.generate("likes cats", "Hi?", max_words=3)]
    with pytest.raises(ValueError, match="prompt"):
        asyncio.run(generator.agenerate("likes cats", ""))


def test_a_judge_with_equal_rewards_reports_a_tie(judge: PersonalizedJudge) -> None:
    with torch.no_grad():
        for p in judge.reward_model.head.parameters():  # type: ignore[union-attr]
            p.zero_()  # every response now gets reward 0
    pref = asyncio.run(judge.aprefer("likes cats", "Pet?", "Cat.", "Dog."))
    assert pref.choice == "tie" and pref.probability == 0.5 and pref.confidence == 0.5


# ---------------------------------------------------------------------------------------
# Remote backend: async end to end against a real server
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote_url(tiny_model_dir: Path) -> Iterator[str]:
    services = Services(ServeConfig(model=str(tiny_model_dir), served_model_name="tiny"))
    with serve_in_thread(create_app(services.config, services=services)) as url:
        yield url


def test_remote_llm_judge_is_async_end_to_end(remote_url: str) -> None:
    backend = OpenAIBackend("tiny", base_url=f"{remote_url}/v1", api_key="unused")
    calls: list[int] = []
    original = backend.chat

    def no_sync_chat(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(1)
        return original(*args, **kwargs)

    backend.chat = no_sync_chat  # type: ignore[method-assign]
    judge = PersonalizedJudge(backend=backend, debias=True, sampling=SamplingConfig(max_new_tokens=4))
    items = [(f"likes {animal}", "Pet?", "Cat.", "Dog.") for animal in ("cats", "dogs", "fish")]
    start = time.perf_counter()
    prefs = asyncio.run(judge.aprefer_batch(items))
    assert len(prefs) == 3 and all(p.method == "llm_judge" for p in prefs)
    assert calls == []  # only achat was used
    assert time.perf_counter() - start < 60
    generator = PersonalizedGenerator(backend, max_words=4, sampling=SamplingConfig(max_new_tokens=4))
    assert isinstance(asyncio.run(generator.agenerate("likes cats", "Hi?")), str) and calls == []


def test_backend_chat_works_without_sampling(remote_url: str) -> None:
    backend = OpenAIBackend("tiny", base_url=f"{remote_url}/v1", api_key="unused")
    messages = [[{"role": "user", "content": "Hello"}]]
    assert backend.chat(messages) == backend.chat(messages, SamplingConfig())  # the default is greedy
    assert len(asyncio.run(backend.achat(messages))) == 1
