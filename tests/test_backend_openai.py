"""OpenAIBackend against a real ``plus serve`` app on 127.0.0.1 with injected faults.

The server runs a tiny random Llama; a test-only middleware fails or delays the next
requests (429 with Retry-After, 500, 503, 400, a delay beyond the client timeout) and counts
requests in flight, so the retry policy, the concurrency limit and the usage counters are
checked on real HTTP traffic.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fault_injection import FaultInjector, with_faults

from plus_sdk.backends import make_backend
from plus_sdk.backends.openai import BackendRequestError, MissingAPIKeyError, OpenAIBackend, retry_after_seconds
from plus_sdk.server import ServeConfig, create_app, serve_in_thread
from plus_sdk.types import SamplingConfig

SAMPLING = SamplingConfig(max_new_tokens=4)
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path) -> Iterator[tuple[str, FaultInjector, object]]:
    faults = FaultInjector()
    app = with_faults(create_app(ServeConfig(model=str(tiny_model_dir), served_model_name="tiny")), faults)
    with serve_in_thread(app) as url:
        OpenAIBackend(model="tiny", base_url=f"{url}/v1").chat([HELLO], SAMPLING)  # warm the model up
        yield f"{url}/v1", faults, app


def settle(faults: FaultInjector, timeout: float = 10.0) -> None:
    """Wait until requests abandoned by a client (timeouts) have finished on the server."""
    deadline = time.monotonic() + timeout
    while faults.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture()
def server(served: tuple[str, FaultInjector, object]) -> Iterator[tuple[str, FaultInjector]]:
    url, faults, _ = served
    settle(faults)
    faults.reset()
    yield url, faults
    settle(faults)
    faults.reset()


def fast_backend(url: str, **kwargs: object) -> OpenAIBackend:
    options: dict[str, object] = {"backoff_initial": 0.02, "backoff_max": 0.1, "timeout": 5.0, "seed": 0}
    options.update(kwargs)
    return OpenAIBackend(model="tiny", base_url=url, **options)  # type: ignore[arg-type]


def test_retries_429_then_succeeds(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.fail_next(2, 429)
    backend = fast_backend(url)
    assert len(backend.chat([HELLO], SAMPLING)) == 1
    assert faults.statuses == [429, 429, 200]
    assert (backend.stats.attempts, backend.stats.retries) == (3, 2)
    assert backend.stats.reasons == ["HTTP 429", "HTTP 429"]


def test_retries_500_then_succeeds(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.fail_next(1, 500)
    backend = fast_backend(url)
    backend.chat([HELLO], SAMPLING)
    assert faults.statuses == [500, 200]
    assert backend.stats.retries == 1


def test_retries_a_timeout_then_succeeds(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.delay_next(1, 4.0)
    backend = fast_backend(url, timeout=1.5)
    start = time.monotonic()
    backend.chat([HELLO], SAMPLING)
    assert backend.stats.reasons[0] == "APITimeoutError"
    assert backend.stats.attempts == len(backend.stats.reasons) + 1 >= 2
    assert time.monotonic() - start < 4.0  # the client gave up on the slow request instead of waiting it out


@pytest.mark.parametrize("status", [400, 401, 404])
def test_no_retry_on_other_client_errors(server: tuple[str, FaultInjector], status: int) -> None:
    url, faults = server
    faults.fail_next(1, status)
    backend = fast_backend(url)
    with pytest.raises(BackendRequestError) as info:
        backend.chat([HELLO], SAMPLING)
    assert info.value.status_code == status and info.value.attempts == 1
    assert "Fix:" in str(info.value)
    assert faults.statuses == [status]
    assert backend.stats.retries == 0


def test_retry_after_is_honoured(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.fail_next(1, 429, retry_after=1)
    backend = fast_backend(url)  # its own backoff would wait at most 0.02 s
    backend.chat([HELLO], SAMPLING)
    gap = faults.arrivals[1] - faults.arrivals[0]
    assert 1.0 <= gap < 2.5
    assert backend.stats.waits[0] >= 1.0


def test_gives_up_after_max_attempts(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.fail_next(5, 503)
    backend = fast_backend(url, max_attempts=3)
    with pytest.raises(BackendRequestError) as info:
        backend.chat([HELLO], SAMPLING)
    assert info.value.attempts == 3 and info.value.status_code == 503
    assert faults.statuses == [503, 503, 503]
    assert backend.stats.failures == 1


def test_concurrency_limit_is_respected(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    faults.hold_s = 0.3
    fast_backend(url, concurrency=2).chat([HELLO] * 6, SAMPLING)
    assert faults.max_in_flight == 2
    faults.reset()
    faults.hold_s = 0.3
    fast_backend(url, concurrency=6).chat([HELLO] * 6, SAMPLING)
    assert faults.max_in_flight > 2  # the limit, not the server, was the bound above


def test_usage_is_counted(server: tuple[str, FaultInjector], served: tuple[str, FaultInjector, object]) -> None:
    url, _ = server
    backend = fast_backend(url)
    replies = backend.chat([HELLO] * 3, SAMPLING)
    services = served[2].state.services  # type: ignore[attr-defined]
    expected_prompt = 3 * services.model.count_tokens(HELLO)
    assert backend.usage.requests == 3
    assert backend.usage.prompt_tokens == expected_prompt
    assert backend.usage.completion_tokens == sum(services.count_tokens(r) for r in replies)
    assert backend.usage.as_dict()["total_tokens"] == backend.usage.prompt_tokens + backend.usage.completion_tokens


def test_sync_chat_works_inside_a_running_event_loop(server: tuple[str, FaultInjector]) -> None:
    url, faults = server
    backend = fast_backend(url)

    async def caller() -> list[str]:
        return backend.chat([HELLO, HELLO], SAMPLING)  # a sync call from async code

    assert len(asyncio.run(caller())) == 2
    assert faults.statuses == [200, 200]


def test_api_key_comes_from_env_and_is_never_shown(server: tuple[str, FaultInjector], monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    url, faults = server
    secret = "sk-test-NEVER-SHOW-ME"
    monkeypatch.setenv("MY_LLM_KEY", secret)
    backend = fast_backend(url, api_key_env="MY_LLM_KEY")
    faults.fail_next(1, 500)
    with caplog.at_level(logging.DEBUG):
        backend.chat([HELLO], SAMPLING)
    assert secret not in repr(backend) and secret not in caplog.text
    assert "retrying" in caplog.text


def test_missing_key_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        OpenAIBackend(model="gpt-4o-mini")


def test_retry_after_header_forms() -> None:
    def exc(headers: dict[str, str]) -> SimpleNamespace:
        return SimpleNamespace(response=SimpleNamespace(headers=headers))

    assert retry_after_seconds(exc({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(exc({"retry-after-ms": "250"})) == 0.25
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime(date).timestamp() - 4.0
    assert retry_after_seconds(exc({"retry-after": date}), now=now) == pytest.approx(4.0)
    assert retry_after_seconds(exc({})) is None


def test_make_backend_builds_each_kind(server: tuple[str, FaultInjector]) -> None:
    url, _ = server
    backend = make_backend("openai", model="tiny", base_url=url)
    assert backend.model_id == f"openai:tiny@{url}"
    with pytest.raises(ValueError, match="local, openai, vllm"):
        make_backend("tgi")


def test_vllm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from plus_sdk.backends.vllm import BackendUnavailableError, VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vllm were not installed
    with pytest.raises(BackendUnavailableError, match=r"pip install 'plus-sdk\[vllm\]'"):
        VLLMBackend("smollm2-135m-instruct")
    with pytest.raises(ImportError, match="vllm"):
        make_backend("vllm", model="smollm2-135m-instruct")
