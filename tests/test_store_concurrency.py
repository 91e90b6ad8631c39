"""SummaryStore reliability on both backends (a SQLite file, a live PostgreSQL server): concurrent
processes and threads, killed writers, lock timeouts, racing migrations."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from plus_sdk.store import SCHEMA_VERSION, StoreBusyError, SummaryStore
from plus_sdk.types import Summary

USERS = ("shared-a", "shared-b", "shared-c")


def run_ops(store: SummaryStore, worker: int, n_ops: int) -> list[tuple[str, int, str]]:
    """A mix of model puts, user edits, forced puts and reverts; returns (user, version, text) written."""
    written = []
    for op in range(n_ops):
        user = USERS[(worker + op) % len(USERS)]
        text = f"worker {worker} op {op}"
        kind = op % 4
        if kind == 0:
            row = store.put(user, Summary(text=text, model_id="m", source_hash=f"h{worker}-{op}"))
        elif kind == 1:
            row = store.edit(user, text)
        elif kind == 2:
            row = store.put(user, Summary(text=text, model_id="m"), overwrite_user_edits=True)
        else:
            row = store.revert(user, 1)
        written.append((user, row.version, row.text))
    return written


def process_worker(path: str, worker: int, n_ops: int, start: object, results: object) -> None:
    store = SummaryStore(path)  # each process opens its own connections
    start.wait()  # type: ignore[attr-defined]
    try:
        results.put((worker, run_ops(store, worker, n_ops)))  # type: ignore[attr-defined]
    except Exception as exc:  # report instead of dying silently
        results.put((worker, repr(exc)))  # type: ignore[attr-defined]
    store.close()


def check_consistent(store: SummaryStore, written: list[tuple[str, int, str]]) -> None:
    """Every write is in the history exactly once; versions are 1..N; pointers are right."""
    per_user = Counter(user for user, _, _ in written)
    assert sorted(store.users()) == sorted(per_user)
    for user, count in per_user.items():
        history = store.history(user)
        assert [r.version for r in history] == list(range(1, count + 1)), f"{user}: versions not contiguous"
        stored = {(r.version, r.text) for r in history}
        mine = {(version, text) for u, version, text in written if u == user}
        assert stored == mine and len(mine) == count  # nothing lost, nothing duplicated
        applied = [r.version for r in history if r.action != "proposal"]
        assert store.current(user).version == max(applied)  # type: ignore[union-attr]


def run_processes(path: str, target: Callable[..., None], n_ops: int, procs: int = 4,
                  timeout_s: float = 600) -> list[tuple[str, int, str]]:
    """Start ``procs`` forked writers at once on a migrated store; the (user, version, text) rows they wrote."""
    SummaryStore(path).close()
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=target, args=(path, w, n_ops, start, results)) for w in range(procs)]
    for p in workers:
        p.start()
    outcomes = dict(results.get(timeout=timeout_s) for _ in workers)
    for p in workers:
        p.join(timeout=30)
        assert p.exitcode == 0
    errors = {w: o for w, o in outcomes.items() if isinstance(o, str)}
    assert not errors, errors
    return [row for rows in outcomes.values() for row in rows]


def test_four_processes_writing_at_once_lose_nothing(new_store_location: Callable[[], str]) -> None:
    path = new_store_location()
    written = run_processes(path, process_worker, 50)
    assert len(written) == 200
    with SummaryStore(path) as store:
        check_consistent(store, written)
        assert sum(len(store.history(u)) for u in USERS) == 200


def test_threads_sharing_one_store_lose_nothing(new_store_location: Callable[[], str]) -> None:
    written: list[tuple[str, int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with SummaryStore(new_store_location()) as store:
        start = threading.Barrier(6)

        def work(worker: int) -> None:
            start.wait()
            try:
                rows = run_ops(store, worker, 40)
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                written.extend(rows)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(written) == 240
        check_consistent(store, written)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from plus_sdk.store import SummaryStore
    store = SummaryStore(sys.argv[1])
    for i in range(1, 26):
        store.edit("victim", f"committed {i}")
        print(f"committed {i}", flush=True)
    with store.backend.write("victim") as cur:  # a write the process never finishes
        head = store._head(cur, "victim")
        store._append(cur, "victim", head, ("never committed", "user", "", ""), author="user", action="edit",
                      becomes="current")
        cur.execute("INSERT INTO plus_summary_versions (user_id, version, text, model_id, prompt_version, "
                    "source_hash, created_at, author, action) VALUES ('bystander', 1, 'also never committed', "
                    "'user', '', '', '2026-01-01T00:00:00+00:00', 'user', 'edit')")
        print("mid-write", flush=True)
        time.sleep(120)
""")


