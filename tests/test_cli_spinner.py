"""Commands that load models show a spinner with the phase on a terminal, and nothing when piped."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from plus_sdk.cli.spinner import Spinner

REPO = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (what a user's stderr is)."""

    def isatty(self) -> bool:
        return True


def test_the_spinner_shows_the_phase_on_a_terminal_and_clears_its_line() -> None:
    screen = Terminal()
    with Spinner(screen, interval=0.01) as spin:
        spin.phase("loading the judge")
        time.sleep(0.05)
        spin.phase("scoring")
        time.sleep(0.05)
    drawn = screen.getvalue()
    assert "loading the judge" in drawn and "scoring" in drawn and drawn.endswith("\r\x1b[K")


def test_the_spinner_writes_nothing_to_a_stream_that_is_not_a_terminal() -> None:
    piped = io.StringIO()
    with Spinner(piped, interval=0.01) as spin:
        spin.phase("loading the judge")
        time.sleep(0.03)
    assert piped.getvalue() == ""


def test_plus_judge_and_summarize_piped_write_no_spinner(tiny_model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    context = tmp_path / "user.json"
    context.write_text('{"examples": [{"prompt": "Pet?", "chosen": "Cats purr.", "rejected": "Dogs bark."}]}',
                       encoding="utf-8")
    for args in (["judge", "--context", str(context), "--prompt", "A pet?", "-a", "Cats.", "-b", "Dogs."],
                 ["summarize", "--context", str(context)]):
        result = subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args, "--model", str(tiny_model_dir)],
                                capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "\r" not in result.stderr and "scoring" not in result.stderr and "loading" not in result.stderr
        assert result.stdout.lstrip().startswith("{")
