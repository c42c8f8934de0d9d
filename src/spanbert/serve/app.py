"""The HTTP server: a FastAPI app serving every task whose model it was given.

    app = create_app(["runs/qa", "runs/ner"])   # tasks detected from the folders' files
    uvicorn.run(app, host="127.0.0.1", port=8000)  # or: spanbert serve --model runs/qa --model runs/ner

Endpoints: ``GET /healthz``, ``GET /readyz`` (503 until the models are loaded), ``GET /v1/models``,
``POST /v1/{qa,fill,classify,relations,entities,coref,summarize}``, the web page at ``/`` (and
``/static``), the OpenAPI document at ``/openapi.json`` and its docs at ``/docs``.

The models are loaded when the app starts (its lifespan), each through its task's Python API,
in one worker thread that then runs every model call: torch calls never run concurrently, and
each model's :class:`~.batcher.MicroBatcher` groups concurrent requests into one call. Models
are chosen by name among those given at start; a request never names a path.

Errors are JSON ``{"detail": "one line"}``: 404 for a task without a model or an unknown model
name; 413 for a body over ``max_body_bytes`` or more than ``max_items`` items; 422 for a text
over ``max_text_chars``, a malformed request (with the pydantic ``errors`` list beside the
line) or input the model rejects (a :class:`~spanbert.errors.SpanBertError`); 503 while
loading; 500, with the traceback only in the server log, for anything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import CheckpointError, ConfigError, SpanBertError
from .batcher import MicroBatcher
from .schemas import (ClassifyRequest, CorefResponse, EntitiesResponse, FillRequest, FillResponse, LabelResponse,
                      ModelsResponse, QARequest, QAResponse, RelationsRequest, SummarizeRequest, SummarizeResponse,
                      TextsRequest)
from .tasks import TASKS, ServedModel, detect_task

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEXT_FIELDS = {"qa": ("question", "context"), "classify": ("text", "text_pair")}  # other tasks: ("text",)
PLACEHOLDER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spanbert server</title></head>
<body><h1>spanbert server</h1><p>The web page is not installed. The API is described at
<a href="/docs">/docs</a>; the loaded models are listed at <a href="/v1/models">/v1/models</a>.</p></body></html>
"""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how requests are batched."""

    max_batch_size: int = 32  # items per model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_body_bytes: int = 1_000_000
    max_text_chars: int = 100_000  # per text field of an item
    max_items: int = 32  # per request

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_body_bytes", "max_text_chars", "max_items"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max-wait-ms: must be >= 0, got {self.max_wait_ms}")


@dataclass
class Served:
    model: ServedModel
    batcher: MicroBatcher


@dataclass
class ServerState:
    """What the app holds: the folders to load, the limits, and once loaded the models by task."""

    folders: list[tuple[Path, str]]  # (folder, task), in the order given
    limits: Limits
    device: str | None = None
    models: dict[str, list[Served]] = field(default_factory=dict)  # task -> its models, in the order given
    ready: bool = False
    load_error: BaseException | None = None
    failed_model: str | None = None  # name of the folder that failed to load
    on_load_error: Callable[[BaseException], None] | None = None  # e.g. tell uvicorn to stop (spanbert serve)
    executor: concurrent.futures.ThreadPoolExecutor | None = None


# -- body size limit --------------------------------------------------------------------------

class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app sees it, by its
    Content-Length or, when streamed without one, by the bytes received (the body is read,
    at most ``max_bytes`` of it, before the app runs)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _json_reply(send, 400, "Content-Length: not a number")
            if declared > self.max_bytes:
                return await _json_reply(send, 413, f"request body of {declared} bytes is over the limit of {self.max_bytes} bytes")
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client disconnected
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await _json_reply(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _json_reply(send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


# -- errors -----------------------------------------------------------------------------------

def _where(loc: Sequence) -> str:
    """A pydantic error location as ``items[0].text`` (the leading ``body`` dropped)."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _error_line(error: dict) -> str:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":  # loc is ("body", character position)
        reason = (error.get("ctx") or {}).get("error")
        return f"body: invalid JSON at character {loc[-1]}" + (f" ({reason})" if reason else "")
    return f"{_where(loc)}: {error.get('msg', 'invalid')}"


def validation_detail(errors: Sequence[dict]) -> str:
    """One line for a request's validation errors: ``items[0].text: must not be empty ...; ...``."""
    parts = [_error_line(e) for e in errors]
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return "; ".join(parts[:5]) + more


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- loading ----------------------------------------------------------------------------------

def _model_call(model: ServedModel) -> Callable:
    def call(items: list[dict], key: tuple) -> list[dict]:
        return model.predict(items, dict(key))

    return call


