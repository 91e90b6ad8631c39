"""The package's shape: no import cycles, commands only in ``plus_sdk/cli``, no oversized file.

Imports are read with ``ast`` (nothing is imported), so these checks are fast and see
function-level imports too; only imports under ``if TYPE_CHECKING:`` are left out, since they
never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plus_sdk"

#: Cycles still allowed, each with its reason (as sorted module tuples). None are left.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}

MAX_LINES = 600

#: Entry points allowed to import plus_sdk.cli (they are commands, not library code).
CLI_ENTRY_POINTS = {"training/__main__.py"}

COMMAND_CALLS = {"add_argument", "add_subparsers", "add_parser", "add_argument_group",
                 "add_mutually_exclusive_group"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those inside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES.get(module, Path()).name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: str, source: str) -> set[str]:
    """The plus_sdk modules ``module`` imports at run time (``from pkg import sub`` counts as ``pkg.sub``)."""
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in MODULES else base)
    return {t for t in targets if t in MODULES and t != module}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


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


def test_the_cycle_finder_sees_a_two_module_cycle_and_a_clean_chain() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [("a", "b")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_under_type_checking_and_relative_imports_are_read_right() -> None:
    source = ("from typing import TYPE_CHECKING\nfrom plus_sdk import prompts\nfrom .base import Cursor\n"
              "if TYPE_CHECKING:\n    from plus_sdk.summarizer import Summarizer\n"
              "def f():\n    from plus_sdk.store import SummaryStore\n")
    assert imported_modules("plus_sdk.store.core", source) == {"plus_sdk.prompts", "plus_sdk.store.base",
                                                               "plus_sdk.store"}


def test_plus_sdk_has_no_import_cycles() -> None:
    found = [c for c in cycles(import_graph()) if c not in ALLOWED_CYCLES]
    assert found == [], f"import cycles (function-level imports included): {found}"


def test_allowed_cycles_still_exist_so_the_list_stays_honest() -> None:
    present = set(cycles(import_graph()))
    stale = [c for c in ALLOWED_CYCLES if c not in present]
    assert stale == [], f"these allowed cycles are gone: remove them from ALLOWED_CYCLES: {stale}"


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
    graph = import_graph()
    offenders = sorted(
        name for name, targets in graph.items()
        if not (name == "plus_sdk.cli" or name.startswith("plus_sdk.cli."))
        and str(MODULES[name].relative_to(PACKAGE)) not in CLI_ENTRY_POINTS
        and any(t == "plus_sdk.cli" or t.startswith("plus_sdk.cli.") for t in targets)
    )
    assert offenders == []


def test_no_file_in_plus_sdk_is_over_600_lines() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    too_long = {f: n for f, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}, f"files over {MAX_LINES} lines: {too_long}"
