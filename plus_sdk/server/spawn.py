"""Run ``plus serve`` as a child process on 127.0.0.1 (tests, benchmarks, notebooks).

``spawned_server([...flags])`` picks a free port, starts ``python -m plus_sdk.cli serve``,
waits for ``/health`` and yields ``(base_url, process)``; on exit the server is stopped and
its combined stdout/stderr is left in ``process.output`` for inspection (e.g. the access log).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def spawned_server(flags: Sequence[str], *, env: dict[str, str] | None = None, cli_flags: Sequence[str] = (),
                   start_timeout: float = 180.0, log_path: str | os.PathLike[str] | None = None,
                   ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``plus [cli_flags] serve [flags] --port P`` in a child process; yields its base URL and the process.

    ``log_path``: a file that receives the server's output as it runs (default: a hidden temporary file)."""
    import httpx  # optional at import: loaded when a spawned server is polled

    port = free_port()
    log = open(log_path, "w+", encoding="utf-8") if log_path is not None else \
        tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # closed in the finally below
    command = [sys.executable, "-m", "plus_sdk.cli", *cli_flags, "serve", *flags, "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"plus serve exited with {process.returncode}:\n{log.read()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"plus serve did not answer on {url} within {start_timeout:.0f} s:\n"
                                   f"{log.read()[-4000:]}")
            time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        process.output = log.read()  # type: ignore[attr-defined]
        log.close()
