"""Attack tour on a real ``plus serve`` process with user keys and no admin token: it fails closed, its
access log cannot be forged, and public routes cannot be held open by a body that never comes."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from raw_http import raw_request

from plus_sdk.cli import main as plus_main
from plus_sdk.server.keys import create_key, list_keys
from plus_sdk.server.spawn import spawned_server
from plus_sdk.store import SummaryStore

MAX_CONNECTIONS = 50


@dataclass
class KeysOnlyServer:
    url: str
    db: Path
    log: Path

    def new_key(self, user: str) -> tuple[str, dict[str, str]]:
        """A fresh key of ``user``: (key id, headers sending it)."""
        with SummaryStore(self.db) as store:
            record, token = create_key(store, user)
        return record.key_id, {"Authorization": f"Bearer {token}"}

    def log_lines(self, needle: str, timeout_s: float = 10.0) -> list[str]:
        """The access-log lines holding ``needle``, waiting for the first one to appear."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = [line for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines()
                     if needle in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeysOnlyServer]:
    folder = tmp_path_factory.mktemp("keys-only")
    db, log = folder / "s.sqlite3", folder / "serve.log"
    with SummaryStore(db) as store:
        create_key(store, "yara")  # the server starts with one user key and no admin token
    flags = ["--model", str(tiny_model_dir), "--served-model-name", "tiny", "--store", str(db),
             "--max-connections", str(MAX_CONNECTIONS)]  # the default body timeout: 30 s
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PLUS_SERVE_TOKEN": ""}
    with spawned_server(flags, env=env, start_timeout=400, log_path=log) as (url, _):
        yield KeysOnlyServer(url, db, log)


def test_revoking_the_last_key_leaves_a_keys_only_server_closed(server: KeysOnlyServer) -> None:
    _, yara = server.new_key("yara")
    assert httpx.put(f"{server.url}/v1/summaries/yara", json={"text": "likes tea"}, headers=yara,
                     timeout=30).status_code == 200
    with SummaryStore(server.db) as store:
        active = [k.key_id for k in list_keys(store)]
    for key_id in active:  # the `plus keys revoke ID` an operator runs
        assert plus_main(["keys", "revoke", key_id, "--store", str(server.db)]) == 0
    for headers in ({}, yara):  # anonymous, and the revoked key itself
        for method, path in (("GET", "yara"), ("GET", "yara/export"), ("DELETE", "yara")):
            answer = httpx.request(method, f"{server.url}/v1/summaries/{path}", headers=headers, timeout=30)
            assert answer.status_code == 401, (method, path, headers, answer.text)
    assert httpx.get(f"{server.url}/ui/info", timeout=30).json() == {"store": True, "auth": True}
    with SummaryStore(server.db) as store:
        assert store.current("yara") is not None  # nothing was deleted


def test_ui_info_says_a_keys_only_server_needs_auth(server: KeysOnlyServer) -> None:
    assert httpx.get(f"{server.url}/ui/info", timeout=30).json() == {"store": True, "auth": True}


def test_a_deleted_user_s_key_can_no_longer_re_create_them(server: KeysOnlyServer) -> None:
    _, wren = server.new_key("wren@example.com")
    user = f"{server.url}/v1/summaries/wren@example.com"
    assert httpx.put(user, json={"text": "likes owls"}, headers=wren, timeout=30).status_code == 200
    assert httpx.delete(user, headers=wren, timeout=30).status_code == 200
    assert httpx.put(user, json={"text": "back again"}, headers=wren, timeout=30).status_code == 401
    with SummaryStore(server.db) as store:
        assert store.current("wren@example.com") is None
        assert all("wren" not in k.user_id + k.label for k in list_keys(store, include_revoked=True))


def test_a_request_cannot_write_a_forged_line_into_the_access_log(server: KeysOnlyServer) -> None:
    forged = "INFO plus_sdk.server.access: DELETE /v1/summaries/bob 200 1.0ms user=admin"
    path = "/v1/x%0A" + forged.replace(" ", "%20")
    assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 401
    assert httpx.get(f"{server.url}/v1/nul%00here%1B[31m", timeout=30).status_code == 401
    assert server.log_lines("/v1/x%0AINFO%20plus_sdk.server.access:%20DELETE")  # logged, escaped, on one line
    assert server.log_lines("/v1/nul%00here%1B")
    text = server.log.read_text(encoding="utf-8", errors="replace")
    assert not any(line.startswith(forged) or line.startswith("INFO plus_sdk.server.access: DELETE /v1/summaries/bob")
                   for line in text.splitlines())
    assert "\x00" not in text and "\x1b" not in text


def test_the_access_log_names_the_key_id_of_a_user_key_never_the_user_or_secret(server: KeysOnlyServer) -> None:
    key_id, ivy = server.new_key("ivy.secret@example.com")
    assert httpx.get(f"{server.url}/v1/summaries/ivy.secret@example.com/history", headers=ivy,
                     timeout=30).status_code == 404
    lines = server.log_lines("/history 404")
    assert lines and all(line.endswith(f"user=key:{key_id}") for line in lines), lines
    secret = ivy["Authorization"].split()[1]
    assert secret not in server.log.read_text(encoding="utf-8")


def test_an_abandoned_body_is_logged_as_499_not_500(server: KeysOnlyServer) -> None:
    _, zed = server.new_key("zed")
    head = (f"PUT /v1/summaries/zed HTTP/1.1\r\nHost: x\r\nAuthorization: {zed['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te").encode()
    parsed = urlparse(server.url)
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(head)
        time.sleep(0.5)  # the server is reading the body; then the client gives up
    lines = server.log_lines("PUT /v1/summaries/zed ")
    assert lines and " 499 " in lines[-1] and " 500 " not in lines[-1], lines


def test_a_route_that_takes_no_body_refuses_one_at_once(server: KeysOnlyServer) -> None:
    for request in (b"POST /ui/info", b"GET /health", b"POST /docs", b"GET /v1/models"):
        head = request + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"  # the body never comes
        answer, seconds = raw_request(server.url, head, wait_s=20)
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 401")) and seconds < 5, (request, answer[:80], seconds)


def test_slow_bodies_on_public_routes_cannot_starve_health(server: KeysOnlyServer) -> None:
    head = b"POST /ui/info HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"  # the body never comes
    parsed = urlparse(server.url)
    sockets = [socket.create_connection((parsed.hostname, parsed.port), timeout=20)
               for _ in range(MAX_CONNECTIONS - 1)]
    try:
        for sock in sockets:
            sock.sendall(head)
        time.sleep(0.5)
        health = httpx.get(f"{server.url}/health", timeout=30)
        answers = [sock.recv(65536) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert health.status_code == 200, health.text
    assert all(a.startswith(b"HTTP/1.1 400") for a in answers), [a[:40] for a in answers][:3]
    assert "takes no request body" in json.loads(answers[0].split(b"\r\n\r\n", 1)[1])["error"]["message"]
