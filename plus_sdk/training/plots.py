"""``plus plot RUN_DIR``: PNG curves of a co-adaptation (or any metrics.jsonl) run.

Reads ``RUN_DIR/metrics.jsonl`` and writes ``RUN_DIR/plots/curves.png`` (every plotted metric
in one grid) plus one PNG per metric. Training metrics are drawn as lines (with a moving
average when noisy), evaluation metrics as markers.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from plus_sdk.training.summary_metrics.hooks import headline_names

logger = logging.getLogger(__name__)

#: Metrics drawn when present, in this order; the datasets' headline shares come from their hooks.
DEFAULT_METRICS: tuple[str, ...] = (
    "test_accuracy", "ood_accuracy", *(f"{split}_{name}" for name in headline_names() for split in ("test", "ood")),
    "score", "rm_accuracy", "rm_loss", "kl", "kl_coef", "entropy", "clip_fraction", "approx_kl",
    "value_loss", "summary_tokens", *(f"sample_{name}" for name in headline_names()), "grad_norm", "time_iteration",
)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of a metrics JSONL file (a missing file is an error naming it)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is this a run folder written by `plus train`?")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(iterations, values) of one metric, skipping rows without it or with non-finite values."""
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(float(row.get("iteration", len(xs))))
            ys.append(float(value))
    return xs, ys


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing moving average (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _draw(ax: Any, rows: list[dict[str, Any]], key: str) -> None:
    xs, ys = series(rows, key)
    evaluation = key.startswith(("test_", "ood_"))
    if evaluation:
        ax.plot(xs, ys, marker="o")
    else:
        ax.plot(xs, ys, alpha=0.35)
        if len(ys) >= 10:
            ax.plot(xs, moving_average(ys, 10))
    ax.set_title(key, fontsize=9)
    ax.set_xlabel("iteration", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
             metrics: list[str] | None = None) -> list[Path]:
    """Write the PNG curves of a run; returns the files written."""
    import matplotlib  # matplotlib: optional here, a missing one is a warning

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional: matplotlib (training extra)

    rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    keys = [k for k in (metrics or DEFAULT_METRICS) if series(rows, k)[1]]
    if not keys:
        raise ValueError(f"{run_dir}/metrics.jsonl has none of the metrics {metrics or DEFAULT_METRICS}")
    out = Path(out_dir) if out_dir else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(keys) / cols)),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        _draw(ax, rows, key)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    grid = out / "curves.png"
    fig.savefig(grid, dpi=100)
    plt.close(fig)
    written.append(grid)
    for key in keys:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        _draw(ax, rows, key)
        fig.tight_layout()
        path = out / f"{key}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    logger.info("Wrote %d plots to %s", len(written), out)
    return written


def plot_stages(run_dir: str | os.PathLike[str], panels: list[tuple[str, str]],
                name: str = "curves.png") -> Path:
    """One PNG of a run with stages (``plus train general``): each panel is (stage, metric), against the stage's
    own ``step``; returns the file written (``RUN_DIR/plots/NAME``)."""
    import matplotlib  # matplotlib: optional here, a missing one is a warning

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional: matplotlib (training extra)

    rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    out = Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
    for ax, (stage, key) in zip(axes.flat, panels, strict=True):
        points = [(r["step"], r[key]) for r in rows if r.get("stage") == stage and isinstance(r.get(key), (int, float))]
        xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
        ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, alpha=0.5 if len(xs) >= 20 else 1.0)
        if len(ys) >= 20:
            ax.plot(xs, moving_average(ys, 10))
        ax.set_title(f"{stage}: {key}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
