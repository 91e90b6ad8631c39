"""SummaryStore on both backends: operations, rules, validation, schema, export/import, CLI, HTTP.

Tests taking ``store`` or ``new_store_location`` run twice: on a real SQLite file and on a real
PostgreSQL server started for the test run (see ``conftest.py``); the rest are SQLite-specific.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plus_sdk.cli import main as plus_main
from plus_sdk.server.store_routes import add_store_routes
from plus_sdk.store import (
    SCHEMA_VERSION,
    EmptySummaryError,
    ImportConflictError,
    ImportFormatError,
    InvalidUserIdError,
    SchemaError,
    SummaryStore,
    SummaryStoreError,
    SummaryTooLargeError,
    UnknownUserError,
    UnknownVersionError,
)
from plus_sdk.types import Summary


def model_summary(text: str, source_hash: str = "h1") -> Summary:
    return Summary(text=text, model_id="tiny:generic", prompt_version="p1", source_hash=source_hash)


@pytest.fixture()
def store(new_store_location: Callable[[], str]) -> Iterator[SummaryStore]:
    with SummaryStore(new_store_location()) as opened:
        yield opened


def raw_execute(location: str, statements: list[str]) -> list[Any]:
    """Run SQL on the database under a store location without the store; the last statement's rows."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            rows: list[Any] = []
            for sql in statements:
                cur = conn.execute(sql)
                rows = cur.fetchall() if cur.description else []
            return rows
    with sqlite3.connect(location) as conn:
        rows = []
        for sql in statements:
            rows = conn.execute(sql).fetchall()
        return rows


def table_names(location: str) -> set[str]:
    sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
           if location.startswith("postgresql://") else "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in raw_execute(location, [sql])}


def test_put_get_and_metadata(store: SummaryStore) -> None:
    assert store.get("alice") is None and store.history("alice") == []
    row = store.put("alice", model_summary("Likes short answers about cats."))
    assert (row.version, row.author, row.action, row.is_current) == (1, "model", "put", True)
    got = store.get("alice")
    assert got is not None and got.text == "Likes short answers about cats."
    assert (got.model_id, got.prompt_version, got.source_hash) == ("tiny:generic", "p1", "h1")
    assert not got.edited_by_user
    assert store.users() == ["alice"] and len(store) == 1 and "alice" in store and "bob" not in store


def test_sqlite_runs_in_wal_mode_with_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SummaryStore(path).close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT MAX(version) FROM plus_schema_version").fetchone()[0] == SCHEMA_VERSION


def test_model_summary_never_silently_overwrites_a_user_edit(store: SummaryStore) -> None:
    store.put("alice", model_summary("Likes cats."))
    store.edit("alice", "I like cats and hate long answers.")
    held = store.put("alice", model_summary("Likes dogs.", "h2"))
    assert held.is_proposal and not held.is_current and held.action == "proposal"
    current = store.get("alice")
    assert current is not None and current.text == "I like cats and hate long answers." and current.edited_by_user
    proposal = store.proposal("alice")
    assert proposal is not None and proposal.text == "Likes dogs."
    forced = store.put("alice", model_summary("Likes birds.", "h3"), overwrite_user_edits=True)
    assert forced.is_current and store.get("alice").text == "Likes birds."  # type: ignore[union-attr]
    assert store.proposal("alice") is None  # a model summary taking over clears the old proposal


def test_accept_and_dismiss_proposal(store: SummaryStore) -> None:
    store.edit("bob", "Wants examples in Python.")
    store.put("bob", model_summary("Prefers Rust.", "h2"))
    accepted = store.accept_proposal("bob")
    assert accepted.action == "accept" and accepted.based_on == 2 and accepted.author == "model"
    assert store.get("bob").text == "Prefers Rust." and store.proposal("bob") is None  # type: ignore[union-attr]
    store.edit("bob", "Python, please.")
    store.put("bob", model_summary("Prefers Go.", "h3"))
    assert store.dismiss_proposal("bob") is True and store.proposal("bob") is None
    assert store.dismiss_proposal("bob") is False
    with pytest.raises(UnknownVersionError, match="no pending proposal"):
        store.accept_proposal("bob")


def test_history_and_revert(store: SummaryStore) -> None:
    store.put("carol", model_summary("v1 text"))
    store.put("carol", model_summary("v2 text", "h2"))
    store.edit("carol", "v3 by hand")
    reverted = store.revert("carol", 1)
    assert (reverted.version, reverted.action, reverted.based_on, reverted.author) == (4, "revert", 1, "user")
    history = store.history("carol")
    assert [r.version for r in history] == [1, 2, 3, 4]
    assert [r.text for r in history] == ["v1 text", "v2 text", "v3 by hand", "v1 text"]
    assert [r.is_current for r in history] == [False, False, False, True]
    assert store.get("carol").source_hash == "h1"  # type: ignore[union-attr]
    assert store.version("carol", 2).text == "v2 text"
    with pytest.raises(UnknownVersionError, match="no version 9"):
        store.revert("carol", 9)
    assert len(store.history("carol")) == 4  # the failed revert wrote nothing


