"""The package's shape: imports go one way, commands live only in ``plus_sdk/cli``, no oversized file.

Imports are read with ``ast`` (nothing is imported), so these checks are fast and see
function-level imports too. An import counts every package ``__init__`` it runs: importing
``plus_sdk.server.auth`` runs ``plus_sdk/server/__init__.py`` first. The packages a module sits in
are left out (they are already being imported when it runs), and so are imports under
``if TYPE_CHECKING:`` for the run-time graph; a second check holds those to the same direction.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plus_sdk"

MAX_LINES = 500

#: Third-party modules that may be imported inside a function: the optional extras of pyproject.toml,
#: and the heavy libraries that ``import plus_sdk`` does not load until a model, an OpenAI client or a
#: safetensors file is needed. Each such import carries a comment with the word "optional".
OPTIONAL_IMPORTS = {
    # extras: server, postgres, vllm, deepspeed, training, ui-test
    "fastapi", "starlette", "anyio", "uvicorn", "psycopg", "vllm", "deepspeed", "accelerate", "datasets",
    "matplotlib", "tensorboard", "torch.utils.tensorboard", "rich", "selenium",
    # installed, but kept off `import plus_sdk` (each costs seconds or pulls in a large tree)
    "transformers", "peft", "openai", "sentence_transformers", "safetensors", "huggingface_hub", "tenacity",
    "httpx",
}

#: The layers of docs/guide.md's Architecture section, lowest first: a module imports only its own layer
#: and the ones before it (a name covers the module and, for a package, everything in it).
LAYERS = [
    ("records and plumbing", ["version", "files", "console", "cancel", "quiet", "batching", "coalesce", "types",
                              "prompts", "inputs", "cache", "truncation", "data"]),
    ("models and engines", ["models", "encoder", "fast_scoring", "backends", "bundle", "encoder_reward",
                            "context_reader"]),
    ("the summary store", ["store"]),
    ("the public classes", ["reward", "summarizer", "judge", "generator", ""]),
    ("training", ["training"]),
    ("the server", ["server"]),
    ("the command", ["cli"]),
]

COMMAND_CALLS = {"add_argument", "add_subparsers", "add_parser", "add_argument_group",
                 "add_mutually_exclusive_group"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    target: str  # a plus_sdk module, or the top-level name of a third-party one
    line: int
    in_function: bool
    type_checking: bool
    comment: str  # the comment on the import's first line or the line above it


def _is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if _is_package(module) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _comment(lines: list[str], line: int) -> str:
    """The comment on an import's first line, else the comment line just above its block of imports."""
    here = lines[line - 1].partition("#")[2]
    above = line - 2
    while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
        above -= 1
    text = lines[above].strip() if above >= 0 else ""
    return here or (text[1:] if text.startswith("#") else "")