async def load_models(state: ServerState) -> None:
    """Load every folder in the state's worker thread and give each model its batcher; on
    failure record the error (the app stays not ready) and call ``state.on_load_error``."""
    loop = asyncio.get_running_loop()
    limits = state.limits
    try:
        for folder, task in state.folders:
            state.failed_model = folder.name
            try:
                model = await loop.run_in_executor(state.executor, ServedModel.load, folder, task, state.device)
            except SpanBertError:
                raise
            except Exception as e:  # e.g. missing or corrupt weights: still a problem of this folder
                logger.debug("loading %s failed", folder, exc_info=True)
                raise CheckpointError(f"--model {folder}: cannot load it as a {task} model ({_one_line(e)})") from e
            batcher = MicroBatcher(_model_call(model), max_batch_size=limits.max_batch_size, max_wait_ms=limits.max_wait_ms,
                                   executor=state.executor, name=f"{task}:{model.name}")
            state.models.setdefault(task, []).append(Served(model, batcher))
            logger.info("loaded %s model %s", task, model.name)
        state.ready, state.failed_model = True, None
    except Exception as e:  # noqa: BLE001 - reported by /readyz and to the caller of on_load_error
        state.load_error = e
        if isinstance(e, SpanBertError):
            logger.error("cannot load the models: %s", _one_line(e))
        else:
            logger.exception("cannot load the models")
        if state.on_load_error is not None:
            state.on_load_error(e)


def _lifespan(state: ServerState):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spanbert-model")
        await load_models(state)
        try:
            yield
        finally:
            for served in [s for group in state.models.values() for s in group]:
                await served.batcher.close()
            state.ready = False
            state.executor.shutdown(wait=False, cancel_futures=True)

    return lifespan


# -- requests ---------------------------------------------------------------------------------

def _not_ready_reason(state: ServerState) -> str:
    """Why the server is not ready, naming a model by name only (its path stays in the server log)."""
    if state.load_error is None:
        return "the models are still loading"
    return f"loading failed: model {state.failed_model!r} could not be loaded (the server log has the reason)"


def _pick(state: ServerState, task: str, name: str | None) -> Served:
    """The model of ``task`` named ``name`` (the first one when None), or the HTTP error."""
    if not state.ready:
        raise HTTPException(503, detail=f"not ready ({_not_ready_reason(state)})")
    group = state.models.get(task)
    if not group:
        loaded = ", ".join(sorted(state.models)) or "none"
        raise HTTPException(404, detail=f"no {task} model is loaded on this server (loaded tasks: {loaded})")
    if name is None:
        return group[0]
    for served in group:
        if served.model.name == name:
            return served
    raise HTTPException(404, detail=f"model {name!r}: no loaded {task} model has this name "
                                    f"(loaded: {', '.join(s.model.name for s in group)})")


def check_limits(limits: Limits, task: str, items: Sequence) -> None:
    """413 for more than ``max_items`` items; 422 naming the item and field of a text that is too long."""
    if len(items) > limits.max_items:
        raise HTTPException(413, detail=f"items: {len(items)} in one request; the limit is {limits.max_items}")
    for i, item in enumerate(items):
        for name in TEXT_FIELDS.get(task, ("text",)):
            value = getattr(item, name, None)
            if value is not None and len(value) > limits.max_text_chars:
                raise HTTPException(422, detail=f"items[{i}].{name}: {len(value)} characters; the limit is {limits.max_text_chars}")


async def serve_request(request: Request, task: str, body, options: dict | None = None) -> dict:
    """Check a validated request against the limits, batch its items into its model's calls
    and return ``{"model": name, "results": [...]}``."""
    state: ServerState = request.app.state.server
    served = _pick(state, task, body.model)
    check_limits(state.limits, task, body.items)
    items = [item.model_dump() for item in body.items]
    key = tuple(sorted((k, v) for k, v in (options or {}).items() if v is not None))
    try:
        results = await served.batcher.submit(items, key)
    except SpanBertError as e:  # the model rejected this request's input
        raise HTTPException(422, detail=_one_line(e)) from None
    except Exception:
        logger.exception("%s model %s failed on a request", task, served.model.name)
        raise HTTPException(500, detail="internal error while running the model (the server log has the details)") from None
    return {"model": served.model.name, "results": results}


# -- the app ----------------------------------------------------------------------------------

