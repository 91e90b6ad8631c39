"""Time `plus demo` on a cold and a warm model cache, with peak memory.

Cold = an empty PLUS_SDK_CACHE (the GGUF is converted first); warm = the same cache again.
Writes benchmarks/results/demo_timing.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "demo_timing.json"


def run_demo(cache: str, report: Path) -> dict[str, float]:
    env = {**os.environ, "PLUS_SDK_CACHE": cache}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plus_sdk.cli", "demo", "--json", str(report)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    data = json.loads(report.read_text())
    latencies = sorted(item["latency_s"] for item in data["items"])
    return {"wall_s": round(wall, 2), "peak_rss_mb_so_far": round(peak_kb / 1024, 1), "trained": data["trained"],
            "judgements": len(latencies), "median_prefer_s": round(latencies[len(latencies) // 2], 3)}


def main() -> None:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
        cold = run_demo(cache, Path(tmp) / "cold.json")
        warm = run_demo(cache, Path(tmp) / "warm.json")
    result = {"machine": f"{os.cpu_count()} CPU cores", "load_avg": os.getloadavg(), "cold": cold, "warm": warm}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
