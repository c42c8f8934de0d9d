"""The HTTP server: a FastAPI app serving every task whose model it was given.

    app = create_app(["runs/qa", "runs/ner"])   # tasks detected from the folders' files
    uvicorn.run(app, host="127.0.0.1", port=8000)  # or: spanbert serve --model runs/qa --model runs/ner

Endpoints: ``GET /healthz``, ``GET /readyz`` (503 until the models are loaded), ``GET /v1/models``,
``POST /v1/{qa,fill,classify,relations,entities,coref,summarize}``, the web page at ``/`` (and
``/static``), the OpenAPI document at ``/openapi.json`` and its docs at ``/docs``. The docs page
is Swagger UI from the files the ``fastapi-offline`` package ships (part of the ``serve`` extra),
served at ``/docs/assets``: it works without internet (FastAPI's default page loads Swagger UI
from a CDN). There is no ``/redoc`` (ReDoc fetches its logo from a CDN).

The models are loaded when the app starts (its lifespan), each through its task's Python API.
Models are chosen by name among those given at start; a request never names a path.

Scheduling. Every request is weighed in tokens of its model's own tokenizer (counted in a
thread, off the event loop) and refused with 413 over ``max_request_tokens``. Model calls run
in two lanes, each one worker thread shared by every model:

- the short lane runs the requests of at most ``short_request_tokens`` tokens;
- the long lane runs the longer ones, each split into calls of at most ``max_batch_tokens``
  tokens (an item is never split) submitted one after the other, so that long requests to any
  model take turns call by call, and a dropped request stops at its next call.

A short request thus never queues behind a long one, whatever their models. At most two torch
calls run at once (sharing the CPU cores); each model runs in each lane on its own copy of its
tokenizer (a fast tokenizer object must not be used from two threads at once) and shares its
weights between them. In each lane, each model's :class:`~.batcher.MicroBatcher` groups
concurrent requests into calls of at most ``max_batch_size`` items and ``max_batch_tokens``
tokens.

A request not answered within ``request_timeout_s`` gets 503 and its work not yet run is
dropped; the work of a request whose client disconnected is dropped the same way (a request
still queued never runs). A model call already running is never interrupted.

Errors are JSON ``{"detail": "one line"}``: 404 for a task without a model or an unknown model
name; 413 for a body over ``max_body_bytes``, more than ``max_items`` items or more than
``max_request_tokens`` tokens; 422 for a text over ``max_text_chars``, a malformed request
(with the pydantic ``errors`` list beside the line) or input the model rejects (a
:class:`~spanbert.core.errors.SpanBertError`); 503 while loading and for a request that timed out;
500, with the traceback only in the server log, for anything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from spanbert import __version__
from spanbert.core.errors import CheckpointError, ConfigError, MissingExtraError, SpanBertError, one_line
from spanbert.core.extras import install_hint, require
from spanbert.serve.batcher import BatcherStats, MicroBatcher
from spanbert.serve.schemas import (ClassifyRequest, CorefResponse, EntitiesResponse, FillRequest, FillResponse, LabelResponse,
                      ModelsResponse, QARequest, QAResponse, RelationsRequest, SummarizeRequest, SummarizeResponse,
                      TextsRequest, task_request)
from spanbert.serve.tasks import TASKS, ServedModel, TokenCounter, detect_task, item_texts, text_fields

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs/assets"  # Swagger UI's files, served from the fastapi-offline package
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
# Requests of at most this many characters (all texts of all items) are counted in a thread of
# their own, so that counting a flood of huge requests (~65 ms per 100,000 characters) never
# delays counting a small one; counting this many characters takes about 10 ms.
SMALL_COUNT_CHARS = 16_384
PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # written as .key in an error location; others as ["key"]
CLIENT_GONE = 499  # nginx's status for "client closed the request": logged, never seen by the client
PLACEHOLDER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spanbert server</title></head>
<body><h1>spanbert server</h1><p>The web page is not installed. The API is described at
<a href="/docs">/docs</a>; the loaded models are listed at <a href="/v1/models">/v1/models</a>.</p></body></html>
"""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, how requests are batched, and which lane runs them."""

    max_batch_size: int = 32  # items per model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_body_bytes: int = 1_000_000
    max_text_chars: int = 100_000  # per text field of an item
    max_items: int = 32  # per request
    max_request_tokens: int = 16_384  # per request: all texts of all items, by the model's tokenizer
    max_batch_tokens: int = 4_096  # per model call: batches stop here; a longer request is split into calls
    short_request_tokens: int = 1_024  # requests of at most this many tokens run in the short lane
    request_timeout_s: float = 60.0  # from validation to answer; then 503 and the work is dropped

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_body_bytes", "max_text_chars", "max_items", "max_request_tokens",
                     "max_batch_tokens", "short_request_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max-wait-ms: must be >= 0, got {self.max_wait_ms}")
        if not self.request_timeout_s > 0:
            raise ConfigError(f"request-timeout: must be > 0 seconds, got {self.request_timeout_s}")


@dataclass
class Served:
    """One loaded model in both lanes, and its token counters."""

    model: ServedModel  # runs in the short lane
    batcher: MicroBatcher  # the short lane's batcher
    long_model: ServedModel  # the same weights with its own tokenizer: runs in the long lane
    long_batcher: MicroBatcher
    counters: dict[str, TokenCounter]  # one per counting thread: "small", "large"

    def stats(self) -> BatcherStats:
        """Both lanes' batcher counters, summed."""
        return self.batcher.stats + self.long_batcher.stats


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
    # one-thread executors: "short" and "long" (model calls; "short" also loads the models),
    # "count-small" and "count-large" (token counting)
    executors: dict[str, concurrent.futures.ThreadPoolExecutor] = field(default_factory=dict)


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