def create_app(models: Sequence[str | os.PathLike], *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
               max_body_bytes: int = 1_000_000, max_text_chars: int = 100_000, max_items: int = 32,
               device: str | None = None) -> FastAPI:
    """A FastAPI app serving ``models`` (folders; each one's task is detected from its files).

    Raises a one-line :class:`ConfigError` at once for a missing folder, one whose task cannot
    be told, or two folders with the same name (models are addressed by folder name). The
    models load when the app starts; ``app.state.server`` is its :class:`ServerState`.
    """
    if not models:
        raise ConfigError("--model: give at least one model folder")
    limits = Limits(max_batch_size, max_wait_ms, max_body_bytes, max_text_chars, max_items)
    folders: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for m in models:
        path = Path(m)
        task = detect_task(path)
        if path.name in seen:
            raise ConfigError(f"--model {m}: has the same name {path.name!r} as {seen[path.name]}; models are addressed "
                              "by folder name, so rename one")
        seen[path.name] = path
        folders.append((path, task))
    state = ServerState(folders, limits, device)

    app = FastAPI(
        title="spanbert", version=__version__, lifespan=_lifespan(state),
        description="SpanBERT models over HTTP: question answering, span infilling, classification, relations, "
                    "entities, coreference and extractive summarization. Each request carries a list of `items`; "
                    "the response has one result per item, in order. Character offsets index the item's text.",
    )
    app.state.server = state
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in raw]
        return JSONResponse({"detail": validation_detail(raw), "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the server log (Starlette re-raises the exception after this reply)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def index():
        page = STATIC_DIR / "index.html"
        return FileResponse(page, media_type="text/html") if page.is_file() else HTMLResponse(PLACEHOLDER_PAGE)

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict:
        """The process is up (it may still be loading its models)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["server"], responses={503: {"description": "Models still loading, or loading failed."}})
    async def readyz() -> JSONResponse:
        """200 once every model is loaded; 503 before (or when loading failed, with the reason)."""
        names = [s.model.name for group in state.models.values() for s in group]
        if state.ready:
            return JSONResponse({"ready": True, "models": names})
        body: dict = {"ready": False, "models": names}
        body["detail"] = _not_ready_reason(state)
        return JSONResponse(body, status_code=503)

    @app.get("/v1/models", tags=["server"], response_model=ModelsResponse, response_model_exclude_none=True)
    async def list_models() -> dict:
        """The loaded models: name (use it as a request's ``model``), task, labels where the task has
        them, and the micro-batcher's counters (requests, items, batches, model calls)."""
        return {"models": [{"name": s.model.name, "task": s.model.task, "labels": s.model.labels,
                            "batching": asdict(s.batcher.stats)}
                           for task in TASKS for s in state.models.get(task, [])]}

    @app.post("/v1/qa", tags=["tasks"], response_model=QAResponse)
    async def qa(body: QARequest, request: Request) -> dict:
        """Extractive question answering: the answer to each question in its context."""
        return await serve_request(request, "qa", body)

    @app.post("/v1/fill", tags=["tasks"], response_model=FillResponse)
    async def fill(body: FillRequest, request: Request) -> dict:
        """Span infilling: every run of [MASK] tokens filled by the MLM head, the SBO head, both, and both iteratively."""
        return await serve_request(request, "fill", body, {"top_k": body.top_k})

    @app.post("/v1/classify", tags=["tasks"], response_model=LabelResponse)
    async def classify(body: ClassifyRequest, request: Request) -> dict:
        """Text (or text-pair) classification: the label, its probability, and every label's probability."""
        return await serve_request(request, "classify", body)

    @app.post("/v1/relations", tags=["tasks"], response_model=LabelResponse)
    async def relations(body: RelationsRequest, request: Request) -> dict:
        """Relation classification of sentences with <e1>..</e1> and <e2>..</e2> marked."""
        return await serve_request(request, "relations", body)

    @app.post("/v1/entities", tags=["tasks"], response_model=EntitiesResponse)
    async def entities(body: TextsRequest, request: Request) -> dict:
        """Named entities of each text, with character offsets."""
        return await serve_request(request, "entities", body)

    @app.post("/v1/coref", tags=["tasks"], response_model=CorefResponse)
    async def coref(body: TextsRequest, request: Request) -> dict:
        """Coreference clusters of each text (each text is one document)."""
        return await serve_request(request, "coref", body)

    @app.post("/v1/summarize", tags=["tasks"], response_model=SummarizeResponse)
    async def summarize(body: SummarizeRequest, request: Request) -> dict:
        """Extractive summary of each text: its best sentences, in document order."""
        return await serve_request(request, "summarize", body,
                                   {"max_sentences": body.max_sentences, "max_words": body.max_words})

    return app


__all__ = ["create_app", "Limits", "ServerState", "BodySizeLimit", "check_limits", "load_models", "serve_request",
           "validation_detail", "STATIC_DIR"]