def test_edit_keeps_the_source_hash_it_corrected(store: SummaryStore) -> None:
    store.put("dan", model_summary("model view", "ctx-hash"))
    edited = store.edit("dan", "my view")
    assert edited.source_hash == "ctx-hash" and edited.model_id == "user"


SECRET = "Erin-secret-marker-" + "x" * 40


def write_then_forget_erin(store: SummaryStore) -> None:
    """Erin (two versions holding ``SECRET``) and Frank are written; Erin is deleted."""
    store.put("erin", model_summary(SECRET))
    store.edit("erin", SECRET + " edited")
    store.put("frank", model_summary("Frank stays."))
    assert store.delete("erin") == 2
    assert store.get("erin") is None and store.history("erin") == [] and store.users() == ["frank"]


def test_delete_really_forgets_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "forget.sqlite3"
    secret = SECRET
    with SummaryStore(path) as store:
        write_then_forget_erin(store)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("forget.sqlite3")]
        blob = b"".join(p.read_bytes() for p in files)
        assert secret.encode() not in blob  # neither the database nor its WAL keeps the text
        assert b"Frank stays." in blob
        assert store.delete("erin") == 0


def test_delete_on_postgres_leaves_no_row_and_a_full_vacuum_clears_the_table_file(postgres_server: Any) -> None:
    url = postgres_server.new_database()
    with SummaryStore(url) as store:
        write_then_forget_erin(store)
        rows = raw_execute(url, ["SELECT COUNT(*) FROM plus_summary_versions WHERE text LIKE 'Erin-secret%'"])
        assert rows == [(0,)]
        store.backend.vacuum(full=True)  # type: ignore[attr-defined]
        path = raw_execute(url, ["CHECKPOINT", "SELECT pg_relation_filepath('plus_summary_versions')"])[0][0]
    blob = (postgres_server.data / path).read_bytes()
    assert SECRET.encode() not in blob and b"Frank stays." in blob


@pytest.mark.parametrize("bad", ["", " ", "a b", "a/b", "-leading", "x" * 129, "naïve", "line\nbreak"])
def test_invalid_user_ids_error_clearly(store: SummaryStore, bad: str) -> None:
    with pytest.raises(InvalidUserIdError, match="user_id"):
        store.put(bad, model_summary("text"))
    assert store.users() == []


def test_valid_user_ids(store: SummaryStore) -> None:
    for user in ("u-cat", "alice@example.com", "tenant:42", "A.b_c+d", "x" * 128, "7"):
        store.edit(user, "hello")
    assert len(store.users()) == 6


def test_oversized_and_empty_texts_error_clearly(new_store_location: Callable[[], str]) -> None:
    with SummaryStore(new_store_location(), max_text_chars=100) as store:
        with pytest.raises(SummaryTooLargeError, match="101 characters, more than the limit 100"):
            store.edit("alice", "y" * 101)
        with pytest.raises(SummaryTooLargeError):
            store.put("alice", model_summary("z" * 500))
        with pytest.raises(SummaryTooLargeError, match="model_id"):
            store.put("alice", Summary(text="ok", model_id="m" * 600))
        with pytest.raises(EmptySummaryError, match="empty"):
            store.edit("alice", "   ")
        assert store.history("alice") == []
        assert store.edit("alice", "y" * 100).version == 1


def test_errors_are_value_or_lookup_errors() -> None:
    assert issubclass(InvalidUserIdError, ValueError) and issubclass(SummaryTooLargeError, ValueError)
    assert issubclass(UnknownVersionError, LookupError) and issubclass(UnknownUserError, LookupError)


def write_v1_database(location: str) -> None:
    """A database as the version-1 schema left it (one row per user, no history)."""
    raw_execute(location, [
        "CREATE TABLE plus_schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)",
        "INSERT INTO plus_schema_version VALUES (1, '2026-01-01T00:00:00+00:00')",
        "CREATE TABLE plus_summaries (user_id TEXT NOT NULL PRIMARY KEY, text TEXT NOT NULL, "
        "model_id TEXT NOT NULL, prompt_version TEXT NOT NULL, source_hash TEXT NOT NULL, "
        "created_at TEXT NOT NULL, edited_by_user INTEGER NOT NULL)",
        "INSERT INTO plus_summaries VALUES ('old-model', 'Likes tea.', 'm0', 'p0', 'h0', "
        "'2026-01-02T03:04:05+00:00', 0)",
        "INSERT INTO plus_summaries VALUES ('old-user', 'I wrote this.', 'user', '', '', "
        "'2026-01-03T00:00:00+00:00', 1)",
    ])


