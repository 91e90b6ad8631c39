"""SummaryStore throughput on a real SQLite file (ext4 under the repository's temp folder), or on a
real PostgreSQL server (``--backend postgres``: started for the run like the tests' server, data in
a temp folder, on 127.0.0.1 over TCP, with PostgreSQL's durable defaults: fsync and synchronous commit on).

Measures, for SQLite's ``synchronous=FULL`` (the default: every commit is fsynced) and ``NORMAL``
(PostgreSQL: one durable run):

- **put**: model summaries written to ``--users`` users round-robin (one transaction each);
- **edit**: user edits, same pattern;
- **get**: current summary reads, random users;
- **history**: full-history reads of one user with ``--history-len`` versions;
- **concurrent put**: ``--procs`` processes putting at once into the same file; every
  version is then checked to be present exactly once, contiguous per user.

``os.getloadavg()`` is recorded because the machine is shared.

    .venv/bin/python benchmarks/store_speed.py            # ~30 s
    .venv/bin/python benchmarks/store_speed.py --quick    # ~5 s smoke run
    .venv/bin/python benchmarks/store_speed.py --backend postgres
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from plus_sdk.store import SummaryStore
from plus_sdk.types import Summary

RESULTS = {"sqlite": Path(__file__).resolve().parent / "results" / "store_speed.json",
           "postgres": Path(__file__).resolve().parent / "results" / "store_speed_postgres.json"}
TEXT = ("Prefers short, concrete answers with one example; likes cats, dislikes jargon; "
        "asks follow-up questions about cooking and travel.")


def summary(i: int) -> Summary:
    return Summary(text=f"{TEXT} #{i}", model_id="bench:generic", prompt_version="v1", source_hash=f"{i:032x}")


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def single_process(path: str, synchronous: str | None, n_ops: int, users: int, history_len: int) -> dict[str, Any]:
    options = {"synchronous": synchronous} if synchronous else {}
    with SummaryStore(path, **options) as store:
        ids = [f"user-{u}" for u in range(users)]
        t0 = time.perf_counter()
        for i in tqdm(range(n_ops), desc=f"put ({synchronous})", leave=False):
            store.put(ids[i % users], summary(i))
        put_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_ops):
            store.edit(ids[i % users], f"edited by hand #{i}")
        edit_s = time.perf_counter() - t0
        rng = random.Random(0)
        t0 = time.perf_counter()
        for _ in range(n_ops):
            assert store.get(rng.choice(ids)) is not None
        get_s = time.perf_counter() - t0
        for i in range(history_len):
            store.put("long-history", summary(i), overwrite_user_edits=True)
        reads = max(n_ops // 20, 10)
        t0 = time.perf_counter()
        for _ in range(reads):
            assert len(store.history("long-history")) == history_len
        history_s = time.perf_counter() - t0
    return {"synchronous": synchronous, "ops": n_ops, "users": users,
            "put_per_s": rate(n_ops, put_s), "edit_per_s": rate(n_ops, edit_s), "get_per_s": rate(n_ops, get_s),
            "history_reads_per_s": rate(reads, history_s), "history_len": history_len,
            "file_bytes": Path(path).stat().st_size if synchronous else None}


def _writer(path: str, worker: int, n_ops: int, users: int, start: Any, out: Any) -> None:
    store = SummaryStore(path)
    start.wait()
    t0 = time.perf_counter()
    written = [(f"user-{(worker + i) % users}", store.put(f"user-{(worker + i) % users}", summary(i)).version)
               for i in range(n_ops)]
    out.put((time.perf_counter() - t0, written))
    store.close()


def concurrent(path: str, procs: int, n_ops: int, users: int) -> dict[str, Any]:
    SummaryStore(path).close()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(str(path), w, n_ops, users, start, out)) for w in range(procs)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=600) for _ in workers]
    wall = time.perf_counter() - t0
    for w in workers:
        w.join()
    written = [row for _, rows in results for row in rows]
    with SummaryStore(path) as store:
        contiguous = all([r.version for r in store.history(u)] == list(range(1, len(store.history(u)) + 1))
                         for u in store.users())
        stored = {(u, r.version) for u in store.users() for r in store.history(u)}
    integrity = None
    if not path.startswith("postgresql://"):
        with sqlite3.connect(path) as raw:
            integrity = raw.execute("PRAGMA integrity_check").fetchone()[0]
    return {"procs": procs, "ops_per_proc": n_ops, "users": users, "total_puts": len(written),
            "put_per_s_total": rate(len(written), wall), "all_versions_present": stored == set(written),
            "duplicates": len(written) - len(set(written)), "contiguous": contiguous, "integrity_check": integrity}


@contextmanager
def locations(backend: str) -> Iterator[Any]:
    """Yields a function making fresh store locations: SQLite files in a temp folder, or databases on a
    PostgreSQL server started (durable settings) for the run."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
            names = iter(range(1_000_000))
            yield lambda: str(Path(tmp) / f"store-{next(names)}.sqlite3")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_server import PostgresServer, why_no_postgres

    reason = why_no_postgres()
    if reason:
        raise SystemExit(f"--backend postgres: {reason}")
    with PostgresServer(durable=True) as server:
        yield server.new_database


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per single-process measurement")
    parser.add_argument("--users", type=int, default=100, help="distinct users written round-robin")
    parser.add_argument("--history-len", type=int, default=200, help="versions of the user whose history is read")
    parser.add_argument("--procs", type=int, default=4, help="concurrent writer processes")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="sqlite file, or a PostgreSQL server started for the run")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON results")
    args = parser.parse_args()
    if args.quick:
        args.ops, args.history_len = 200, 50
    with locations(args.backend) as new_location:
        modes = ("FULL", "NORMAL") if args.backend == "sqlite" else (None,)
        runs = [single_process(new_location(), mode, args.ops, args.users, args.history_len) for mode in modes]
        conc = concurrent(new_location(), args.procs, args.ops // args.procs, 10)
        version = sqlite3.sqlite_version if args.backend == "sqlite" else server_version(new_location())
    report = {"backend": args.backend, "single_process": runs, "concurrent": conc, "server_version": version,
              "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
              "quick": args.quick}
    out = args.out or RESULTS[args.backend]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
