"""Serving models over HTTP: FastAPI + uvicorn with asynchronous micro-batching.

:mod:`.tasks` recognises a model folder's task and turns its Python API's answers into JSON;
:mod:`.batcher` groups concurrent requests into one model call; :mod:`.schemas` holds the
request and response bodies; :mod:`.app` builds the app (endpoints, limits, errors, loading);
:mod:`.cli` runs it (``spanbert serve``). The web page lives in ``static/``.

    from spanbert.serve import create_app
    app = create_app(["runs/qa"])
"""

from __future__ import annotations

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "app": ["create_app"],
    "batcher": ["MicroBatcher"],
    "tasks": ["detect_task"],
    "cli": ["serve_command"],
})