def imports_of(module: str, source: str) -> list[Import]:
    """Every import in ``source`` (plus_sdk targets as module names, ``from pkg import sub`` as ``pkg.sub``)."""
    found: list[Import] = []
    lines = source.splitlines()

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.body:
                    handle(sub, in_function, True)
                for sub in child.orelse:
                    handle(sub, in_function, type_checking)
            else:
                handle(child, in_function, type_checking)

    def handle(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in dict.fromkeys(targets):
            if not target.startswith("plus_sdk"):
                target = target if target in OPTIONAL_IMPORTS else target.split(".")[0]
            found.append(Import(target, node.lineno, in_function, type_checking,
                                _comment(lines, node.lineno)))
        visit(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
              type_checking)

    visit(ast.parse(source), False, False)
    return found


def imported_modules(module: str, source: str, *, type_checking: bool = False) -> set[str]:
    """The plus_sdk modules that importing ``module`` runs, package ``__init__``s included."""
    mine = set(_ancestors(module))
    targets: set[str] = set()
    for imp in imports_of(module, source):
        if imp.target not in MODULES or (imp.type_checking and not type_checking):
            continue
        targets.add(imp.target)
        targets.update(a for a in _ancestors(imp.target) if a not in mine)
    return {t for t in targets if t in MODULES and t != module}


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    return {name: imported_modules(name, path.read_text(encoding="utf-8"), type_checking=type_checking)
            for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def function_level_problems() -> dict[str, list[str]]:
    """Per module, its function-level imports of plus_sdk modules, of third-party modules that are not optional,
    and of optional ones without a comment saying so (``# optional: ...``)."""
    problems: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for imp in imports_of(name, path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(PACKAGE)}:{imp.line} {imp.target}"
            if not imp.in_function:
                continue
            if imp.target.startswith("plus_sdk"):
                problems.setdefault(name, []).append(f"{where}: hoist it to the top of the module")
            elif imp.target not in OPTIONAL_IMPORTS:
                problems.setdefault(name, []).append(f"{where}: not an optional dependency, hoist it")
            elif "optional" not in imp.comment.lower():
                problems.setdefault(name, []).append(f"{where}: say which optional dependency (# optional: ...)")
    return problems


def test_the_cycle_finder_sees_a_two_module_cycle_and_a_clean_chain() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [("a", "b")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_under_type_checking_and_relative_imports_are_read_right() -> None:
    source = ("from typing import TYPE_CHECKING\nfrom plus_sdk import prompts\nfrom .base import Cursor\n"
              "if TYPE_CHECKING:\n    from plus_sdk.summarizer import Summarizer\n"
              "def f():\n    from plus_sdk.types import Summary\n")
    assert imported_modules("plus_sdk.store.core", source) == {"plus_sdk.prompts", "plus_sdk.store.base",
                                                               "plus_sdk.types"}
    assert "plus_sdk.summarizer" in imported_modules("plus_sdk.store.core", source, type_checking=True)
    function_level = [i.target for i in imports_of("plus_sdk.store.core", source) if i.in_function]
    assert function_level == ["plus_sdk.types"]


def test_importing_a_submodule_counts_the_package_init_that_it_runs() -> None:
    source = "from plus_sdk.server.auth import require_user\nfrom plus_sdk.store.base import Cursor\n"
    # plus_sdk.server's __init__ runs first; plus_sdk.store's is already running for a store module
    assert imported_modules("plus_sdk.store.core", source) == {"plus_sdk.server", "plus_sdk.server.auth",
                                                               "plus_sdk.store.base"}
    assert "plus_sdk.store" in imported_modules("plus_sdk.cli.keys", source)


def test_plus_sdk_has_no_import_cycles_counting_package_inits_and_function_level_imports() -> None:
    found = cycles(import_graph())
    assert found == [], f"import cycles (package __init__s and function-level imports included): {found}"


def test_imports_for_type_checking_only_go_the_same_way() -> None:
    found = cycles(import_graph(type_checking=True))
    assert found == [], f"import cycles once TYPE_CHECKING imports are counted: {found}"


def test_functions_import_only_optional_dependencies_each_with_a_comment() -> None:
    found = function_level_problems()
    assert found == {}, "function-level imports are for optional dependencies only"


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of ``module`` (``""`` names the ``plus_sdk`` package itself)."""
    rest = module.removeprefix("plus_sdk").removeprefix(".")
    for i, (_, names) in enumerate(LAYERS):
        if any(rest == n or (n and rest.startswith(n + ".")) for n in names):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/guide.md's Architecture")


def test_each_layer_imports_only_its_own_and_the_layers_before_it() -> None:
    graph = import_graph(type_checking=True)
    upward = sorted(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                    for name, targets in graph.items() for target in targets if layer_of(target) > layer_of(name))
    assert upward == []


def test_only_plus_sdk_cli_defines_commands() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name == "plus_sdk.cli" or name.startswith("plus_sdk.cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in COMMAND_CALLS:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.func.attr}")
    assert offenders == [], f"command-line parsing outside plus_sdk/cli: {offenders}"


def test_library_modules_do_not_import_the_cli() -> None:
    graph = import_graph(type_checking=True)
    offenders = sorted(
        name for name, targets in graph.items()
        if not (name == "plus_sdk.cli" or name.startswith("plus_sdk.cli."))
        and any(t == "plus_sdk.cli" or t.startswith("plus_sdk.cli.") for t in targets)
    )
    assert offenders == []


def test_the_store_knows_nothing_of_http_or_the_server() -> None:
    offenders = [f"{path.relative_to(PACKAGE)}:{imp.line} {imp.target}"
                 for name, path in MODULES.items() if name == "plus_sdk.store" or name.startswith("plus_sdk.store.")
                 for imp in imports_of(name, path.read_text(encoding="utf-8"))
                 if imp.target in {"fastapi", "starlette", "uvicorn"} or imp.target.startswith("plus_sdk.server")
                 or imp.target.startswith("plus_sdk.cli")]
    assert offenders == []


def test_no_file_in_plus_sdk_is_over_500_lines() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    too_long = {f: n for f, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}, f"files over {MAX_LINES} lines: {too_long}"
