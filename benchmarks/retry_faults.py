"""Retry behaviour of OpenAIBackend under injected faults, against a real ``plus serve``.

Starts the server on 127.0.0.1 with the embedded default model and the test-only fault
middleware, then runs one scenario per fault kind with the backend's default backoff
(0.5 s initial, full jitter): attempts made, waits chosen, and the gaps the server saw
between attempts.

    .venv/bin/python benchmarks/retry_faults.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from plus_sdk.backends.openai import BackendRequestError, OpenAIBackend
from plus_sdk.files import atomic_write_text
from plus_sdk.server import ServeConfig, create_app, serve_in_thread
from plus_sdk.types import SamplingConfig

# the fault-injecting middleware is test-only code (tests/fault_injection.py); this benchmark drives it too
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fault_injection import FaultInjector, with_faults

OUT = Path(__file__).resolve().parent / "results" / "openai_retry_faults.json"
HELLO = [{"role": "user", "content": "Say hi."}]
SAMPLING = SamplingConfig(max_new_tokens=2)


def scenario(url: str, faults: FaultInjector, name: str, setup: Any, batch: int = 1,
             **backend_kwargs: Any) -> dict[str, Any]:
    while faults.in_flight:
        time.sleep(0.05)
    faults.reset()
    setup(faults)
    backend = OpenAIBackend(model="m", base_url=url, seed=0, **backend_kwargs)
    start = time.monotonic()
    error = None
    try:
        backend.chat([HELLO] * batch, SAMPLING)
    except BackendRequestError as exc:
        error = {"status_code": exc.status_code, "attempts": exc.attempts}
    wall = time.monotonic() - start
    gaps = [round(b - a, 3) for a, b in zip(faults.arrivals, faults.arrivals[1:], strict=False)]
    return {"scenario": name, "wall_s": round(wall, 3), "server_statuses": list(faults.statuses),
            "server_gaps_s": gaps if batch == 1 else None, "max_in_flight": faults.max_in_flight,
            "error": error, **backend.stats.as_dict(), "usage": backend.usage.as_dict()}


def main() -> None:
    torch.set_num_threads(1)
    faults = FaultInjector()
    app = with_faults(create_app(ServeConfig(served_model_name="m")), faults)
    rows = []
    with serve_in_thread(app) as base:
        url = f"{base}/v1"
        OpenAIBackend(model="m", base_url=url).chat([HELLO], SAMPLING)  # warm up
        rows.append(scenario(url, faults, "429 x2, no Retry-After", lambda f: f.fail_next(2, 429)))
        rows.append(scenario(url, faults, "429 x1, Retry-After: 2", lambda f: f.fail_next(1, 429, retry_after=2)))
        rows.append(scenario(url, faults, "500 x3", lambda f: f.fail_next(3, 500)))
        rows.append(scenario(url, faults, "delay 4 s > timeout 1 s", lambda f: f.delay_next(1, 4.0), timeout=1.0))
        rows.append(scenario(url, faults, "400", lambda f: f.fail_next(1, 400)))
        rows.append(scenario(url, faults, "401", lambda f: f.fail_next(1, 401)))
        rows.append(scenario(url, faults, "503 x10, max_attempts=4", lambda f: f.fail_next(10, 503), max_attempts=4))

        def hold(f: FaultInjector) -> None:
            f.hold_s = 0.3

        rows.append(scenario(url, faults, "16 requests held 0.3 s, concurrency=4", hold, batch=16, concurrency=4))
    atomic_write_text(OUT, json.dumps({"backend_defaults": {"backoff_initial": 0.5, "backoff_max": 30.0,
                                                            "max_attempts": 6, "jitter": "full"},
                                       "scenarios": rows}, indent=2))
    for row in rows:
        print(f"{row['scenario']:42s} attempts={row['attempts']:2d} waits={row['waits_s']} "
              f"gaps={row['server_gaps_s']} error={row['error']} wall={row['wall_s']}s "
              f"max_in_flight={row['max_in_flight']}")


if __name__ == "__main__":
    main()
