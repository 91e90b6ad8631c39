"""``plus keys create|list|revoke``: per-user API keys of ``plus serve``, kept hashed in the store."""

from __future__ import annotations

import argparse
import json

from plus_sdk.console import emit, emit_error
from plus_sdk.server.keys import create_key, list_keys, revoke_key
from plus_sdk.store.base import STORE_ENV
from plus_sdk.store.core import SummaryStore
from plus_sdk.store.errors import SummaryStoreError


def _cmd_keys(args: argparse.Namespace) -> int:
    try:
        with SummaryStore(args.store) as store:
            if args.keys_command == "create":
                record, token = create_key(store, args.user, label=args.label)
                emit(json.dumps({**record.model_dump(mode="json"), "key": token}))
                emit_error("store this key now: only its hash is kept, it cannot be shown again")
            elif args.keys_command == "revoke":
                emit(revoke_key(store, args.key_id).model_dump_json())
            else:
                for record in list_keys(store, include_revoked=args.all):
                    emit(record.model_dump_json())
    except SummaryStoreError as exc:
        emit_error(f"error: {exc}")
        return 2
    return 0


def add_keys_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus keys create USER``, ``plus keys list`` and ``plus keys revoke KEY_ID``."""
    parser = sub.add_parser("keys", help="create, list or revoke per-user API keys of `plus serve`")
    actions = parser.add_subparsers(dest="keys_command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text)
        p.add_argument("--store", default=None,
                       help=f"database file or sqlite:/// URL (default: ${STORE_ENV} or the plus-sdk cache)")
        p.set_defaults(func=_cmd_keys)
        return p

    p = command("create", "a new key that reads and edits only USER's summaries (printed once)")
    p.add_argument("user", help="the user id the key belongs to")
    p.add_argument("--label", default="", help="a note, e.g. who holds the key")
    p = command("list", "the active keys (ids and users, never the secrets)")
    p.add_argument("--all", action="store_true", help="include revoked keys")
    p = command("revoke", "revoke a key by its id (see list)")
    p.add_argument("key_id", help="the key id")
