"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temp folder, listen on 127.0.0.1.

``PostgresServer`` finds Debian's binaries (``/usr/lib/postgresql/<N>/bin``, else ``$PATH``), runs
``initdb`` and ``postgres`` as an unprivileged user when started as root (PostgreSQL refuses to
run as root), listens on a free port of 127.0.0.1 with its unix socket inside the temp folder,
and stops (fast shutdown) and deletes everything on ``stop()``. ``new_database()`` returns the
``postgresql://`` URL of a fresh, empty database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Unprivileged account the server runs as when the tests run as root.
SERVER_USER = "nobody"


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (the newest Debian version first), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name),
                            reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("postgres") else None


def why_no_postgres() -> str | None:
    """None when a server can be started here, else the reason (for ``pytest.skip``)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -e '.[postgres]' (make install-test does it)"
    if find_postgres_bin() is None:
        return ("no PostgreSQL binaries (initdb, postgres): apt-get install postgresql "
                "(make install-test does it as root)")
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One ``postgres`` process with its data in a temp folder; ``start()`` / ``stop()``.

    ``durable=False`` (tests) turns fsync off; ``durable=True`` (benchmarks) keeps PostgreSQL's
    defaults, so commits are flushed to disk like SQLite's ``synchronous=FULL``.
    """

    def __init__(self, *, durable: bool = False, max_connections: int = 100) -> None:
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            raise RuntimeError(why_no_postgres() or "no PostgreSQL binaries")
        self.bin_dir = bin_dir
        self.durable = durable
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="plus-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = 0
        self._as: dict[str, int] = {}
        if os.geteuid() == 0:  # postgres will not run as root: hand the folder to an unprivileged user
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, check=True, capture_output=True, cwd=self.root, **self._as)  # type: ignore[call-overload]

    def start(self, timeout_s: float = 60.0) -> PostgresServer:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        self.port = free_port()
        options = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                   "-c", f"max_connections={self.max_connections}", "-c", "log_min_messages=warning"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(self.root / "server.log", "wb") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen([str(self.bin_dir / "postgres"), "-D", str(self.data), "-p",
                                             str(self.port), *options], stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.root, **self._as)  # type: ignore[call-overload]
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not accept connections within {timeout_s:.0f} s") from None
                time.sleep(0.1)

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")[-chars:]
        return ""

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        self._databases += 1
        name = name or f"plus_{self._databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: roll back sessions, then exit
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
