"""``plus serve``: an HTTP server for local models and the PLUS classes (the app lives in ``app``)."""

from plus_sdk.server.app import (
    DEFAULT_MAX_BODY_BYTES,
    TOKEN_ENV,
    ChatCompletionRequest,
    ChatCompletionResponse,
    GenerateRequest,
    GenerateResponse,
    JudgeRequest,
    ServeConfig,
    Services,
    SummarizeRequest,
    create_app,
    error_body,
    serve_in_thread,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "TOKEN_ENV",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "GenerateRequest",
    "GenerateResponse",
    "JudgeRequest",
    "ServeConfig",
    "Services",
    "SummarizeRequest",
    "create_app",
    "error_body",
    "serve_in_thread",
]
