"""Every ```python block in README.md and docs/*.md runs, so the docs cannot drift from the code.

Blocks of one file run in order in one fresh subprocess (later blocks may use names from
earlier ones), in a temporary working folder, on the embedded default model. A block that
cannot run here is marked in the markdown, on the line right before its fence, with
``<!-- docs-test: skip (why) -->``; the skipped blocks and their reasons are reported.
The environment gets a placeholder ``OPENAI_API_KEY`` so blocks that only *build* an
OpenAI backend run; blocks that call a remote API are marked skip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->\s*$")
#: a page whose shell and python blocks a dedicated test runs in order, as a reader would (named in the mark)
WHOLE_PAGE = re.compile(r"<!--\s*docs-test:\s*whole page\s*\((tests/\S+\.py)")

RUNNER = r"""
import json, sys, time, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__docs__"}
for block in blocks:
    start = time.perf_counter()
    try:
        exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        print(f"DOCS-BLOCK-FAILED {block['where']}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"ran {block['where']} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
"""


class DocsBlocksSkipped(UserWarning):
    """Some blocks of a file are marked skip (listed with their reasons in the warnings summary)."""


@dataclass
class Block:
    file: Path
    line: int
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


def extract_blocks(text: str, file: Path) -> list[Block]:
    """The ```python blocks of a markdown text, with their line and skip reason (if marked)."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = SKIP.search(before)
        blocks.append(Block(file, line, match.group(1), reason.group(1) if reason else None))
    return blocks


def test_extract_blocks_reads_code_lines_and_skip_marks(tmp_path: Path) -> None:
    text = ("# T\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip (needs a GPU) -->\n```python\ny = 2\n```\n"
            "```bash\nls\n```\n")
    blocks = extract_blocks(text, tmp_path / "t.md")
    assert [(b.line, b.code, b.skip) for b in blocks] == [(3, "x = 1\n", None), (8, "y = 2\n", "needs a GPU")]


DOC_BLOCKS = {file: extract_blocks(file.read_text(encoding="utf-8"), file) for file in FILES
              if not WHOLE_PAGE.search(file.read_text(encoding="utf-8"))}


def test_a_page_run_whole_names_a_test_that_reads_it() -> None:
    pages = {file: WHOLE_PAGE.search(file.read_text(encoding="utf-8")) for file in FILES}
    for file, mark in pages.items():
        if mark is not None:
            test = REPO / mark.group(1)
            assert test.is_file() and str(file.relative_to(REPO)) in test.read_text(encoding="utf-8"), file


@pytest.mark.parametrize("file", [f for f, blocks in DOC_BLOCKS.items() if blocks],
                         ids=lambda f: str(f.relative_to(REPO)))
def test_doc_code_blocks_run(file: Path, tmp_path: Path) -> None:
    blocks = DOC_BLOCKS[file]
    skipped = [b for b in blocks if b.skip]
    runnable = [b for b in blocks if not b.skip]
    if skipped and runnable:
        warnings.warn(DocsBlocksSkipped(f"{len(skipped)} of {len(blocks)} blocks skipped: "
                                        + "; ".join(f"{b.where} ({b.skip})" for b in skipped)), stacklevel=1)
    if runnable:
        script = tmp_path / "blocks.json"
        script.write_text(json.dumps([{"where": b.where, "code": b.code} for b in runnable]), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
               "OPENAI_API_KEY": "docs-test-placeholder", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        result = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{result.stderr[-6000:]}"
        assert len(re.findall(r"^ran \S+:\d+ in ", result.stderr, re.M)) == len(runnable)
    if not runnable:
        pytest.skip(f"all {len(skipped)} blocks marked skip: " + "; ".join(f"{b.where} ({b.skip})" for b in skipped))


SHELL_FENCE = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.S | re.M)


def plus_command_lines(text: str) -> list[list[str]]:
    """The ``plus ...`` commands of a markdown text's shell blocks, split into words (comments,
    a leading ``$ `` and a trailing ``&`` removed; lines with a ``...`` placeholder left out)."""
    import shlex

    commands = []
    for match in SHELL_FENCE.finditer(text):
        for line in match.group(1).replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if not line.startswith("plus ") or "..." in line:
                continue
            words = shlex.split(line, comments=True)
            commands.append(words[:-1] if words[-1] == "&" else words)
    return commands


def test_plus_command_lines_are_read_from_shell_blocks_only() -> None:
    text = ("```bash\nplus serve --store s.db &  # start it\n$ plus export run out \\\n  --name x\nls\n```\n"
            "```python\nplus = 1\n```\n```bash\nplus judge ...\n```\n")
    assert plus_command_lines(text) == [["plus", "serve", "--store", "s.db"],
                                        ["plus", "export", "run", "out", "--name", "x"]]


@pytest.mark.parametrize("file", [f for f in FILES if plus_command_lines(f.read_text(encoding="utf-8"))],
                         ids=lambda f: str(f.relative_to(REPO)))
def test_every_plus_command_in_the_docs_parses(file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from plus_sdk.cli import build_parser

    for words in plus_command_lines(file.read_text(encoding="utf-8")):
        try:
            build_parser().parse_args(words[1:])
        except SystemExit as exc:
            assert not exc.code, f"{file.name}: `{' '.join(words)}` does not parse: {capsys.readouterr().err[-400:]}"