def _printable(text: str) -> str:
    """``text`` with lone surrogates as ``\\udXXX`` escapes (no UTF-8 reply can carry them)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _where(loc: Sequence) -> str:
    """A pydantic error location as ``items[0].text`` (the leading ``body`` dropped); a key that
    is not a plain name (a client's unknown key may hold anything: newlines, quotes, surrogates)
    is written as a JSON string in brackets, ``items[0]["a\\nb"]``, so the line stays one line."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif PLAIN_KEY.fullmatch(str(p)):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(str(p))}]"
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
    return " ".join(_printable("; ".join(parts[:5]) + more).splitlines())



# -- loading ----------------------------------------------------------------------------------

def _model_call(model: ServedModel) -> Callable:
    def call(items: list[dict], key: tuple) -> list[dict]:
        return model.predict(items, dict(key))

    return call


async def load_models(state: ServerState) -> None:
    """Load every folder in the short lane's thread and give each model its batchers (one per
    lane) and token counters; on failure record the error (the app stays not ready) and call
    ``state.on_load_error``."""
    loop = asyncio.get_running_loop()
    limits = state.limits
    try:
        for folder, task in state.folders:
            state.failed_model = folder.name
            try:
                model = await loop.run_in_executor(state.executors["short"], ServedModel.load, folder, task, state.device)
                # copies made before the model serves anything: nothing uses its tokenizer meanwhile
                long_model = model.twin()
                counters = {"small": model.token_counter(), "large": model.token_counter()}
            except SpanBertError:
                raise
            except Exception as e:  # e.g. missing or corrupt weights: still a problem of this folder
                logger.debug("loading %s failed", folder, exc_info=True)
                raise CheckpointError(f"--model {folder}: cannot load it as a {task} model ({one_line(e, None)})") from e
            batchers = [MicroBatcher(_model_call(m), max_batch_size=limits.max_batch_size, max_wait_ms=limits.max_wait_ms,
                                     max_batch_tokens=limits.max_batch_tokens, executor=state.executors[lane],
                                     name=f"{task}:{model.name}:{lane}")
                        for m, lane in ((model, "short"), (long_model, "long"))]
            state.models.setdefault(task, []).append(Served(model, batchers[0], long_model, batchers[1], counters))
            logger.info("loaded %s model %s", task, model.name)
        state.ready, state.failed_model = True, None
    except Exception as e:  # noqa: BLE001 - reported by /readyz and to the caller of on_load_error
        state.load_error = e
        if isinstance(e, SpanBertError):
            logger.error("cannot load the models: %s", one_line(e, None))
        else:
            logger.exception("cannot load the models")
        if state.on_load_error is not None:
            state.on_load_error(e)


def _lifespan(state: ServerState):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.executors = {name: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"spanbert-{name}")
                           for name in ("short", "long", "count-small", "count-large")}
        await load_models(state)
        try:
            yield
        finally:
            for served in [s for group in state.models.values() for s in group]:
                await served.batcher.close()
                await served.long_batcher.close()
            state.ready = False
            for executor in state.executors.values():
                executor.shutdown(wait=False, cancel_futures=True)

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
        for name in text_fields(task):
            value = getattr(item, name, None)
            if value is not None and len(value) > limits.max_text_chars:
                raise HTTPException(422, detail=f"items[{i}].{name}: {len(value)} characters; the limit is {limits.max_text_chars}")


