"""``plus serve``: routes, schemas, auth, size limits and 4xx errors, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from plus_sdk.backends.openai import BackendRequestError, OpenAIBackend
from plus_sdk.cli import build_parser
from plus_sdk.server import ServeConfig, Services, create_app, serve_in_thread
from plus_sdk.types import Preference, SamplingConfig, Summary, UserContext

TOKEN = "test-token-123"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def open_url(services: Services) -> Iterator[str]:
    with serve_in_thread(create_app(services.config, services=services)) as url:
        yield url


@pytest.fixture(scope="module")
def locked_url(services: Services) -> Iterator[str]:
    config = services.config.model_copy(update={"token": SecretStr(TOKEN), "max_body_bytes": 4096})
    with serve_in_thread(create_app(config, services=services)) as url:
        yield url


def test_chat_completions_follow_the_openai_schema(open_url: str) -> None:
    body = httpx.post(f"{open_url}/v1/chat/completions", json=CHAT, timeout=30).json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["usage"]["prompt_tokens"] > 0
    models = httpx.get(f"{open_url}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["tiny"]


def test_openapi_document_lists_every_route(open_url: str) -> None:
    paths = httpx.get(f"{open_url}/openapi.json", timeout=10).json()["paths"]
    for route in ("/v1/chat/completions", "/v1/summarize", "/v1/judge", "/v1/generate", "/v1/models"):
        assert route in paths


def test_plus_routes_return_typed_records(open_url: str, cat_context: UserContext) -> None:
    context = cat_context.model_dump(mode="json")
    summary = Summary.model_validate(httpx.post(f"{open_url}/v1/summarize", json={"context": context},
                                               timeout=60).json())
    assert summary.source_hash == cat_context.source_hash()
    judged = httpx.post(f"{open_url}/v1/judge", json={"summary": "likes cats", "prompt": "A pet?",
                                                      "a": "Cats purr.", "b": "Dogs bark."}, timeout=60)
    preference = Preference.model_validate(judged.json())
    assert preference.method == "llm_judge" and preference.summary is not None
    generated = httpx.post(f"{open_url}/v1/generate", json={"context": context, "prompt": "A pet?", "max_words": 5},
                           timeout=60).json()
    assert len(generated["text"].split()) <= 5
    assert generated["summary"]["text"] == summary.text  # the cached summary was reused


@pytest.mark.parametrize(("payload", "status", "needle"), [
    ({**CHAT, "model": "gpt-9"}, 404, "'tiny'"),
    ({"model": "tiny"}, 400, "messages"),
    ({**CHAT, "messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role"),
    ({**CHAT, "stream": True}, 400, "stream"),
    ({**CHAT, "n": 3}, 400, "n=1"),
    ({**CHAT, "max_tokens": 100000}, 400, "max_tokens"),
])
def test_bad_requests_get_clear_4xx(open_url: str, payload: dict[str, object], status: int, needle: str) -> None:
    response = httpx.post(f"{open_url}/v1/chat/completions", json=payload, timeout=30)
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]


def test_judge_rejects_context_and_summary_together(open_url: str, cat_context: UserContext) -> None:
    response = httpx.post(f"{open_url}/v1/judge", json={"context": cat_context.model_dump(mode="json"),
                                                        "summary": "x", "prompt": "p", "a": "1", "b": "2"}, timeout=30)
    assert response.status_code == 400 and "not both" in response.json()["error"]["message"]


def test_bearer_token_is_enforced(locked_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"{locked_url}/v1/chat/completions"
    missing = httpx.post(url, json=CHAT, timeout=30)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(url, json=CHAT, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    right = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert right.status_code == 200
    assert httpx.get(f"{locked_url}/health", timeout=10).status_code == 200  # health stays open

    monkeypatch.setenv("PLUS_TEST_KEY", "nope")
    with pytest.raises(BackendRequestError) as info:
        OpenAIBackend(model="tiny", base_url=f"{locked_url}/v1", api_key_env="PLUS_TEST_KEY").chat(
            [CHAT["messages"]], SamplingConfig(max_new_tokens=2))  # type: ignore[list-item]
    assert info.value.status_code == 401 and info.value.attempts == 1 and "PLUS_TEST_KEY" in str(info.value)
    monkeypatch.setenv("PLUS_TEST_KEY", TOKEN)
    backend = OpenAIBackend(model="tiny", base_url=f"{locked_url}/v1", api_key_env="PLUS_TEST_KEY")
    assert len(backend.chat([CHAT["messages"]], SamplingConfig(max_new_tokens=2))) == 1  # type: ignore[list-item]


def test_request_size_limit(locked_url: str) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 10_000}]}
    response = httpx.post(f"{locked_url}/v1/chat/completions", json=big,
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 413
    assert "max_body_bytes=4096" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming in
        yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    streamed = httpx.post(f"{locked_url}/v1/chat/completions", content=chunks(),
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, timeout=30)
    assert streamed.status_code == 413


def test_serve_command_parses_its_flags() -> None:
    args = build_parser().parse_args(["serve", "--port", "8123", "--served-model-name", "m", "--token", "t"])
    assert (args.port, args.served_model_name, args.token, args.host) == (8123, "m", "t", "127.0.0.1")
    assert args.func.__name__ == "cmd_serve"


def test_plus_serve_command_runs_a_server(tiny_model_dir: Path) -> None:
    from plus_sdk.server.spawn import spawned_server

    flags = ["--model", str(tiny_model_dir), "--served-model-name", "tiny"]
    with spawned_server(flags, env={"PLUS_SERVE_TOKEN": TOKEN}, start_timeout=120) as (base, process):
        url = f"{base}/v1/chat/completions"
        assert httpx.post(url, json=CHAT, timeout=30).status_code == 401  # the env token is enforced
        ok = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"
    assert TOKEN not in process.output  # type: ignore[attr-defined]  # the token is never logged


def test_store_routes_are_served_behind_the_token(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", token=SecretStr(TOKEN),
                         store=str(tmp_path / "summaries.db"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(create_app(config, services=Services(config))) as url:
        assert httpx.put(f"{url}/v1/summaries/u1", json={"text": "Loves cats."}, timeout=30).status_code == 401
        edited = httpx.put(f"{url}/v1/summaries/u1", json={"text": "Loves cats."}, headers=auth, timeout=30)
        assert edited.status_code == 200, edited.text
        shown = httpx.get(f"{url}/v1/summaries/u1", headers=auth, timeout=30).json()
        assert "Loves cats." in str(shown)
        assert httpx.get(f"{url}/v1/summaries/nobody", headers=auth, timeout=30).status_code == 404


def test_the_review_page_asks_for_the_users_own_key_or_the_admin_token() -> None:
    page = (Path(__file__).resolve().parents[1] / "plus_sdk" / "server" / "ui" / "index.html").read_text()
    assert "plus keys create" in page and "admin token" in page
    assert "until per-user keys exist" not in page
