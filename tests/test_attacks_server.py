"""Attacks on a real ``plus serve`` app on 127.0.0.1 over real SQLite files: resources held without a token,
no 500s, scoped keys and validated imports, deletes that forget everywhere, work that stops with its client."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from pydantic import SecretStr
from raw_http import raw_request

from plus_sdk.cli import main as plus_main
from plus_sdk.server import Services, create_app, serve_in_thread
from plus_sdk.server.keys import create_key
from plus_sdk.store import SummaryStore
from plus_sdk.types import PreferenceExample, Summary, UserContext

ADMIN = "admin-token-abc"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attack-store") / "summaries.sqlite3"


@pytest.fixture(scope="module")
def url(services: Services, db: Path) -> Iterator[str]:
    config = services.config.model_copy(update={
        "token": SecretStr(ADMIN), "store": str(db), "store_busy_timeout_s": 1.0, "header_timeout_s": 1.5,
        "body_timeout_s": 1.5, "max_body_bytes": 1 << 20})
    services.config = config
    with serve_in_thread(create_app(config, services=services)) as base:
        yield base


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


# -- resources held without a token ------------------------------------------------------------------------

def test_the_token_is_checked_before_any_body_byte_is_read(url: str) -> None:
    head = (b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 900000\r\n\r\n{\"context\": ")  # the body never comes
    answer, seconds = raw_request(url, head, wait_s=10)
    assert answer.startswith(b"HTTP/1.1 401") and seconds < 1.4, (answer[:80], seconds)  # not the body timeout


def test_unfinished_headers_are_closed_within_the_header_timeout(url: str) -> None:
    answer, seconds = raw_request(url, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait_s=10)
    assert answer == b"" and 1.4 <= seconds < 5, seconds


def test_a_slow_body_with_a_valid_token_gets_408(url: str) -> None:
    head = (f"PUT /v1/summaries/alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te").encode()
    answer, seconds = raw_request(url, head, wait_s=10)
    assert answer.startswith(b"HTTP/1.1 408") and seconds < 5, (answer[:80], seconds)


def test_health_answers_while_writers_wait_on_a_locked_store(url: str, db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with ThreadPoolExecutor(60) as pool:
            puts = [pool.submit(httpx.put, f"{url}/v1/summaries/busy-{i}", json={"text": "x"}, headers=admin(),
                                timeout=180) for i in range(60)]
            time.sleep(0.3)
            start = time.perf_counter()
            health = httpx.get(f"{url}/health", timeout=5)
            health_s = time.perf_counter() - start
            answers = [p.result() for p in puts]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert health.status_code == 200 and health_s < 2.0, health_s
    assert {a.status_code for a in answers} == {503}
    assert all(a.headers.get("retry-after") == "1" for a in answers)
    assert "busy" in answers[0].json()["error"]["message"]


# -- no 500s ------------------------------------------------------------------------------------------------

def test_openapi_document_works_with_a_store(url: str) -> None:
    document = httpx.get(f"{url}/openapi.json", timeout=10)
    assert document.status_code == 200 and "/v1/summaries/{user_id}/export" in document.json()["paths"]


@pytest.mark.parametrize("version", [99999999999999999999999, "1", 1.5, True, 0])
def test_revert_with_a_huge_or_non_integer_version_is_a_400_naming_it(url: str, version: object) -> None:
    httpx.put(f"{url}/v1/summaries/reverter", json={"text": "likes cats"}, headers=admin(), timeout=10)
    response = httpx.post(f"{url}/v1/summaries/reverter/revert", json={"version": version}, headers=admin(),
                          timeout=10)
    assert response.status_code == 400 and response.json()["error"]["param"] == "version", response.text


@pytest.mark.parametrize("text", ["a\u0000b", "esc \u001b[2J", "del \u007f"])
def test_a_control_character_in_summary_text_is_a_400_naming_the_field(url: str, text: str) -> None:
    response = httpx.put(f"{url}/v1/summaries/ctrl", json={"text": text}, headers=admin(), timeout=10)
    assert response.status_code == 400 and "text contains the control character" in response.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/summaries/ctrl", headers=admin(), timeout=10).status_code == 404


@pytest.mark.parametrize("user_id", ["alice%0A", "alice%0D%0A", "%0Aalice"])
def test_a_user_id_with_a_newline_is_a_400(url: str, user_id: str) -> None:
    response = httpx.put(f"{url}/v1/summaries/{user_id}", json={"text": "likes cats"}, headers=admin(), timeout=10)
    assert response.status_code == 400 and "user_id" in response.json()["error"]["message"], response.text


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinity_in_a_json_body_is_a_400_naming_where(url: str, number: str) -> None:
    body = '{"context": {"profile": {"openness": NUMBER}}}'.replace("NUMBER", number)
    response = httpx.post(f"{url}/v1/summarize", content=body, headers={**admin(), "Content-Type": "application/json"},
                          timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "context.profile.openness", \
        response.text


@pytest.mark.parametrize("seed", [1e26, 10**30, -1, "7"])
def test_a_bad_seed_is_a_400_that_names_it_without_internals(url: str, seed: object) -> None:
    response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "seed": seed}, headers=admin(), timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "seed"
    assert "Overflow" not in response.text and "long long" not in response.text


# -- scoped keys and validated imports ------------------------------------------------------------------

def test_a_user_key_reaches_only_its_own_user(url: str, db: Path) -> None:
    for user in ("alice", "bob"):
        httpx.put(f"{url}/v1/summaries/{user}", json={"text": f"{user} likes tea"}, headers=admin(), timeout=10)
    with SummaryStore(db) as store:
        _, key = create_key(store, "alice")
    mine = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{url}/v1/summaries/alice", headers=mine, timeout=10).status_code == 200
    assert httpx.put(f"{url}/v1/summaries/alice", json={"text": "alice prefers coffee"}, headers=mine,
                     timeout=10).status_code == 200
    for method, path in (("GET", "bob"), ("PUT", "bob"), ("DELETE", "bob"), ("GET", "bob/history")):
        body = {"text": "mine now"} if method == "PUT" else None  # only a PUT takes a body
        response = httpx.request(method, f"{url}/v1/summaries/{path}", json=body, headers=mine, timeout=10)
        assert response.status_code == 403 and "alice" in response.json()["error"]["message"], (method, path)
    assert httpx.get(f"{url}/v1/summaries/alice/export", headers=mine, timeout=10).status_code == 403
    assert httpx.post(f"{url}/v1/summaries/import?on_conflict=replace", content=b"{}", headers=mine,
                      timeout=10).status_code == 403
    assert httpx.get(f"{url}/v1/summaries/bob", headers=admin(), timeout=10).json()["current"]["text"] == \
        "bob likes tea"  # nothing of bob's changed


def test_a_revoked_key_is_refused_and_keys_are_stored_hashed(url: str, db: Path, capsys: pytest.CaptureFixture[str],
                                                             ) -> None:
    assert plus_main(["keys", "create", "carol", "--store", str(db)]) == 0
    created = json.loads(capsys.readouterr().out)
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(f"{url}/v1/summaries/carol", headers=headers, timeout=10).status_code == 404  # allowed
    assert created["key"].encode() not in db.read_bytes() + Path(f"{db}-wal").read_bytes()
    assert plus_main(["keys", "list", "--store", str(db)]) == 0
    assert created["key_id"] in capsys.readouterr().out
    assert plus_main(["keys", "revoke", created["key_id"], "--store", str(db)]) == 0
    assert httpx.get(f"{url}/v1/summaries/carol", headers=headers, timeout=10).status_code == 401
    assert plus_main(["keys", "revoke", created["key_id"], "--store", str(db)]) == 2


def export_lines(rows: list[dict[str, object]], schema_version: object = 3) -> bytes:
    header = {"format": "plus-summaries", "schema_version": schema_version}
    return "\n".join(json.dumps(r) for r in [header, *rows]).encode()


def row(version: int, **fields: object) -> dict[str, object]:
    return {"user_id": "imp", "version": version, "text": f"text {version}", "author": "model", "action": "put",
            "is_current": False, **fields}


@pytest.mark.parametrize(("body", "needle"), [
    (export_lines([row(1, is_current=True)], schema_version=99), "schema_version=99"),
    (export_lines([row(1, is_current=True), row(2, action="revert", based_on=7)]), "based_on=7"),
    (export_lines([row(1), row(2)]), "exactly one version with is_current"),
])
def test_invalid_imports_are_refused_whole(url: str, body: bytes, needle: str) -> None:
    response = httpx.post(f"{url}/v1/summaries/import?on_conflict=replace", content=body, headers=admin(), timeout=10)
    assert response.status_code == 400 and needle in response.json()["error"]["message"], response.text
    assert httpx.get(f"{url}/v1/summaries/imp", headers=admin(), timeout=10).status_code == 404


def test_an_imported_user_edit_does_not_outrank_a_model_refresh(url: str, db: Path) -> None:
    body = export_lines([row(1, author="user", action="edit", is_current=True, created_at="2001-01-01T00:00:00Z")])
    response = httpx.post(f"{url}/v1/summaries/import", content=body, headers=admin(), timeout=10)
    assert response.status_code == 200
    with SummaryStore(db) as store:
        assert store.current("imp").author == "import"  # type: ignore[union-attr]
        fresh = store.put("imp", Summary(text="model refresh", model_id="m"))
    assert fresh.is_current and not fresh.is_proposal


# -- delete forgets everywhere --------------------------------------------------------------------------

def test_delete_empties_the_summary_caches_and_the_wal(url: str, services: Services, db: Path) -> None:
    context = UserContext(user_id="dora", examples=[
        PreferenceExample(prompt="Pet?", chosen="Dora's secret ferret Zanzibar.", rejected="A dog.")])
    summarizer = services.summarizer
    made = summarizer.summarize_batch([context], user_ids=["dora"])[0]
    assert any(v.source_hash == made.source_hash for v in summarizer.cache._memory.values())
    reader = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM plus_summary_versions").fetchone()  # a reader holds the WAL
    threading.Timer(0.5, lambda: (reader.execute("COMMIT"), reader.close())).start()
    response = httpx.delete(f"{url}/v1/summaries/dora", headers=admin(), timeout=30)
    assert response.status_code == 200 and response.json()["deleted_versions"] == 1
    assert not any(v.source_hash == made.source_hash for v in summarizer.cache._memory.values())
    needle = made.text.encode()[:40]
    wal = Path(f"{db}-wal")
    assert needle not in db.read_bytes() and (not wal.exists() or needle not in wal.read_bytes())


def test_forget_user_removes_disk_cache_entries(tmp_path: Path, tiny_model_dir: Path) -> None:
    from plus_sdk.store import forget_user
    from plus_sdk.summarizer import Summarizer
    from plus_sdk.types import SamplingConfig

    summarizer = Summarizer.from_pretrained(tiny_model_dir, cache_dir=tmp_path / "cache",
                                            sampling=SamplingConfig(max_new_tokens=4))
    with SummaryStore(tmp_path / "s.sqlite3") as store:
        summarizer.store = store
        context = UserContext(examples=[PreferenceExample(prompt="Pet?", chosen="Cats.", rejected="Dogs.")])
        summarizer.summarize_batch([context], user_ids=["eve"])
        assert len(list((tmp_path / "cache").glob("*/*.json"))) == 1
        assert forget_user(store, "eve", [summarizer]) == 1
    assert list((tmp_path / "cache").glob("*/*.json")) == [] and len(summarizer.cache) == 0


# -- work stops when the client leaves ------------------------------------------------------------------

def test_a_disconnected_client_frees_the_model_at_once(url: str) -> None:
    body = json.dumps({**CHAT, "max_tokens": 1024}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(head + body)
        time.sleep(1.0)  # generation is under way
    start = time.perf_counter()  # the next request needs the model lock the long one held
    response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "max_tokens": 2}, headers=admin(), timeout=120)
    assert response.status_code == 200
    assert time.perf_counter() - start < 10.0