def test_migration_from_schema_version_1(new_store_location: Callable[[], str]) -> None:
    location = new_store_location()
    write_v1_database(location)
    with SummaryStore(location) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.users() == ["old-model", "old-user"]
        old = store.current("old-model")
        assert old is not None and (old.version, old.text, old.author) == (1, "Likes tea.", "model")
        assert old.source_hash == "h0"
        assert old.created_at.year == 2026 and old.created_at.month == 1
        mine = store.current("old-user")
        assert mine is not None and mine.author == "user" and mine.edited_by_user
        assert store.put("old-user", model_summary("model guess")).is_proposal  # the migrated edit is protected
        assert store.put("old-model", model_summary("newer")).version == 2
    versions = [r[0] for r in raw_execute(location, ["SELECT version FROM plus_schema_version ORDER BY version"])]
    tables = table_names(location)
    assert versions == [1, 2, 3] and "plus_summaries" not in tables and "plus_api_keys" in tables


def test_newer_schema_is_refused(new_store_location: Callable[[], str]) -> None:
    location = new_store_location()
    SummaryStore(location).close()
    raw_execute(location, ["INSERT INTO plus_schema_version VALUES (99, '2030-01-01T00:00:00+00:00')"])
    with pytest.raises(SchemaError, match="schema version 99, newer"):
        SummaryStore(location)


def test_unsupported_urls(tmp_path: Path) -> None:
    with pytest.raises(SummaryStoreError, match="unsupported store URL"):
        SummaryStore("mysql://db.example/plus")
    with SummaryStore(f"sqlite:///{tmp_path / 'url.sqlite3'}") as store:
        store.edit("u1", "via URL")
    assert (tmp_path / "url.sqlite3").exists()


def test_an_unreachable_postgres_url_is_a_clear_error_without_the_password(postgres_server: Any) -> None:
    from pg_server import free_port

    url = f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/plus"
    with pytest.raises(SummaryStoreError, match="cannot connect to the PostgreSQL store") as caught:
        SummaryStore(url, connect_timeout_s=2)
    assert "hunter2" not in str(caught.value) and "someone:***@127.0.0.1" in str(caught.value)


def test_export_import_roundtrip(tmp_path: Path, store: SummaryStore, new_store_location: Callable[[], str]) -> None:
    store.put("alice", model_summary("a1"))
    store.edit("alice", "a2 by hand")
    store.put("alice", model_summary("a3 proposal", "h3"))
    store.put("bob", model_summary("b1"))
    out = tmp_path / "export.jsonl"
    assert store.export_jsonl(out) == 4
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == "plus-summaries" and len(lines) == 5
    with SummaryStore(new_store_location()) as copy:
        assert copy.import_jsonl(out, trust_authors=True) == {"alice": 3, "bob": 1}
        assert [r.model_dump() for r in copy.history("alice")] == [r.model_dump() for r in store.history("alice")]
        assert copy.get("alice").text == "a2 by hand" and copy.proposal("alice").text == "a3 proposal"  # type: ignore[union-attr]
        assert copy.edit("alice", "continues").version == 4
        with pytest.raises(ImportConflictError, match="already has summaries"):
            copy.import_jsonl(out)
        assert copy.history("bob")[0].text == "b1"  # the failed import changed nothing
        assert copy.import_jsonl(out, on_conflict="skip") == {}
        assert copy.import_jsonl(out, user_ids=["alice"], on_conflict="replace") == {"alice": 3}
        assert len(copy.history("alice")) == 3


