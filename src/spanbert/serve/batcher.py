"""Asynchronous micro-batching: concurrent requests share one call of a model's list API.

    batcher = MicroBatcher(lambda items, key: model.predict(items), max_batch_size=32, max_wait_ms=5)
    results = await batcher.submit(["text one", "text two"])  # this request's results, in order

A request is a list of items, with a weight in tokens. Requests queue up; a batch starts with
the oldest waiting request and takes the following ones, whole, while the items fit in
``max_batch_size`` and the tokens in ``max_batch_tokens``, waiting at most ``max_wait_ms`` after
the first request arrived (while the model is busy with the previous batch, requests simply
queue, so a busy server batches without waiting). The batch runs in the batcher's executor (the
server gives every batcher of one lane the same one-thread executor) as one call per option key
(requests with different options, e.g. ``top_k``, cannot share a call). If that call raises,
each of its requests is run on its own, so one request's bad input fails only that request.
``max_batch_size=1`` runs one request per call.

A request whose awaiting task is cancelled (its client went away, or it timed out) is dropped
when its turn comes: it never reaches the model. A request already running is not interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

BatchFn = Callable[[list[Any], Hashable], list[Any]]  # (items, option key) -> one result per item


@dataclass
class Pending:
    """One submitted request: its items, option key, arrival time and the future of its results."""

    items: list[Any]
    key: Hashable
    arrived: float  # loop.time() at submission
    future: asyncio.Future = field(repr=False)
    tokens: int = 0  # the request's weight against max_batch_tokens


@dataclass
class Outcome:
    """What one request got: its results, or the exception that failed it."""

    results: list[Any] | None = None
    error: BaseException | None = None


@dataclass
class BatcherStats:
    """Counters of a batcher: requests and items served, batches formed, model calls made
    (one per option key per batch, plus one per request when a batch call had to be split)."""

    requests: int = 0
    items: int = 0
    batches: int = 0
    calls: int = 0
    split_batches: int = 0  # batch calls that raised and were re-run request by request
    dropped: int = 0  # requests cancelled (client gone, timed out) before their batch ran: never run

    def __add__(self, other: BatcherStats) -> BatcherStats:
        return BatcherStats(*(a + b for a, b in zip(astuple(self), astuple(other))))


def _call(fn: BatchFn, items: list[Any], key: Hashable, stats: BatcherStats) -> list[Any]:
    stats.calls += 1
    results = list(fn(items, key))
    if len(results) != len(items):
        raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
    return results


def run_batch(fn: BatchFn, requests: Sequence[tuple[list[Any], Hashable]], stats: BatcherStats | None = None) -> list[Outcome]:
    """Run ``requests`` (``(items, key)`` pairs) through ``fn``: one call per key over the
    concatenated items of that key's requests, in order; if a call raises, its requests are
    re-run one by one so that only the failing ones get the error. One outcome per request."""
    stats = stats if stats is not None else BatcherStats()
    outcomes = [Outcome() for _ in requests]
    groups: dict[Hashable, list[int]] = {}
    for i, (_, key) in enumerate(requests):
        groups.setdefault(key, []).append(i)
    for key, members in groups.items():
        items = [item for i in members for item in requests[i][0]]
        try:
            results = _call(fn, items, key, stats)
        except Exception as e:  # noqa: BLE001 - isolate the failing request(s) below
            if len(members) == 1:
                outcomes[members[0]].error = e
                continue
            stats.split_batches += 1
            for i in members:
                try:
                    outcomes[i].results = _call(fn, list(requests[i][0]), key, stats)
                except Exception as e1:  # noqa: BLE001 - this request's own error
                    outcomes[i].error = e1
            continue
        first = 0
        for i in members:
            n = len(requests[i][0])
            outcomes[i].results = results[first : first + n]
            first += n
    return outcomes


class MicroBatcher:
    """Groups concurrent :meth:`submit` calls into batched calls of ``fn(items, key)``.

    ``fn`` gets a list of items and the option key they share and returns one result per item,
    in order. It runs in ``executor`` (a private one-thread pool when none is given). A batch
    holds at most ``max_batch_size`` items and, when ``max_batch_tokens`` is given, at most that
    many tokens (the ``tokens`` of its requests; a request over either limit runs alone). Create
    and use the batcher inside one running event loop; :meth:`close` it at shutdown.
    """

    def __init__(self, fn: BatchFn, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_batch_tokens: int | None = None, executor: concurrent.futures.Executor | None = None,
                 name: str = "batcher"):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: must be >= 0, got {max_wait_ms}")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens: must be >= 1, got {max_batch_tokens}")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.name = name
        self.stats = BatcherStats()
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"{name}-worker")
        self._queue: asyncio.Queue[Pending] | None = None
        self._task: asyncio.Task | None = None
        self._carry: Pending | None = None  # a request that did not fit the last batch: first of the next
        self._running: list[Pending] = []  # the batch being run

    def start(self) -> None:
        """Start the batching loop on the running event loop (done by the first submit too)."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"{self.name}-loop")

    async def submit(self, items: Sequence[Any], key: Hashable = None, tokens: int = 0) -> list[Any]:
        """This request's results, one per item and in order, once its batch has run; the
        exception its items raised, if they did. ``tokens``: the request's weight against
        ``max_batch_tokens``. Cancelling the caller drops the request if it has not run yet."""
        self.start()
        loop = asyncio.get_running_loop()
        pending = Pending(list(items), key, loop.time(), loop.create_future(), tokens)
        self._queue.put_nowait(pending)  # type: ignore[union-attr]
        return await pending.future

    async def close(self) -> None:
        """Stop the loop; requests still waiting fail with a RuntimeError."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        waiting = [*self._running, *([self._carry] if self._carry else [])]
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for p in waiting:
            if not p.future.done():
                p.future.set_exception(RuntimeError("the server is shutting down"))
        self._carry, self._running = None, []
        if self._own_executor:
            self._executor.shutdown(wait=False)

    def _live(self, pending: Pending) -> bool:
        """Whether a queued request still wants its results; one whose caller was cancelled is
        counted as dropped and never runs."""
        if pending.future.done():
            self.stats.dropped += 1
            return False
        return True

    def _fits(self, size: int, tokens: int, nxt: Pending) -> bool:
        """Whether ``nxt`` joins a batch of ``size`` items and ``tokens`` tokens."""
        if size + len(nxt.items) > self.max_batch_size:
            return False
        return self.max_batch_tokens is None or tokens + nxt.tokens <= self.max_batch_tokens

    async def _next_batch(self) -> list[Pending]:
        """The oldest waiting request plus those that follow it within the size and time limits."""
        assert self._queue is not None
        first, self._carry = self._carry, None
        while first is None or not self._live(first):
            first = await self._queue.get()
        batch, size, tokens = [first], len(first.items), first.tokens
        loop = asyncio.get_running_loop()
        deadline = first.arrived + self.max_wait_s
        while size < self.max_batch_size and (self.max_batch_tokens is None or tokens < self.max_batch_tokens):
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    async with asyncio.timeout(timeout):  # Queue.get removes the item only once it returns
                        nxt = await self._queue.get()
                except TimeoutError:
                    break
            if not self._live(nxt):
                continue
            if not self._fits(size, tokens, nxt):
                self._carry = nxt
                break
            batch.append(nxt)
            size += len(nxt.items)
            tokens += nxt.tokens
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [p for p in await self._next_batch() if self._live(p)]  # cancelled while the batch formed: dropped
            if not batch:
                continue
            self.stats.batches += 1
            self.stats.requests += len(batch)
            self.stats.items += sum(len(p.items) for p in batch)
            started = time.perf_counter()
            self._running = batch
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, run_batch, self.fn, [(p.items, p.key) for p in batch], self.stats)
            except Exception as e:  # noqa: BLE001 - e.g. the executor was shut down: fail this batch, keep serving
                outcomes = [Outcome(error=e) for _ in batch]
            self._running = []
            logger.debug("%s: batch of %d requests (%d items) in %.1f ms", self.name, len(batch),
                         sum(len(p.items) for p in batch), 1000 * (time.perf_counter() - started))
            for p, out in zip(batch, outcomes):
                if p.future.done():  # the client went away meanwhile
                    continue
                if out.error is not None:
                    p.future.set_exception(out.error)
                else:
                    p.future.set_result(out.results)


__all__ = ["MicroBatcher", "BatcherStats", "Outcome", "Pending", "run_batch"]
