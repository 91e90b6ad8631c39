"""Reading a page's code blocks and running them in order, as a reader would (used by tests/test_docs.py).

A page's ```python and shell (```bash, ```sh, ```shell) blocks run in one fresh subprocess, in page
order, in a working folder laid out like the repository root (copies of ``docs/``, ``training/``,
``benchmarks/``, ``tests/`` and ``pyproject.toml``, ``adapters/`` holding the shipped bundles, and
``.venv`` pointing at the running environment). Python blocks share
one namespace; each shell block runs in ``bash -e -o pipefail`` with ``plus`` on PATH, and what it
exports (and its working folder) carries over to later blocks, as in one terminal. Processes a shell
block leaves in the background (``plus serve ... &``) are stopped when the page ends.
``PLUS_SUMMARY_STORE`` and ``PLUS_SDK_BUNDLES`` point into the test's temporary folder, so no block
touches the user's own store or bundles.

The test changes a page in these stated ways only (``rewrite_for_test``):

- ``8000`` (the documented port) becomes a free port of 127.0.0.1, in every block;
- each ``plus train`` line gets ``model.summarizer_base=TINY`` (``reader.base=TINY`` for
  ``plus train general``), each ``plus train-rm`` and ``plus train-summarizer`` line ``base=TINY``,
  each local ``plus eval-judge`` / ``plus eval-generate`` line ``model=TINY summarizer=TINY``, and
  each ``plus demo``, ``summarize``, ``judge`` and ``serve`` line that names no model or bundle
  ``--model TINY``: the suite's tiny random model, so training, evaluations and servers take seconds
  (the pages give quick settings; the model is the one change; python blocks keep the models they
  name, except ``"smollm2-135m-instruct"``, the base the shell blocks trained on, which becomes TINY
  too). A ``plus train`` line that starts from a shipped bundle (``init_from=adapters/pets-smollm2``
  or its bare name) keeps the real default base, since the bundle's adapters fit only the base they
  were trained on (such a block is scaled, below);
- a block marked ``<!-- docs-test: scaled (why; appends: KEY=VALUE ...) -->`` (right before its
  fence; the mark may wrap over lines) runs as written with the stated settings added at the end of
  each of its ``plus train`` lines' settings (before any ``--option``): later settings win, so the
  block runs its own command on a shortened schedule. ``scaled (why; replaces: OLD => NEW)``
  replaces the literal text OLD by NEW instead (a python block's list of overrides, say). A mark
  whose OLD is not in its block, or whose block has no ``plus train`` line to append to, fails the
  test, so a mark cannot go stale.

Only a block that needs a GPU or a remote server (one the page does not start) is marked
``<!-- docs-test: skip (why) -->``; every other block runs.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(python|bash|sh|shell)\n(.*?)^```", re.S | re.M)
#: the mark right before a fence (it may wrap): skip (why), or scaled (why; appends|replaces: what)
MARK = re.compile(r"<!--\s*docs-test:\s*(skip|scaled)\s*\((.+?)\)\s*-->", re.S)
SCALED = re.compile(r"(?P<why>.+?);\s*(?P<how>appends|replaces):\s*(?P<what>.+)", re.S)
#: each ``plus train`` line's command and settings: the words after it up to an option, a comment or ``&``
TRAIN_SETTINGS = re.compile(r"^(\s*plus (?:-v )?train(?![-\w])(?:[ \t]+(?!-)[^\s#&;|]+)+)", re.M)
#: the bundles the repository ships (their adapters fit only the real default base)
SHIPPED = sorted(p.name for p in (REPO / "adapters").iterdir() if p.is_dir())
#: copied into the working folder so that a page's relative paths resolve as from the repository root
COPIED = ("docs", "training", "benchmarks", "tests", "pyproject.toml")

RUNNER = r"""
import json, os, resource, signal, subprocess, sys, tempfile, time, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__docs__"}
sessions = []


def run_shell(code):
    # one block of a terminal session: the exports and the folder it ends in carry over
    with tempfile.NamedTemporaryFile(suffix=".env", delete=False) as handle:
        state = handle.name
    script = f"set -e -o pipefail\n{code}\nenv -0 > {state!r}; printf '%s' \"$PWD\" > {state!r}.pwd\n"
    process = subprocess.Popen(["bash", "-c", script], start_new_session=True, stdout=sys.stdout, stderr=sys.stderr)
    sessions.append(process.pid)
    code = process.wait(timeout=900)
    if code == 0:
        os.environ.clear()
        os.environ.update(dict(item.split("=", 1) for item in open(state).read().split("\0") if "=" in item))
        os.chdir(open(state + ".pwd").read())
    return code


def cpu_seconds():
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                           resource.RUSAGE_CHILDREN)))


try:
    for block in blocks:
        start, cpu = time.perf_counter(), cpu_seconds()
        sys.stdout.flush()
        try:
            if block["lang"] == "python":
                exec(compile(block["code"], block["where"], "exec"), namespace)
            elif run_shell(block["code"]):
                raise RuntimeError(f"the shell block exited non-zero")
        except BaseException:
            print(f"\nDOCS-BLOCK-FAILED {block['where']}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        print(f"\nran {block['where']} in {time.perf_counter() - start:.1f} s (cpu {cpu_seconds() - cpu:.1f} s)",
              file=sys.stderr, flush=True)