def test_import_rejects_bad_files(tmp_path: Path, store: SummaryStore) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "x"}\n', encoding="utf-8")
    with pytest.raises(ImportFormatError, match="line 1 should be the header"):
        store.import_jsonl(bad)
    header = json.dumps({"format": "plus-summaries", "schema_version": 2})
    row = {"user_id": "x", "version": 2, "text": "t", "author": "model", "action": "put",
           "created_at": "2026-01-01T00:00:00+00:00"}
    bad.write_text(header + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match=r"versions must be 1\.\.1"):
        store.import_jsonl(bad)
    bad.write_text(header + "\n" + json.dumps({**row, "version": 1, "user_id": "bad id"}) + "\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match="line 2: user_id 'bad id'"):
        store.import_jsonl(bad)
    bad.write_text(header + "\nnot json\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match="line 2 is not JSON"):
        store.import_jsonl(bad)
    assert store.users() == []


def test_export_to_a_stream(store: SummaryStore) -> None:
    store.edit("alice", "hello")
    buffer = io.StringIO()
    assert store.export_jsonl(buffer, ["alice"]) == 1
    assert json.loads(buffer.getvalue().splitlines()[1])["text"] == "hello"


# -- CLI ----------------------------------------------------------------------------------


def test_cli_show_edit_history_revert_export_import_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          new_store_location: Callable[[], str]) -> None:
    db = new_store_location()  # --store takes a file or a postgresql:// URL
    with SummaryStore(db) as store:
        store.put("alice", model_summary("Likes cats."))
    assert plus_main(["summaries", "edit", "alice", "Likes cats, short replies.", "--store", db]) == 0
    assert plus_main(["summaries", "show", "alice", "--json", "--store", db]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert shown["current"]["text"] == "Likes cats, short replies." and shown["current"]["version"] == 2
    assert plus_main(["summaries", "revert", "alice", "1", "--store", db]) == 0
    assert plus_main(["summaries", "history", "alice", "--json", "--store", db]) == 0
    history = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert [h["action"] for h in history] == ["put", "edit", "revert"]
    out = tmp_path / "alice.jsonl"
    assert plus_main(["summaries", "export", "alice", "-o", str(out), "--store", db]) == 0
    assert plus_main(["summaries", "delete", "alice", "--store", db]) == 2  # needs --yes
    assert plus_main(["summaries", "delete", "alice", "--yes", "--store", db]) == 0
    assert plus_main(["summaries", "show", "alice", "--store", db]) == 2
    assert "has no summary" in capsys.readouterr().err
    assert plus_main(["summaries", "import", "alice", "-i", str(out), "--store", db]) == 0
    assert plus_main(["summaries", "import", "--all", "-i", str(out), "--store", db, "--on-conflict", "skip"]) == 0
    with SummaryStore(db) as store:
        assert [r.text for r in store.history("alice")] == ["Likes cats.", "Likes cats, short replies.", "Likes cats."]
    assert plus_main(["summaries", "edit", "bad id", "x", "--store", db]) == 2
    assert "user_id 'bad id' is not allowed" in capsys.readouterr().err
    assert plus_main(["summaries", "export", "--store", db]) == 2  # neither a user nor --all


# -- HTTP ---------------------------------------------------------------------------------


def test_http_routes_with_auth(store: SummaryStore) -> None:
    from fastapi import FastAPI, Header, HTTPException

    from plus_sdk.server import serve_in_thread

    def auth(authorization: str = Header(default="")) -> None:
        if authorization != "Bearer s3cret":
            raise HTTPException(401, "missing or wrong bearer token")

    app = FastAPI()
    add_store_routes(app, store, auth)
    store.put("alice", model_summary("Likes cats."))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/summaries/alice").status_code == 401
        client.headers["Authorization"] = "Bearer s3cret"
        shown = client.get("/v1/summaries/alice").json()
        assert shown["current"]["text"] == "Likes cats." and shown["proposal"] is None
        edited = client.put("/v1/summaries/alice", json={"text": "Cats, briefly."})
        assert edited.status_code == 200 and edited.json()["version"] == 2
        store.put("alice", model_summary("Dogs.", "h2"))
        assert client.get("/v1/summaries/alice").json()["proposal"]["text"] == "Dogs."
        assert client.post("/v1/summaries/alice/proposal").json()["action"] == "accept"
        assert client.post("/v1/summaries/alice/revert", json={"version": 2}).json()["text"] == "Cats, briefly."
        history = client.get("/v1/summaries/alice/history").json()
        assert [h["version"] for h in history] == [1, 2, 3, 4, 5]
        assert client.post("/v1/summaries/alice/revert", json={"version": 42}).status_code == 404
        assert client.put("/v1/summaries/bad%20id", json={"text": "x"}).status_code == 400
        assert client.put("/v1/summaries/alice", json={"text": "x" * 9000}).status_code == 400
        exported = client.get("/v1/summaries/alice/export").text
        assert client.delete("/v1/summaries/alice").json() == {"user_id": "alice", "deleted_versions": 5}
        assert client.get("/v1/summaries/alice").status_code == 404
        assert client.post("/v1/summaries/import", content=exported).json() == {"imported": {"alice": 5}}
        assert client.post("/v1/summaries/import", content=exported).status_code == 409
    assert store.get("alice").text == "Cats, briefly."  # type: ignore[union-attr]


def test_plus_serve_takes_a_postgres_url_for_its_store(tiny_model_dir: Path, postgres_server: Any) -> None:
    from plus_sdk.server import ServeConfig, Services, create_app, serve_in_thread

    url = postgres_server.new_database()
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", store=url)
    with serve_in_thread(create_app(config, services=Services(config))) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        assert client.put("/v1/summaries/alice", json={"text": "Stored in PostgreSQL."}).json()["version"] == 1
        assert client.get("/ui/info").json() == {"store": True, "auth": False}
    with SummaryStore(url) as store:
        assert store.get("alice").text == "Stored in PostgreSQL."  # type: ignore[union-attr]
