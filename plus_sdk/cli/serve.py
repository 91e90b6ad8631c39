"""``plus serve``: run the HTTP server (``plus_sdk.server``) with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os

from pydantic import SecretStr

from plus_sdk.server import DEFAULT_MAX_BODY_BYTES, TOKEN_ENV, ServeConfig, create_app
from plus_sdk.server.limits import uvicorn_config
from plus_sdk.store.sqlite import check_store_location

logger = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # optional: the server extra

    if args.token:
        logger.warning("--token on the command line is visible to every local user in /proc/<pid>/cmdline; "
                       "set $%s instead", TOKEN_ENV)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    config = ServeConfig(model=args.model, bundle=args.bundle, served_model_name=args.served_model_name,
                         summary_task=args.summary_task, device=args.device,
                         token=SecretStr(token) if token else None, max_body_bytes=args.max_body_bytes,
                         store=args.store, coalesce_window_ms=args.coalesce_window_ms,
                         coalesce_max_batch=args.coalesce_max_batch, access_log=not args.no_access_log,
                         max_connections=args.max_connections, header_timeout_s=args.header_timeout,
                         body_timeout_s=args.body_timeout, store_busy_timeout_s=args.store_busy_timeout,
                         require_auth=True if args.require_auth else None)
    check_store_location(args.store)
    app = create_app(config)
    logging.getLogger("plus_sdk.server.access").setLevel(logging.INFO)
    required = app.state.authenticator.required()
    logger.warning("serving %s on http://%s:%d (auth: %s)", config.served_model_name, args.host, args.port,
                   "admin token" + (" and user keys" if args.store else "") if token
                   else "user keys only" if required else "none: anyone who can connect may call every route")
    server = uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port,
                                           log_level="info" if args.verbose else "warning",
                                           header_timeout_s=config.header_timeout_s,
                                           max_connections=config.max_connections,
                                           shutdown_timeout_s=config.shutdown_timeout_s))
    server.run()
    return 0


def add_serve_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus serve``."""
    p = sub.add_parser("serve", help="serve local models over HTTP (OpenAI chat completions + PLUS routes)")
    p.add_argument("--model", default=None, help="base model name or folder for chat (default: the embedded "
                                                 "default); named without --bundle, it is also the LLM judge")
    p.add_argument("--bundle", default=None, help="adapter bundle (name or folder): serve its summarizer and "
                                                  "reward-model judge (default without --model: the default "
                                                  "bundle, general-smollm2)")
    p.add_argument("--served-model-name", default="plus-local", help="model name clients send (default plus-local)")
    p.add_argument("--summary-task", default="generic",
                   help="summarizer prompt family of the LLM judge (--model without --bundle)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token", default=None, help=f"admin bearer token; prefer ${TOKEN_ENV} (a command line is "
                                                 "visible in /proc)")
    p.add_argument("--require-auth", action="store_true",
                   help="refuse callers without a token even before the first key exists (default: required "
                        "when a token is set or the store has keys; never relaxed while the server runs)")
    p.add_argument("--max-connections", type=int, default=1024, help="concurrent connections before 503")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds to finish request headers")
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds to send a request body (else 408)")
    p.add_argument("--store-busy-timeout", type=float, default=5.0,
                   help="seconds a write waits for the store's lock before 503 + Retry-After")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--store", default=None,
                   help="SummaryStore (SQLite file or postgresql:// URL): serve /v1/summaries/* and /ui")
    p.add_argument("--coalesce-window-ms", type=float, default=None,
                   help="how long judge/summarize/generate requests wait to be batched (default: 5 on CPU, 2 on GPU)")
    p.add_argument("--coalesce-max-batch", type=int, default=None,
                   help="most requests per coalesced batch (default: 64 on CPU, 128 on GPU)")
    p.add_argument("--no-access-log", action="store_true", help="do not log one line per request on stderr")
    p.set_defaults(func=cmd_serve)