finally:
    for pgid in sessions:  # background servers the page started
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
"""


@dataclass
class Block:
    file: Path
    line: int
    lang: str
    code: str
    skip: str | None
    scaled: str | None = None

    @property
    def where(self) -> str:
        name = self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file
        return f"{name}:{self.line}"


def mark_before(text: str, end: int) -> tuple[str, str] | None:
    """(``skip`` or ``scaled``, the text in its parentheses, spaces collapsed) of the docs-test mark that
    ends right before ``end`` (only blank space between), or None."""
    before = text[:end].rstrip()
    start = before.rfind("<!--")
    mark = MARK.fullmatch(before[start:]) if start >= 0 and before.endswith("-->") else None
    return (mark.group(1), " ".join(mark.group(2).split())) if mark else None


def extract_blocks(text: str, file: Path) -> list[Block]:
    """The python and shell blocks of a markdown text, in order, with their line and skip or scaled mark."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        kind, reason = mark_before(text, match.start()) or (None, None)
        lang = "python" if match.group(1) == "python" else "bash"
        blocks.append(Block(file, line, lang, match.group(2), reason if kind == "skip" else None,
                            reason if kind == "scaled" else None))
    return blocks


def scale(block: Block, code: str) -> str:
    """``code`` with the block's scaled mark applied (see the module docstring); as is when unmarked."""
    if block.scaled is None:
        return code
    parts = SCALED.fullmatch(block.scaled)
    if parts is None:
        raise ValueError(f"{block.where}: write the mark as 'scaled (why; appends: K=V ...)' "
                         f"or 'scaled (why; replaces: OLD => NEW)', not {block.scaled!r}")
    if parts["how"] == "replaces":
        old, arrow, new = parts["what"].partition(" => ")
        if not arrow or old not in code:
            raise ValueError(f"{block.where}: the scaled mark replaces {old!r}, which the block does not hold")
        return code.replace(old, new)
    code, count = TRAIN_SETTINGS.subn(lambda m: f"{m.group(1)} {parts['what']}", code)
    if not count:
        raise ValueError(f"{block.where}: the scaled mark appends settings, but the block has no `plus train` line")
    return code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_words(code: str, command: str, words: str, after_recipe: bool = False) -> str:
    """``words`` inserted in each line of ``code`` that runs ``command`` (a regex after ``plus``), right
    after the command (after its recipe argument with ``after_recipe``), so that no option such as
    ``--resume`` comes before them; lines naming ``--model``, ``--bundle``, ``backend=openai`` or
    ``init_from=`` a shipped bundle are left alone."""
    recipe = r"[ \t]+[^\s#]+" if after_recipe else ""
    shipped = rf"init_from=(?:adapters/)?(?:{'|'.join(map(re.escape, SHIPPED))})(?![\w-])"
    line = re.compile(rf"^(\s*plus (?:-v )?{command}{recipe})(?![^#\n]*(?:--model|--bundle|backend=openai|{shipped}))",
                      re.M)
    return line.sub(lambda m: f"{m.group(1)} {words}", code)


def rewrite_for_test(block: Block, tiny: Path, port: int) -> str:
    """The block's code with the test's stated changes (see the module docstring)."""
    code = re.sub(r"\b8000\b", str(port), block.code)
    if block.lang != "bash":  # the default base named in a python block is the one the shell blocks trained on
        return scale(block, code).replace('"smollm2-135m-instruct"', json.dumps(str(tiny)))
    code = scale(block, code.replace("\\\n", " "))
    code = add_words(code, "train general(?![/\\w-])", f"reader.base={tiny}")  # not general/coadapt: a co-adaptation
    code = add_words(code, "train(?! general(?![/\\w-]))", f"model.summarizer_base={tiny}", after_recipe=True)
    code = add_words(code, "train-(?:rm|summarizer)", f"base={tiny}", after_recipe=True)
    code = add_words(code, "eval-(?:judge|generate)", f"model={tiny} summarizer={tiny}")
    return add_words(code, "(?:demo|summarize|judge|serve)", f"--model {tiny}")


def lay_out_workspace(folder: Path) -> None:
    """``folder`` laid out like the repository root: copies of COPIED, ``plus_sdk/`` and ``.venv`` linked,
    ``adapters/`` with the shipped bundles linked one by one (so a page's export lands in the copy)."""
    for name in COPIED:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, folder / name)
        else:
            shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)  # .venv/bin/python
    (folder / "plus_sdk").symlink_to(REPO / "plus_sdk", target_is_directory=True)  # package data read by path
    (folder / "adapters").mkdir()
    for bundle in (REPO / "adapters").iterdir():
        (folder / "adapters" / bundle.name).symlink_to(bundle, target_is_directory=bundle.is_dir())
