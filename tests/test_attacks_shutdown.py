"""Attack tour, items 1 and 7 on a real ``plus serve`` process: SIGTERM mid-request, and --token's warning."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from plus_sdk.server.spawn import spawned_server

TOKEN = "shutdown-token-xyz"



def test_sigterm_during_a_long_request_exits_within_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    flags = ["--model", str(tiny_model_dir), "--served-model-name", "tiny", "--token", TOKEN,
             "--store", str(tmp_path / "s.sqlite3")]
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # the machine may be slow to import torch
    with spawned_server(flags, env=env, start_timeout=400) as (url, process):
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1024}
        long = threading.Thread(target=lambda: httpx.post(
            f"{url}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300), daemon=True)
        long.start()
        time.sleep(1.5)  # generation is running
        process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        process.wait(timeout=30)
        assert time.monotonic() - start < 15  # 3 s grace + cancel + interpreter exit, on a loaded machine
    output = process.output  # type: ignore[attr-defined]
    assert "visible to every local user in /proc" in output and TOKEN not in output
