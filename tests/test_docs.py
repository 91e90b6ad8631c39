"""Every ```python and shell block in README.md and docs/*.md runs, so the docs cannot drift from the code.

Blocks of one page run in order in one fresh subprocess, as a reader would: python blocks share one
namespace, shell blocks run in bash with ``plus`` on PATH, in a temporary folder laid out like the
repository root, on the embedded default model unless the page chooses another
(``tests/docs_blocks.py`` says how, and the few stated changes the test makes: a free port for
``8000``, the suite's tiny model for the training commands, and a long run shortened by the settings
its ``<!-- docs-test: scaled (why; appends: ...) -->`` mark names). Only a block that needs a GPU or
a remote server (one the page does not start) is marked in the markdown, right before its fence,
with ``<!-- docs-test: skip (why) -->``; the skipped blocks and their reasons are reported.
The environment gets a placeholder ``OPENAI_API_KEY`` so blocks that only *build* an OpenAI backend run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from docs_blocks import REPO, RUNNER, Block, extract_blocks, free_port, lay_out_workspace, rewrite_for_test

FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: a page whose shell and python blocks a dedicated test runs in order, as a reader would (named in the mark)
WHOLE_PAGE = re.compile(r"<!--\s*docs-test:\s*whole page\s*\((tests/\S+\.py)")


class DocsBlocksSkipped(UserWarning):
    """Some blocks of a file are marked skip (listed with their reasons in the warnings summary)."""


def test_extract_blocks_reads_languages_code_lines_and_skip_marks(tmp_path: Path) -> None:
    text = ("# T\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip (needs a GPU) -->\n```python\ny = 2\n```\n"
            "```bash\nls\n```\n```json\n{}\n```\n")
    blocks = extract_blocks(text, tmp_path / "t.md")
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks] == [
        (3, "python", "x = 1\n", None), (8, "python", "y = 2\n", "needs a GPU"), (11, "bash", "ls\n", None)]


def test_the_test_gives_training_lines_the_tiny_model_and_the_port_a_free_one(tmp_path: Path) -> None:
    from docs_blocks import Block

    code = ("plus train styles iterations=2 \\\n    run_dir=r   # quick\nplus train general --show\n"
            "plus train general/coadapt init_from=b\nplus train x.yaml --resume\n"
            "plus train-rm training/pets/oracle.yaml steps=3\n"
            "plus serve --port 8000 &  # start it\nplus serve --bundle b\nplus -v judge -a x\n"
            "plus eval-judge data=d backend=openai\nplus eval-generate data=d\n")
    tiny = Path("/tiny")
    rewritten = rewrite_for_test(Block(tmp_path, 1, "bash", code, None), tiny, 1234)
    assert rewritten.splitlines() == [f"plus train styles model.summarizer_base={tiny} iterations=2"
                                      "      run_dir=r   # quick",
                                      f"plus train general reader.base={tiny} --show",
                                      f"plus train general/coadapt model.summarizer_base={tiny} init_from=b",
                                      f"plus train x.yaml model.summarizer_base={tiny} --resume",
                                      f"plus train-rm training/pets/oracle.yaml base={tiny} steps=3",
                                      f"plus serve --model {tiny} --port 1234 &  # start it", "plus serve --bundle b",
                                      f"plus -v judge --model {tiny} -a x", "plus eval-judge data=d backend=openai",
                                      f"plus eval-generate model={tiny} summarizer={tiny} data=d"]


def test_a_scaled_mark_is_read_even_when_it_wraps_over_lines(tmp_path: Path) -> None:
    text = ("<!-- docs-test: scaled (an hour; the test\nshortens it; appends: iterations=1\n  eval.test_rows=2) -->\n"
            "```bash\nplus train x.yaml\n```\n<!-- docs-test: skip (needs a GPU) -->\n\n```python\ny = 2\n```\n")
    blocks = extract_blocks(text, tmp_path / "t.md")
    assert [(b.line, b.skip, b.scaled) for b in blocks] == [
        (4, None, "an hour; the test shortens it; appends: iterations=1 eval.test_rows=2"), (9, "needs a GPU", None)]


def test_a_scaled_block_runs_its_training_lines_with_the_stated_settings_last() -> None:
    code = ("plus train x.yaml iterations=60 \\\n    'init_roles=[summarizer]' --resume  # go\n"
            "plus export runs/x adapters/y --checkpoint latest\nplus train-rm r.yaml steps=9\n")
    block = Block(REPO / "t.md", 1, "bash", code, None, "long; appends: iterations=1 eval.test_rows=2")
    assert rewrite_for_test(block, Path("/tiny"), 1234).splitlines() == [
        "plus train x.yaml model.summarizer_base=/tiny iterations=60      'init_roles=[summarizer]' iterations=1 "
        "eval.test_rows=2 --resume  # go", "plus export runs/x adapters/y --checkpoint latest",
        "plus train-rm r.yaml base=/tiny steps=9"]
    from plus_sdk.cli import build_parser

    parsed = build_parser().parse_args(rewrite_for_test(block, Path("/tiny"), 1234).split("  #")[0].split()[1:])
    assert parsed.overrides[-2:] == ["iterations=1", "eval.test_rows=2"] and parsed.resume


def test_a_scaled_python_block_gets_its_stated_text_replaced() -> None:
    block = Block(REPO / "t.md", 1, "python", 'load(["iterations=10"])\n', None,
                  'long; replaces: ["iterations=10"] => ["iterations=10", "iterations=1"]')
    assert rewrite_for_test(block, Path("/tiny"), 1) == 'load(["iterations=10", "iterations=1"])\n'


def test_a_scaled_mark_that_no_longer_fits_its_block_fails() -> None:
    for lang, code, mark in (("python", "x = 1\n", "long; replaces: y = 1 => y = 2"),
                             ("bash", "plus export a b\n", "long; appends: iterations=1"),
                             ("bash", "plus train x\n", "long, and no settings")):
        with pytest.raises(ValueError, match=r"t\.md:1"):
            rewrite_for_test(Block(REPO / "t.md", 1, lang, code, None, mark), Path("/tiny"), 1)


def test_a_later_setting_wins_so_a_scaled_block_gets_its_short_schedule() -> None:
    from plus_sdk.training.config import load_config
    from plus_sdk.training.ppo.coadapt_config import CoadaptConfig

    config = load_config(CoadaptConfig, REPO / "training/pets-ood/plus.yaml", ["iterations=60", "eval.every=10",
                                                                               "iterations=1", "eval.every=1"])
    assert (config.iterations, config.eval.every) == (1, 1)


def test_training_from_a_shipped_bundle_keeps_the_real_base_and_the_summarizer_run_gets_the_tiny_one() -> None:
    code = ("plus train p.yaml init_from=adapters/pets-smollm2 'init_roles=[summarizer]'\n"
            "plus train p.yaml init_from=pets-ood-smollm2\nplus train p.yaml init_from=adapters/pets-smollm2-mine\n"
            "plus train-summarizer styles/summarizer steps=2\n")
    assert rewrite_for_test(Block(REPO / "t.md", 1, "bash", code, None), Path("/tiny"), 1).splitlines() == [
        "plus train p.yaml init_from=adapters/pets-smollm2 'init_roles=[summarizer]'",
        "plus train p.yaml init_from=pets-ood-smollm2",
        "plus train p.yaml model.summarizer_base=/tiny init_from=adapters/pets-smollm2-mine",
        "plus train-summarizer styles/summarizer base=/tiny steps=2"]


ALL_BLOCKS = [b for file in FILES for b in extract_blocks(file.read_text(encoding="utf-8"), file)]


def test_every_scaled_mark_in_the_docs_fits_its_block() -> None:
    scaled = [b for b in ALL_BLOCKS if b.scaled]
    assert len(scaled) >= 4
    for block in scaled:
        assert rewrite_for_test(block, Path("/tiny"), 1) != rewrite_for_test(
            Block(block.file, block.line, block.lang, block.code, None), Path("/tiny"), 1), block.where


def test_a_block_is_skipped_only_when_it_needs_a_gpu_or_a_server() -> None:
    for block in ALL_BLOCKS:
        assert block.skip is None or re.search(r"\b(GPU|server|servers|network)\b", block.skip), block.where


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
def test_doc_code_blocks_run(file: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    blocks = DOC_BLOCKS[file]
    skipped = [b for b in blocks if b.skip]
    runnable = [b for b in blocks if not b.skip]
    if skipped and runnable:
        warnings.warn(DocsBlocksSkipped(f"{len(skipped)} of {len(blocks)} blocks skipped: "
                                        + "; ".join(f"{b.where} ({b.skip})" for b in skipped)), stacklevel=1)
    if not runnable:
        pytest.skip(f"all {len(skipped)} blocks marked skip: " + "; ".join(f"{b.where} ({b.skip})" for b in skipped))
    work = tmp_path / "work"
    work.mkdir()
    lay_out_workspace(work)
    port = free_port()
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([{"where": b.where, "lang": b.lang, "code": rewrite_for_test(b, tiny_model_dir, port)}
                                  for b in runnable]), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PLUS_SDK_BUNDLES": str(tmp_path / "user-bundles"), "PLUS_SUMMARY_STORE": str(tmp_path / "store.sqlite3"),
           "OPENAI_API_KEY": "docs-test-placeholder", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    print("\n".join(re.findall(r"^ran \S+:\d+ in .*$", result.stdout, re.M)))  # each block's time (pytest -s)
    assert result.returncode == 0, f"{result.stdout[-6000:]}"
    assert len(re.findall(r"^ran \S+:\d+ in ", result.stdout, re.M)) == len(runnable)


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
