"""Request coalescing: many concurrent judge calls against the same calls one after another.

On the default judge (the shipped ``pets-smollm2`` bundle on the embedded default model, CPU):

1. **cached summary, 64 clients**: each client judges one pair for a user whose summary is
   already cached. Measured in process (``await judge.aprefer`` x 64 with ``asyncio.gather``
   vs ``judge.prefer`` 64 times in a row) and through a real ``plus serve`` on 127.0.0.1
   (64 concurrent ``POST /v1/judge`` vs 64 sequential ones). Reports requests/s, p50 and p99.
2. **new contexts, 16 clients**: 16 concurrent ``aprefer`` calls over 8 distinct, never-seen
   contexts (2 clients each). Counts the summarizer's generate calls (rows generated):
   each distinct context must be summarized once per batch.

``os.getloadavg()`` is recorded before and after: the machine is shared.

    .venv/bin/python benchmarks/coalesce_speed.py    # -> benchmarks/results/coalesce_speed.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import torch

from plus_sdk import PersonalizedJudge, PreferenceExample, UserContext
from plus_sdk.bundle import default_bundle_dir
from plus_sdk.coalesce import CoalesceSettings

RESULTS = Path(__file__).resolve().parent / "results" / "coalesce_speed.json"
USER = UserContext(examples=[
    PreferenceExample(prompt="Tell me about a pet.", chosen="Cats groom themselves.", rejected="Dogs love to fetch."),
    PreferenceExample(prompt="Which animal?", chosen="A cat on the sofa.", rejected="A dog in the park."),
])


def pairs(n: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (prompt, a, b) items."""
    return [(f"Tell me about pet number {i}.", f"Cat {i} purrs softly on the warm windowsill.",
             f"Dog {i} runs after the ball in the garden.") for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_of(latencies: list[float], wall: float) -> dict[str, float]:
    return {"requests": len(latencies), "wall_s": round(wall, 3), "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 1)}


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def concurrent(calls: list[Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    start = time.perf_counter()
    latencies = await asyncio.gather(*(timed(c) for c in calls))
    return summary_of(list(latencies), time.perf_counter() - start)


def sequential(calls: list[Callable[[], Any]]) -> dict[str, float]:
    latencies = []
    start = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return summary_of(latencies, time.perf_counter() - start)


def in_process(judge: PersonalizedJudge, n: int) -> dict[str, Any]:
    items = pairs(n)
    judge.prefer(USER, *items[0])  # warm: the summary is cached from here on
    seq = sequential([lambda item=item: judge.prefer(USER, *item) for item in items])
    conc = asyncio.run(concurrent([lambda item=item: judge.aprefer(USER, *item) for item in items]))
    return {"sequential_prefer": seq, "concurrent_aprefer": conc,
            "speedup": round(conc["requests_per_s"] / seq["requests_per_s"], 2)}


def through_server(bundle: str, n: int, window_ms: float, threads: int) -> dict[str, Any]:
    import httpx

    from plus_sdk.server.spawn import spawned_server

    body = USER.model_dump(mode="json")
    items = pairs(n)
    env = {"OMP_NUM_THREADS": str(threads)}
    flags = ["--bundle", bundle, "--coalesce-window-ms", str(window_ms)]
    with spawned_server(flags, env=env, start_timeout=900) as (url, _):
        def post(client: httpx.Client, item: tuple[str, str, str]) -> None:
            r = client.post(f"{url}/v1/judge", json={"context": body, "prompt": item[0], "a": item[1], "b": item[2]})
            r.raise_for_status()

        with httpx.Client(timeout=600) as client:
            post(client, items[0])  # warm: the server caches the summary
            seq = sequential([lambda item=item: post(client, item) for item in items])

        async def run_all() -> dict[str, float]:
            async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=n)) as client:
                async def one(item: tuple[str, str, str]) -> None:
                    r = await client.post(f"{url}/v1/judge", json={"context": body, "prompt": item[0], "a": item[1],
                                                                  "b": item[2]})
                    r.raise_for_status()
                return await concurrent([lambda item=item: one(item) for item in items])

        conc = asyncio.run(run_all())
    return {"sequential_http": seq, "concurrent_http": conc,
            "speedup": round(conc["requests_per_s"] / seq["requests_per_s"], 2)}


def new_contexts(judge: PersonalizedJudge, clients: int, distinct: int) -> dict[str, Any]:
    backend = judge.summarizer.backend  # type: ignore[union-attr]
    rows: list[int] = []
    original = backend.chat

    def counting_chat(messages_batch: Any, sampling: Any = None, *, stop: Any = None) -> list[str]:
        rows.append(len(messages_batch))
        return original(messages_batch, sampling, stop=stop)

    backend.chat = counting_chat
    contexts = [UserContext(guidelines=f"Benchmark user {time.time_ns()}-{k}: prefers cats, short answers.")
                for k in range(distinct)]
    try:
        result = asyncio.run(concurrent([
            lambda i=i: judge.aprefer(contexts[i % distinct], "Tell me about a pet.", "A cat purrs.", "A dog barks.")
            for i in range(clients)]))
    finally:
        backend.chat = original
    return {"clients": clients, "distinct_contexts": distinct, "generate_calls": len(rows),
            "rows_generated": sum(rows), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = str(default_bundle_dir())
    load_before = os.getloadavg()
    judge = PersonalizedJudge.from_pretrained(bundle, coalesce=CoalesceSettings(window_ms=args.window_ms))
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
                    "loadavg_before": [round(x, 2) for x in load_before]},
        "judge": {"bundle": bundle, "trained": judge.trained, "window_ms": args.window_ms,
                  "max_batch": CoalesceSettings().max_batch},
    }
    sections = {"cached_summary_in_process": lambda: in_process(judge, args.clients),
                "new_contexts": lambda: new_contexts(judge, 16, 8),
                "cached_summary_plus_serve": lambda: through_server(bundle, args.clients, args.window_ms, args.threads)}
    for name, measure in sections.items():  # results are written after each section (slow, shared machine)
        results[name] = measure()
        results["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        print(name, json.dumps(results[name], indent=2), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
