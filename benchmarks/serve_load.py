"""Load on ``plus serve`` (in this process, on 127.0.0.1) with a real SQLite store.

Measures:

- **store reads**: ``--reads`` GETs of ``/v1/summaries/{user}`` at concurrency ``--concurrency``
  (requests/s, p50, p99 latency);
- **judging**: ``--judges`` POSTs of ``/v1/judge`` at concurrency ``--judge-concurrency`` (16), each
  for a user whose summary is stored (the client sends that summary) and a new pair of replies, so
  the server embeds both replies every time (requests/s, p50, p99 latency);
- **huge context**: a 10,000-example context: the time ``Summarizer.messages_for`` takes to
  cut it, and the whole ``POST /v1/summarize`` round trip (which also generates the summary);
- **slow clients**: RSS of this process before and with ``--slow`` unauthenticated
  connections that send a partial request (half of them stop in the headers, half send a
  body without a token), and how long until the server closed each one.

``os.getloadavg()`` is recorded because the machine is shared. Results go to
``benchmarks/results/serve_load.json``.

    .venv/bin/python benchmarks/serve_load.py                  # default bundle (general-smollm2)
    .venv/bin/python benchmarks/serve_load.py --bundle none    # the base model's LLM judge
    .venv/bin/python benchmarks/serve_load.py --model PATH     # any model folder
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from plus_sdk.bundle import DEFAULT_BUNDLE
from plus_sdk.models import DEFAULT_MODEL
from plus_sdk.server import ServeConfig, Services, create_app, serve_in_thread
from plus_sdk.store import SummaryStore
from plus_sdk.types import PreferenceExample, UserContext

TOKEN = "bench-token"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_requests(url: str, count: int, concurrency: int, timeout: float,
                         send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]) -> dict[str, Any]:
    """``count`` requests ``send(client, i)``, ``concurrency`` at a time: requests/s, p50, p99 and statuses."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits,
                                 timeout=timeout) as client:
        async def one(i: int) -> None:
            async with gate:
                start = time.perf_counter()
                try:
                    status = str((await send(client, i)).status_code)
                except httpx.TransportError as exc:  # counted, not hidden
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - start
    return {"requests": count, "concurrency": concurrency, "wall_s": wall, "requests_per_s": count / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 0.99),
            "statuses": statuses}


async def store_reads(url: str, users: list[str], reads: int, concurrency: int) -> dict[str, Any]:
    """``reads`` GETs of stored summaries."""
    result = await timed_requests(url, reads, concurrency, 120,
                                  lambda client, i: client.get(f"/v1/summaries/{users[i % len(users)]}"))
    return {"reads": result.pop("requests"), **result}  # the key earlier results files use


def judge_body(summary: str, i: int) -> dict[str, str]:
    """A judging request with new replies (so the server embeds both) for a user's stored summary."""
    return {"summary": summary, "prompt": f"Question {i}: how do I keep basil fresh?",
            "a": f"Answer {i}: stand the stems in water on the counter and change it daily.",
            "b": f"Answer {i}: basil keeps best in a glass of water, like cut flowers, away from the cold "
                 "of the fridge, which blackens its leaves; change the water every day or two."}


async def judge_requests(url: str, summaries: list[str], count: int, concurrency: int) -> dict[str, Any]:
    """``count`` judgements of new reply pairs for users with stored summaries, after one warm-up request."""
    def send(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
        return client.post("/v1/judge", json=judge_body(summaries[i % len(summaries)], i))

    await timed_requests(url, 1, 1, 600, lambda client, i: send(client, -1))  # warms the summaries' embeddings
    return await timed_requests(url, count, concurrency, 600, send)


def huge_context(services: Services, url: str, n: int) -> dict[str, float]:
    context = UserContext(examples=[PreferenceExample(prompt=f"question {i} about pets", chosen=f"yes {i}",
                                                      rejected=f"no {i}") for i in range(n)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        services.summarizer.messages_for(context)
        cut_s = time.perf_counter() - start
    body = {"context": context.model_dump(mode="json")}
    start = time.perf_counter()
    response = httpx.post(f"{url}/v1/summarize", json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=600)
    return {"examples": n, "body_bytes": len(json.dumps(body)), "cut_s": cut_s,
            "http_round_trip_s": time.perf_counter() - start, "status": response.status_code}


def slow_clients(url: str, count: int, header_timeout_s: float, body_timeout_s: float) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    before = rss_mb()
    socks = []
    for i in range(count):
        sock = socket.create_connection((host, int(port)), timeout=30)
        if i % 2:
            sock.sendall(b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n" + b"{" * 4096)
        else:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(sock)
    time.sleep(0.5)
    during = rss_mb()
    start = time.perf_counter()
    closed_after: list[float] = []
    for sock in socks:
        sock.settimeout(max(0.1, header_timeout_s + body_timeout_s + 5 - (time.perf_counter() - start)))
        try:
            while sock.recv(65536):
                pass
            closed_after.append(time.perf_counter() - start)
        except TimeoutError:
            closed_after.append(float("inf"))
        sock.close()
    return {"connections": count, "rss_before_mb": before, "rss_with_connections_mb": during,
            "rss_delta_mb": during - before, "all_closed": all(t != float("inf") for t in closed_after),
            "last_closed_after_s": max(closed_after), "header_timeout_s": header_timeout_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded default)")
    parser.add_argument("--bundle", default=DEFAULT_BUNDLE, help="bundle served (default: the default bundle, as "
                        "`plus serve --bundle general-smollm2`); 'none' serves the base model's LLM judge")
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--judges", type=int, default=320, help="POST /v1/judge requests")
    parser.add_argument("--judge-concurrency", type=int, default=16)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve_load.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "summaries.sqlite3"
        users = [f"user-{i}" for i in range(100)]
        tastes = ["likes short answers about cats.", "wants detailed replies with worked examples.",
                  "prefers a formal tone and numbered steps.", "asks for code first, explanations after."]
        stored = [f"{user} {tastes[i % len(tastes)]}" for i, user in enumerate(users)]
        with SummaryStore(db) as store:
            for user, text in zip(users, stored, strict=True):
                store.edit(user, text)
        bundle = None if args.bundle == "none" else args.bundle
        model = args.model or (DEFAULT_MODEL if bundle is None else None)  # a model and no bundle: the LLM judge
        config = ServeConfig(model=model, bundle=bundle, served_model_name="bench", token=SecretStr(TOKEN),
                             store=str(db), header_timeout_s=10.0, body_timeout_s=10.0)
        services = Services(config)
        services.summarizer.sampling = services.summarizer.sampling.model_copy(update={"max_new_tokens": 8})
        with serve_in_thread(create_app(config, services=services)) as url:
            load_before = os.getloadavg()
            reads = asyncio.run(store_reads(url, users, args.reads, args.concurrency))
            judges = asyncio.run(judge_requests(url, stored, args.judges, args.judge_concurrency))
            huge = huge_context(services, url, args.examples)
            slow = slow_clients(url, args.slow, config.header_timeout_s, config.body_timeout_s)
            load_after = os.getloadavg()
    result: dict[str, Any] = {"store_reads": reads, "judge": judges, "huge_context": huge, "slow_clients": slow,
                              "loadavg_before": load_before, "loadavg_after": load_after,
                              "cpus": os.cpu_count(), "python": platform.python_version(),
                              "model": args.model or "default", "bundle": bundle}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
