"""``plus serve``: an HTTP server for local models and the PLUS classes (FastAPI + uvicorn).

Routes (all JSON, described by the OpenAPI document at ``/openapi.json`` and ``/docs``):

- ``POST /v1/chat/completions``: the OpenAI chat-completions schema (a subset: string
  contents, ``n=1``, no streaming) for the local model, so ``OpenAIBackend`` or the
  ``openai`` client can talk to it;
- ``GET /v1/models``: the served model;
- ``POST /v1/summarize``, ``/v1/judge``, ``/v1/generate``: ``Summarizer``,
  ``PersonalizedJudge`` and ``PersonalizedGenerator`` over HTTP;
- ``GET /health``;
- ``/ui``: the review page where a user reads and corrects their summary (``review``).

The admin token (``$PLUS_SERVE_TOKEN``, or ``--token``) and per-user keys (``plus keys``) protect
every ``/v1`` route (``plus_sdk.server.auth``; whether a token is needed is decided at start and
never relaxed); the token is checked before the body is read,
and bodies, headers and connections are bounded (``plus_sdk.server.limits``). Malformed
requests get 400 with an OpenAI-style ``{"error": {"message", "type", "param"}}`` body naming
the field; a store that stays locked gets 503 with ``Retry-After``.

``serve_in_thread`` runs the app on 127.0.0.1 in a background thread (tests, notebooks).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.cancel import RequestCancelledError
from plus_sdk.coalesce import CoalesceSettings, default_settings
from plus_sdk.generator import PersonalizedGenerator
from plus_sdk.inputs import aresolve_summaries
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.server.access_log import AccessLogMiddleware
from plus_sdk.server.auth import Authenticator, Principal, principal_dependency
from plus_sdk.server.limits import GuardMiddleware, error_body, uvicorn_config
from plus_sdk.server.review import add_review_page
from plus_sdk.server.store_routes import add_store_routes
from plus_sdk.store import SummaryStore, attach_store, forget_user
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import Preference, SamplingConfig, Summary, UserContext

#: Environment variable read for the bearer token when no ``--token`` is given.
TOKEN_ENV = "PLUS_SERVE_TOKEN"
#: Default cap on request bodies (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1 << 20


class ServeConfig(BaseModel):
    """Settings of ``plus serve``."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Base model name or folder (None: the embedded default).")
    bundle: str | None = Field(default=None, description="Adapter bundle (name or folder): its summarizer and "
                               "reward-model judge are served. None with no model: the default bundle; None with a "
                               "model: that model as an LLM judge.")
    served_model_name: str = Field(default="plus-local", description="Model name clients put in requests.")
    summary_task: str = Field(default="generic", description="Summarizer prompt family when no bundle is given.")
    device: str | None = Field(default=None, description="Torch device (None: auto).")
    token: SecretStr | None = Field(default=None, description="Admin bearer token for /v1 routes.")
    require_auth: bool | None = Field(default=None, description="Require a token even with no admin token and no "
                                      "key yet (None: required when a token is set or the store has keys).")
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1, description="Largest accepted request body.")
    max_tokens_limit: int = Field(default=1024, ge=1, description="Largest max_tokens a request may ask for.")
    batch_size: int = Field(default=8, ge=1, description="Generation batch size of the local backend.")
    store: str | None = Field(default=None, description="SummaryStore location (SQLite file or "
                                                        "postgresql:// URL): enables "
                                                        "/v1/summaries/* and user_id-aware summarizing.")
    coalesce_window_ms: float | None = Field(default=None, ge=0, description="How long /v1/judge, /v1/summarize and "
                                             "/v1/generate wait to batch concurrent requests (None: device default).")
    coalesce_max_batch: int | None = Field(default=None, ge=1, description="Most requests per coalesced batch "
                                           "(None: device default).")
    access_log: bool = Field(default=True, description="Log one line per request (method, route, status, ms).")
    store_busy_timeout_s: float = Field(default=5.0, gt=0, description="How long a write waits for the store's "
                                                                       "lock before answering 503.")
    header_timeout_s: float = Field(default=10.0, gt=0, description="Close connections whose request headers "
                                                                    "take longer.")
    body_timeout_s: float = Field(default=30.0, gt=0, description="Answer 408 to bodies that take longer.")
    max_connections: int = Field(default=1024, ge=1, description="Concurrent connections (and requests) before "
                                                                 "503.")
    shutdown_timeout_s: float = Field(default=3.0, ge=0, description="On SIGTERM, how long running requests may "
                                                                     "finish before they are cancelled.")


