"""Attack tour, items 1 and 7 on a real ``plus serve`` process: SIGTERM mid-request, and --token's warning."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

TOKEN = "shutdown-token-xyz"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sigterm_during_a_long_request_exits_within_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "plus_sdk.cli", "serve", "--model", str(tiny_model_dir),
                                "--served-model-name", "tiny", "--port", str(port), "--token", TOKEN,
                                "--store", str(tmp_path / "s.sqlite3")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 400  # the machine may be slow to import torch
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "plus serve did not come up"
                time.sleep(0.5)
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1024}
        long = threading.Thread(target=lambda: httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300), daemon=True)
        long.start()
        time.sleep(1.5)  # generation is running
        process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        process.wait(timeout=30)
        assert time.monotonic() - start < 15  # 3 s grace + cancel + interpreter exit, on a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=30)[0]
    assert "visible to every local user in /proc" in output and TOKEN not in output
