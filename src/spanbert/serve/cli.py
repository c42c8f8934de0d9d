"""``spanbert serve``: the HTTP server (:mod:`.app`) under uvicorn.

    spanbert serve --model runs/qa --model runs/ner --port 8000

The function is registered on the CLI by :mod:`spanbert.cli`. It needs the optional ``serve``
extra (``pip install 'spanbert[serve]'``: fastapi, uvicorn, fastapi-offline).
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_command(
    model: Annotated[list[Path], typer.Option("--model", "-m", help="A model folder to serve (repeatable): any folder written by `spanbert finetune <task>` or `spanbert pretrain` (span infilling); its task is detected from its files and its name is the folder name.")],
    host: Annotated[str, typer.Option(help="Address to listen on. The default accepts only local connections; 0.0.0.0 exposes the server to the network (there is no authentication).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, help="TCP port.")] = 8000,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Items of concurrent requests run together in one model call (1: one request at a time).")] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="How long the first request of a batch waits for others to join it, in ms.")] = 5.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Larger request bodies get 413.")] = 1_000_000,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longer texts (per field of an item) get 422.")] = 100_000,
    max_items: Annotated[int, typer.Option(min=1, help="Requests with more items get 413.")] = 32,
    max_request_tokens: Annotated[int, typer.Option(min=1, help="Requests with more tokens (all texts of all items, by the model's own tokenizer) get 413.")] = 16_384,
    max_batch_tokens: Annotated[int, typer.Option(min=1, help="Tokens of one model call: batches stop here, and a request of the long lane is split into calls of at most this many (an item is never split).")] = 4_096,
    short_request_tokens: Annotated[int, typer.Option(min=1, help="Requests of at most this many tokens run in the short lane, longer ones in the long lane (its own worker thread), so short requests never wait behind long ones. At or above --max-request-tokens: one lane.")] = 1_024,
    request_timeout: Annotated[float, typer.Option(help="Seconds a request may take; then it gets 503 and its work not yet run is dropped.")] = 60.0,
    device: Annotated[str | None, typer.Option(help="torch device for the models (default: cuda when available, else cpu).")] = None,
) -> None:
    """Serve models over HTTP: a JSON API per task (OpenAPI docs at /docs), /healthz, /readyz and a web page at /."""
    from spanbert.core.extras import require

    for module in ("fastapi", "uvicorn", "fastapi_offline"):  # the 'serve' extra: say so in one line, not a traceback
        require(module, "serve", "spanbert serve")
    import uvicorn

    from spanbert.serve.app import create_app

    if not 0 < port < 65536:
        raise ConfigError(f"--port: must be in 1..65535, got {port}")
    app = create_app(model, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes,
                     max_text_chars=max_text_chars, max_items=max_items, max_request_tokens=max_request_tokens,
                     max_batch_tokens=max_batch_tokens, short_request_tokens=short_request_tokens,
                     request_timeout=request_timeout, device=device)
    if not is_loopback(host):
        print(f"warning: listening on {host}, not a loopback address: anyone who can reach this machine can use the "
              "server (it has no authentication)", file=sys.stderr)
    # log_config=None: no logging.config.dictConfig, which would close every handler already
    # installed (it closed the stream of one that another library had put on the root logger);
    # uvicorn's loggers propagate to the root logger the CLI configured instead
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="on", log_level="info", log_config=None))
    state = app.state.server
    state.on_load_error = lambda error: setattr(server, "should_exit", True)  # stop at once, then report below
    try:
        server.run()
    except SystemExit as e:  # uvicorn could not start, e.g. the port is taken (it has logged why)
        if state.load_error is None:
            raise ConfigError(f"--host {host} --port {port}: the server could not start (exit status {e.code})") from None
    if state.load_error is not None:
        raise state.load_error


__all__ = ["serve_command", "is_loopback"]