def one_user_writer(path: str, worker: int, n_ops: int, start: object, results: object) -> None:
    store = SummaryStore(path)
    start.wait()  # type: ignore[attr-defined]
    try:
        rows = [(store.edit("one-user", f"worker {worker} write {i}") if i % 2 else
                 store.put("one-user", Summary(text=f"worker {worker} write {i}", model_id="m"),
                           overwrite_user_edits=True)) for i in range(n_ops)]
        results.put((worker, [("one-user", r.version, r.text) for r in rows]))  # type: ignore[attr-defined]
    except Exception as exc:
        results.put((worker, repr(exc)))  # type: ignore[attr-defined]
    store.close()


def test_four_processes_times_500_writes_to_one_user_lose_nothing(new_store_location: Callable[[], str]) -> None:
    path = new_store_location()
    written = run_processes(path, one_user_writer, 500)
    assert len(written) == 2000 and len({v for _, v, _ in written}) == 2000  # no version handed out twice
    with SummaryStore(path) as store:
        check_consistent(store, written)  # versions 1..2000, each write exactly once


def test_killed_writer_leaves_the_last_committed_version(new_store_location: Callable[[], str]) -> None:
    path = new_store_location()
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.strip() == "mid-write":
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, lines
    assert lines[-2:] == ["committed 25", "mid-write"]
    if not path.startswith("postgresql://"):
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SummaryStore(path, busy_timeout_s=5) as store:
        history = store.history("victim")
        assert [r.version for r in history] == list(range(1, 26))
        assert store.get("victim").text == "committed 25"  # type: ignore[union-attr]
        assert store.users() == ["victim"]  # the half-written bystander row is gone too
        assert store.edit("victim", "after the crash").version == 26  # the dead writer's lock is released


def test_a_held_write_lock_times_out_with_a_clear_error(new_store_location: Callable[[], str]) -> None:
    path = new_store_location()
    with SummaryStore(path) as holder, SummaryStore(path, busy_timeout_s=0.2) as waiter:
        with holder.backend.write("alice"):
            with pytest.raises(StoreBusyError, match="larger busy_timeout_s"):
                waiter.edit("alice", "blocked")
        assert waiter.edit("alice", "now free").version == 1


def test_on_postgres_writers_of_different_users_do_not_wait_for_each_other(postgres_server: object) -> None:
    path = postgres_server.new_database()  # type: ignore[attr-defined]
    with SummaryStore(path) as holder, SummaryStore(path, busy_timeout_s=0.2) as other:
        with holder.backend.write("alice"):
            assert other.edit("bob", "not blocked by alice's writer").version == 1
            with pytest.raises(StoreBusyError):
                other.edit("alice", "blocked")


def open_and_edit(path: str, worker: int, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        with SummaryStore(path) as store:
            results.put((worker, store.schema_version, store.edit(f"opener-{worker}", "hello").version))  # type: ignore[attr-defined]
    except Exception as exc:
        results.put((worker, repr(exc), None))  # type: ignore[attr-defined]


def test_processes_migrating_an_old_database_at_once(new_store_location: Callable[[], str]) -> None:
    from test_store import raw_execute, write_v1_database

    path = new_store_location()
    write_v1_database(path)
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=open_and_edit, args=(str(path), w, start, results)) for w in range(4)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert outcomes == [(w, SCHEMA_VERSION, 1) for w in range(4)]
    applied = [r[0] for r in raw_execute(path, ["SELECT version FROM plus_schema_version ORDER BY version"])]
    assert applied == list(range(1, SCHEMA_VERSION + 1))
    with SummaryStore(path) as store:
        assert store.users() == ["old-model", "old-user"] + [f"opener-{w}" for w in range(4)]
        assert len(store.history("old-model")) == 1  # migrated once, not once per process


def test_on_postgres_a_session_the_server_dropped_is_replaced(postgres_server: object) -> None:
    import psycopg

    path = postgres_server.new_database()  # type: ignore[attr-defined]
    with SummaryStore(path) as store:
        store.edit("alice", "before")
        pid = store.backend._connection().info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(path, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        assert store.edit("alice", "after the server dropped us").version == 2
        assert store.backend._connection().info.backend_pid != pid  # type: ignore[attr-defined]