# ---------------------------------------------------------------------------------------
# Request / response schemas
# ---------------------------------------------------------------------------------------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Schema):
    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="The text of the message.")


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions request (fields outside this subset are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="Must match the served model name (see GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most new tokens (default 256).")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Alias of max_tokens.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, description="0 or unset: greedy decoding.")
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, strict=True, description="Seed for sampling.")
    n: int = Field(default=1, description="Only 1 is supported.")
    stream: bool = Field(default=False, description="Streaming is not supported.")


class ChatChoiceMessage(_Schema):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(_Schema):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]


class UsageInfo(_Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(_Schema):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class SummarizeRequest(_Schema):
    context: UserContext = Field(description="What is known about the user.")


class _Personalized(_Schema):
    context: UserContext | None = Field(default=None, description="The user's context (summarized, cached).")
    summary: str | None = Field(default=None, min_length=1, description="A summary text to use instead.")


class JudgeRequest(_Personalized):
    prompt: str = Field(min_length=1, description="The user's request.")
    a: str = Field(min_length=1, description="Response a.")
    b: str = Field(min_length=1, description="Response b.")


class GenerateRequest(_Personalized):
    prompt: str = Field(min_length=1, description="The user's request.")
    max_words: int = Field(default=100, ge=1, le=2000, description="Word budget of the reply.")


class GenerateResponse(_Schema):
    text: str
    summary: Summary | None


# ---------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------


class Services:
    """The models behind the routes, loaded once."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        model = LocalModel.load(config.model, device=config.device)
        self.model = model
        self.chat_backend = LocalBackend(model, batch_size=config.batch_size)
        if config.bundle or config.model is None:  # no model named: the default bundle judges
            self.judge = PersonalizedJudge.from_pretrained(config.bundle, device=config.device)
            self.summarizer = self.judge.summarizer  # one copy of the bundle's summarizer serves both
        else:
            self.summarizer = Summarizer(self.chat_backend, task=config.summary_task)
            self.judge = PersonalizedJudge(backend=self.chat_backend, summarizer=self.summarizer, debias=True)
        self.generator = PersonalizedGenerator(self.chat_backend, self.summarizer)
        settings = coalesce_settings(config, model.device)
        for obj in (self.summarizer, self.judge, self.generator):
            obj.coalesce = settings

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])


def coalesce_settings(config: ServeConfig, device: Any) -> CoalesceSettings:
    """The coalescing window and batch size: the config's, else the defaults for ``device``."""
    base = default_settings(device)
    return CoalesceSettings(
        window_ms=base.window_ms if config.coalesce_window_ms is None else config.coalesce_window_ms,
        max_batch=base.max_batch if config.coalesce_max_batch is None else config.coalesce_max_batch)


def _personal(request: _Personalized) -> UserContext | str | None:
    if request.context is not None and request.summary is not None:
        from fastapi import HTTPException  # optional: the server extra

        raise HTTPException(400, "give either context or summary, not both")
    return request.summary if request.summary is not None else request.context


def create_app(config: ServeConfig | None = None, *, services: Services | None = None) -> Any:
    """The FastAPI app for ``config`` (``services``: already loaded models to reuse)."""
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request  # optional: the server extra
    from fastapi.exceptions import RequestValidationError  # optional: the server extra
    from fastapi.responses import JSONResponse  # optional: the server extra
    from starlette.exceptions import HTTPException as StarletteHTTPException  # optional: the server extra

    config = config or ServeConfig()
    svc = services or Services(config)
    app = FastAPI(title="plus-sdk server", version="1",
                  description="OpenAI-compatible chat completions for local models, and PLUS summaries, "
                              "judgements and personalized generation.")
    app.state.services = svc
    store = None
    if config.store:
        store = SummaryStore(config.store, busy_timeout_s=config.store_busy_timeout_s)
    auth = Authenticator(config.token.get_secret_value() if config.token else None, store,
                         require_auth=config.require_auth)
    caller = principal_dependency(auth)
    app.state.authenticator = auth
    app.state.principal = caller  # routes added later (e.g. a UI) scope themselves with Depends(caller)

    def check_token(principal: Principal = Depends(caller)) -> Principal:  # noqa: B008
        return principal

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                413: "request_too_large", 503: "store_busy"}.get(
            exc.status_code, "invalid_request_error")
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "body")
            problems.append(f"{where or 'body'}: {error['msg']}")
        first = ".".join(str(p) for p in exc.errors()[0]["loc"] if p != "body") if exc.errors() else None
        return JSONResponse(error_body("invalid request: " + "; ".join(problems), "invalid_request_error", first),
                            status_code=400)

    @app.exception_handler(RequestCancelledError)
    async def cancelled_error(request: Request, exc: RequestCancelledError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "request_cancelled"), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "invalid_request_error"), status_code=400)

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, str]:  # async and store-free: never queued behind route threads
        return {"status": "ok", "model": config.served_model_name}

    router = APIRouter(prefix="/v1", dependencies=[Depends(check_token)])

    @router.get("/models", tags=["openai"])
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": config.served_model_name, "object": "model",
                                            "owned_by": "plus-sdk"}]}

    @router.post("/chat/completions", response_model=ChatCompletionResponse, tags=["openai"])
    def chat_completions(request: ChatCompletionRequest) -> ChatCompletionResponse:
        if request.model != config.served_model_name:
            raise HTTPException(404, f"model {request.model!r} is not served here; use {config.served_model_name!r}")
        if request.stream:
            raise HTTPException(400, "stream=true is not supported by this server; send stream=false")
        if request.n != 1:
            raise HTTPException(400, f"n={request.n} is not supported; send n=1")
        max_tokens = request.max_completion_tokens or request.max_tokens or 256
        if max_tokens > config.max_tokens_limit:
            raise HTTPException(400, f"max_tokens={max_tokens} is above this server's limit {config.max_tokens_limit}")
        sample = bool(request.temperature)
        sampling = SamplingConfig(max_new_tokens=max_tokens, do_sample=sample,
                                  temperature=request.temperature if sample else 1.0,
                                  top_p=request.top_p or 1.0, seed=request.seed)
        messages = [m.model_dump() for m in request.messages]
        text = svc.chat_backend.chat([messages], sampling)[0]
        prompt_tokens = svc.model.count_tokens(messages)
        completion_tokens = svc.count_tokens(text)
        finish = "length" if completion_tokens >= max_tokens else "stop"
        return ChatCompletionResponse(
            id=f"chatcmpl-{uuid.uuid4().hex[:24]}", created=int(time.time()), model=config.served_model_name,
            choices=[ChatChoice(index=0, message=ChatChoiceMessage(content=text), finish_reason=finish)],
            usage=UsageInfo(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                            total_tokens=prompt_tokens + completion_tokens))

    # The PLUS routes are async: concurrent requests are coalesced into batches (plus_sdk.coalesce).
    @router.post("/summarize", response_model=Summary, tags=["plus"])
    async def summarize(request: SummarizeRequest) -> Summary:
        return await svc.summarizer.asummarize(request.context)

    @router.post("/judge", response_model=Preference, tags=["plus"])
    async def judge(request: JudgeRequest) -> Preference:
        return await svc.judge.aprefer(_personal(request), request.prompt, request.a, request.b)

    @router.post("/generate", response_model=GenerateResponse, tags=["plus"])
    async def generate(request: GenerateRequest) -> GenerateResponse:
        summary = (await aresolve_summaries([_personal(request)], svc.summarizer))[0]
        max_words = None if request.max_words == svc.generator.max_words else request.max_words
        text = await svc.generator.agenerate(summary, request.prompt, max_words=max_words)
        return GenerateResponse(text=text, summary=summary)

    app.include_router(router)
    if store is not None:
        attach_store(svc.summarizer, store)
        summarizers = [svc.summarizer, getattr(svc.judge, "summarizer", None)]
        add_store_routes(app, store, check_token,
                         on_delete=lambda user_id: forget_user(store, user_id, [s for s in summarizers if s]))
    add_review_page(app, store_enabled=store is not None, auth_required=auth.required)
    app.add_middleware(GuardMiddleware, auth=auth, max_bytes=config.max_body_bytes,
                       body_timeout_s=config.body_timeout_s)
    if config.access_log:
        app.add_middleware(AccessLogMiddleware)  # outermost: it logs what the guard turned away too
    return app


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                    start_timeout: float = 60.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL (``http://host:port``)."""
    import uvicorn  # optional: the server extra

    services = getattr(getattr(app, "state", None), "services", None)
    config: ServeConfig = services.config if services is not None else ServeConfig()
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=log_level, lifespan="off",
                                           header_timeout_s=config.header_timeout_s,
                                           max_connections=config.max_connections,
                                           shutdown_timeout_s=config.shutdown_timeout_s))
    thread = threading.Thread(target=server.run, name="plus-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port} within {start_timeout:.0f} s")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