def check_tokens(limits: Limits, tokens: Sequence[int]) -> None:
    """413 for a request of more than ``max_request_tokens`` tokens (``tokens``: one count per item)."""
    total = sum(tokens)
    if total > limits.max_request_tokens:
        raise HTTPException(413, detail=f"items: {total:,} tokens in one request; the limit is "
                                        f"{limits.max_request_tokens:,} (--max-request-tokens)")


def split_calls(tokens: Sequence[int], max_tokens: int, max_items: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges of items, each of at most ``max_items`` items and
    ``max_tokens`` tokens (``tokens``: one count per item) except an item over the budget,
    which makes a range of its own: the calls a long request is split into."""
    ranges: list[tuple[int, int]] = []
    start, total = 0, 0
    for i, n in enumerate(tokens):
        if i > start and (total + n > max_tokens or i - start >= max_items):
            ranges.append((start, i))
            start, total = i, 0
        total += n
    if tokens:
        ranges.append((start, len(tokens)))
    return ranges


async def count_tokens(state: ServerState, served: Served, task: str, items: list[dict]) -> list[int]:
    """Tokens of each item by its model's tokenizer, counted in a counting thread: small
    requests (at most :data:`SMALL_COUNT_CHARS` characters) in one, larger ones in the other."""
    chars = sum(len(t) for item in items for t in item_texts(task, item))
    which = "small" if chars <= SMALL_COUNT_CHARS else "large"
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(state.executors[f"count-{which}"], served.counters[which].count_items, task, items)


async def run_items(state: ServerState, served: Served, task: str, items: list[dict], key: tuple) -> list[dict]:
    """Weigh ``items`` in tokens (413 over the limit) and run them in their lane: whole in the
    short lane, or in calls of at most ``max_batch_tokens`` tokens, one after the other, in the
    long lane. One result per item, in order."""
    limits = state.limits
    tokens = await count_tokens(state, served, task, items)
    check_tokens(limits, tokens)
    total = sum(tokens)
    if total <= limits.short_request_tokens:
        return await served.batcher.submit(items, key, tokens=total)
    ranges = split_calls(tokens, limits.max_batch_tokens, limits.max_batch_size)
    results: list[dict] = []
    for start, end in ranges:
        try:
            results += await served.long_batcher.submit(items[start:end], key, tokens=sum(tokens[start:end]))
        except SpanBertError as e:
            if len(ranges) == 1:
                raise
            # the model's message counts items from the start of its call
            raise SpanBertError(f"items[{start}:{end}], run as one model call: {one_line(e, None)}") from None
    return results


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _client_gone(request: Request) -> None:
    """Return once the client has disconnected. The body has been read: the ASGI server's next
    message is ``http.disconnect``, sent when the connection closes (or, by some servers and
    test clients, once the response is complete, by which time this waiter is cancelled)."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return
        await asyncio.sleep(0.05)  # anything else (an empty body chunk): never a busy loop on a server that repeats it


async def guarded(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """``work``'s result, unless the client disconnects first (:class:`ClientGone`) or it takes
    longer than ``timeout_s`` (503); either way ``work`` is cancelled, which drops its queued
    model calls. Cancelling the caller cancels ``work`` too."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler was cancelled: so is its work
        task.cancel()
        raise
    finally:
        gone.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if gone in done:
        raise ClientGone()
    logger.warning("a request did not finish within %g s (--request-timeout); its remaining work was dropped", timeout_s)
    raise HTTPException(503, detail=f"the request did not finish within {timeout_s:g} s (--request-timeout); "
                                    "its remaining work was dropped")


async def serve_request(request: Request, task: str, body, options: dict | None = None) -> dict:
    """Check a validated request against the limits, run its items in their lane (batched with
    other requests' items) and return ``{"model": name, "results": [...]}``."""
    state: ServerState = request.app.state.server
    served = _pick(state, task, body.model)
    check_limits(state.limits, task, body.items)
    items = [item.model_dump() for item in body.items]
    key = tuple(sorted((k, v) for k, v in (options or {}).items() if v is not None))
    try:
        results = await guarded(request, run_items(state, served, task, items, key), state.limits.request_timeout_s)
    except HTTPException:
        raise
    except ClientGone:
        logger.info("%s request to %s: the client went away; its remaining work was dropped", task, served.model.name)
        raise HTTPException(CLIENT_GONE, detail="the client closed the request") from None
    except SpanBertError as e:  # the model rejected this request's input
        raise HTTPException(422, detail=one_line(e, None)) from None
    except Exception:
        logger.exception("%s model %s failed on a request", task, served.model.name)
        raise HTTPException(500, detail="internal error while running the model (the server log has the details)") from None
    return {"model": served.model.name, "results": results}


# -- the app ----------------------------------------------------------------------------------

def docs_assets_dir() -> Path:
    """The folder holding Swagger UI's files (:data:`SWAGGER_FILES`), as the ``fastapi-offline``
    package ships them; a one-line :class:`MissingExtraError` when it is not installed."""
    package = require("fastapi_offline", "serve", "the API docs page (/docs)")
    folder = Path(package.__file__).resolve().parent / "static"
    missing = [name for name in SWAGGER_FILES if not (folder / name).is_file()]
    if missing:  # a fastapi-offline release that moved its files
        raise MissingExtraError(f"the API docs page (/docs) needs Swagger UI's {', '.join(missing)}, absent from "
                                f"{folder}: {install_hint('serve')}", name="fastapi_offline")
    return folder


def create_app(models: Sequence[str | os.PathLike], *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
               max_body_bytes: int = 1_000_000, max_text_chars: int = 100_000, max_items: int = 32,
               max_request_tokens: int = 16_384, max_batch_tokens: int = 4_096, short_request_tokens: int = 1_024,
               request_timeout: float = 60.0, device: str | None = None) -> FastAPI:
    """A FastAPI app serving ``models`` (folders; each one's task is detected from its files).

    Limits (see :class:`Limits`): ``max_request_tokens`` per request (413 beyond), counted by
    each model's tokenizer over all texts of all items; ``max_batch_tokens`` per model call;
    requests of at most ``short_request_tokens`` tokens run in the short lane, longer ones in
    the long lane; ``request_timeout`` seconds per request (503 beyond).

    Raises a one-line :class:`ConfigError` at once for a bad limit, a missing folder, one whose
    task cannot be told, or two folders with the same name (models are addressed by folder
    name). The models load when the app starts; ``app.state.server`` is its :class:`ServerState`.
    """
    if not models:
        raise ConfigError("--model: give at least one model folder")
    limits = Limits(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes,
                    max_text_chars=max_text_chars, max_items=max_items, max_request_tokens=max_request_tokens,
                    max_batch_tokens=max_batch_tokens, short_request_tokens=short_request_tokens,
                    request_timeout_s=request_timeout)
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

    docs_assets = docs_assets_dir()
    app = FastAPI(
        title="spanbert", version=__version__, lifespan=_lifespan(state),
        docs_url=None, redoc_url=None,  # FastAPI's pages load their scripts from a CDN: /docs is served below
        description="SpanBERT models over HTTP: question answering, span infilling, classification, relations, "
                    "entities, coreference and extractive summarization. Each request carries a list of `items`; "
                    "the response has one result per item, in order. Character offsets index the item's text.",
    )
    app.state.server = state
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [{"loc": [_printable(x) if isinstance(x, str) else x for x in e.get("loc", ())],
                   "msg": _printable(str(e.get("msg", ""))), "type": e.get("type", "")} for e in raw]
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
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy that strips a prefix
        assets = f"{root}{DOCS_ASSETS_URL}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title="spanbert - API docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge image from validator.swagger.io
        )

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
        them, and the micro-batchers' counters, both lanes summed (requests, items, batches, model calls,
        requests dropped before they ran)."""
        return {"models": [{"name": s.model.name, "task": s.model.task, "labels": s.model.labels,
                            "batching": asdict(s.stats())}
                           for task in (*TASKS, *(t for t in state.models if t not in TASKS))
                           for s in state.models.get(task, [])]}

    for task, (body_type, response, doc, options) in ROUTES.items():
        _add_task_route(app, task, body_type, response, doc, options)
    for task in dict.fromkeys(task for _, task in folders):  # registered tasks without a route of their own
        if task not in ROUTES:
            _add_task_route(app, task, task_request(task, text_fields(task)), None, f"The registered task {task!r}.", None)
    return app


# The endpoints with a schema of their own: request and response types, the description, and the
# request's options beside its items.
ROUTES: dict[str, tuple[type, type | None, str, Callable[[Any], dict] | None]] = {
    "qa": (QARequest, QAResponse, "Extractive question answering: the answer to each question in its context.", None),
    "fill": (FillRequest, FillResponse, "Span infilling: every run of [MASK] tokens filled by the MLM head, the SBO "
             "head, both, and both iteratively.", lambda body: {"top_k": body.top_k}),
    "classify": (ClassifyRequest, LabelResponse, "Text (or text-pair) classification: the label, its probability, "
                 "and every label's probability.", None),
    "relations": (RelationsRequest, LabelResponse, "Relation classification of sentences with <e1>..</e1> and "
                  "<e2>..</e2> marked.", None),
    "entities": (TextsRequest, EntitiesResponse, "Named entities of each text, with character offsets.", None),
    "coref": (TextsRequest, CorefResponse, "Coreference clusters of each text (each text is one document).", None),
    "summarize": (SummarizeRequest, SummarizeResponse, "Extractive summary of each text: its best sentences, in "
                  "document order.", lambda body: {"max_sentences": body.max_sentences, "max_words": body.max_words}),
}


def _add_task_route(app: FastAPI, task: str, body_type: type, response: type | None, doc: str,
                    options: Callable[[Any], dict] | None) -> None:
    """``POST /v1/<task>``: the validated body's items run through :func:`serve_request`."""
    import inspect

    async def endpoint(body, request: Request) -> dict:
        return await serve_request(request, task, body, options(body) if options else None)

    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=body_type),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)], return_annotation=dict)
    endpoint.__name__, endpoint.__doc__ = task, doc
    app.post(f"/v1/{task}", tags=["tasks"], response_model=response)(endpoint)


__all__ = ["create_app", "Limits", "ServerState", "BodySizeLimit", "check_limits", "check_tokens", "split_calls",
           "count_tokens", "run_items", "guarded", "load_models", "serve_request", "validation_detail", "STATIC_DIR"]
