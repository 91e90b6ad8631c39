"""``plus summaries show|edit|history|revert|accept|delete|export|import``: the store from the shell."""

from __future__ import annotations

import argparse
import json
import sys

from plus_sdk.console import emit, emit_error
from plus_sdk.server.store_routes import UserSummaries
from plus_sdk.store.base import (
    STORE_ENV,
    SummaryVersion,
)
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import (
    SummaryStoreError,
    UnknownUserError,
)


def _print_version(row: SummaryVersion) -> None:
    flags = [f for f, on in (("current", row.is_current), ("proposal", row.is_proposal)) if on]
    origin = f" from v{row.based_on}" if row.based_on else ""
    emit(f"v{row.version}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.author:<5}  {row.action}{origin}"
          f"{'  [' + ', '.join(flags) + ']' if flags else ''}")
    emit(f"    {row.text}")


def _cmd_summaries(args: argparse.Namespace) -> int:
    try:
        with SummaryStore(args.store) as store:
            return _run_summaries(store, args)
    except SummaryStoreError as exc:
        emit_error(f"error: {exc}")
        return 2


def _run_summaries(store: SummaryStore, args: argparse.Namespace) -> int:
    action = args.summaries_command
    user = args.user
    if action in ("export", "import") and (user is None) == (not args.all):
        raise SummaryStoreError(f"plus summaries {action}: give a user id or --all (not both)")
    if action == "show":
        current = store.current(user)
        if current is None:
            raise UnknownUserError(f"user {user!r} has no summary")
        proposal = store.proposal(user)
        if args.json:
            emit(UserSummaries(user_id=user, current=current, proposal=proposal).model_dump_json(indent=2))
        else:
            _print_version(current)
            if proposal is not None:
                emit("pending proposal (accept with `plus summaries accept`):")
                _print_version(proposal)
    elif action == "edit":
        text = sys.stdin.read() if args.text == "-" else args.text
        _print_version(store.edit(user, text.strip()))
    elif action == "history":
        rows = store.history(user)
        if not rows:
            raise UnknownUserError(f"user {user!r} has no summary")
        if args.json:
            emit(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            for row in rows:
                _print_version(row)
    elif action == "revert":
        _print_version(store.revert(user, args.version))
    elif action == "accept":
        _print_version(store.accept_proposal(user))
    elif action == "delete":
        if not args.yes:
            emit_error(f"error: deleting {user!r} cannot be undone; repeat with --yes")
            return 2
        emit(json.dumps({"user_id": user, "deleted_versions": store.delete(user)}))
    elif action == "export":
        ids = None if args.all else [user]
        if ids is not None and not store.history(user):
            raise UnknownUserError(f"user {user!r} has no summary")
        count = store.export_jsonl(args.output if args.output != "-" else sys.stdout, ids)
        if args.output != "-":
            emit(json.dumps({"output": args.output, "versions": count}))
    elif action == "import":
        ids = None if args.all else [user]
        emit(json.dumps({"imported": store.import_jsonl(args.input, user_ids=ids, on_conflict=args.on_conflict,
                                                           trust_authors=args.trust_authors)}))
    return 0


def add_summaries_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus summaries show|edit|history|revert|accept|delete|export|import USER``."""
    parser = sub.add_parser("summaries", help="read, edit, revert, delete, export or import stored user summaries")
    actions = parser.add_subparsers(dest="summaries_command", required=True)

    def command(name: str, help_text: str, *, everyone: bool = False) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text)
        if everyone:
            p.add_argument("user", nargs="?", default=None, help="the user id (or --all)")
            p.add_argument("--all", action="store_true", help="every user in the store / the file")
        else:
            p.add_argument("user", help="the user id")
        p.add_argument("--store", default=None,
                       help=f"database file, sqlite:/// or postgresql:// URL (default: ${STORE_ENV} or the cache)")
        p.set_defaults(func=_cmd_summaries)
        return p

    p = command("show", "the current summary and any pending proposal")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("edit", "replace the current summary with your own text")
    p.add_argument("text", help="the new summary text ('-' reads it from stdin)")
    p = command("history", "every version, oldest first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("revert", "make an earlier version current again")
    p.add_argument("version", type=int, help="the version number (see history)")
    command("accept", "accept the pending proposal")
    p = command("delete", "forget the user: delete every version")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p = command("export", "write the user's history as JSON lines", everyone=True)
    p.add_argument("-o", "--output", default="-", help="output file ('-': stdout)")
    p = command("import", "load a user's history from an export file", everyone=True)
    p.add_argument("-i", "--input", required=True, help="a file written by `plus summaries export`")
    p.add_argument("--on-conflict", choices=["error", "skip", "replace"], default="error",
                   help="what to do when the user already has summaries")
    p.add_argument("--trust-authors", action="store_true",
                   help="keep the file's author='user' rows as user edits (your own backup); by default they "
                        "are recorded as author='import'")

