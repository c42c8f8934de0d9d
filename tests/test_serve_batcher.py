"""The micro-batcher: concurrent requests share calls, within the size and wait limits, each
getting its own results in order; a bad request fails alone."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from spanbert.serve.batcher import MicroBatcher, run_batch


class Recorder:
    """A batch function that records each call's items (and its thread) and upper-cases strings;
    an item "bad" raises ValueError, so the call that contains it fails."""

    def __init__(self, delay_s: float = 0.0):
        self.calls: list[list] = []
        self.keys: list = []
        self.threads: set[int] = set()
        self.delay_s = delay_s
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, items, key):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(list(items))
            self.keys.append(key)
            self.threads.add(threading.get_ident())
            if self.delay_s:
                time.sleep(self.delay_s)
            if "bad" in items:
                raise ValueError("bad item")
            return [f"{item.upper()}{key or ''}" for item in items]
        finally:
            with self._lock:
                self.active -= 1


def run(coro):
    return asyncio.run(coro)


async def _submit_all(batcher: MicroBatcher, requests: list[list[str]], keys=None):
    keys = keys or [None] * len(requests)
    try:
        return await asyncio.gather(*(batcher.submit(r, k) for r, k in zip(requests, keys)), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_requests_are_grouped_into_one_call_in_order():
    fn = Recorder()
    requests = [[f"r{i}a", f"r{i}b"] for i in range(10)]  # 20 items
    results = run(_submit_all(MicroBatcher(fn, max_batch_size=32, max_wait_ms=50), requests))
    assert results == [[x.upper() for x in r] for r in requests]
    assert len(fn.calls) == 1 and fn.calls[0] == [x for r in requests for x in r]


def test_batches_never_exceed_max_batch_size_and_requests_stay_whole():
    fn = Recorder()
    requests = [[f"r{i}-{j}" for j in range(3)] for i in range(10)]  # 10 requests of 3 items
    batcher = MicroBatcher(fn, max_batch_size=8, max_wait_ms=50)
    results = run(_submit_all(batcher, requests))
    assert results == [[x.upper() for x in r] for r in requests]
    assert [len(c) for c in fn.calls] == [6, 6, 6, 6, 6]  # two whole requests fit in 8 items, a third does not
    assert [x for c in fn.calls for x in c] == [x for r in requests for x in r]  # first come, first served
    assert batcher.stats.requests == 10 and batcher.stats.items == 30 and batcher.stats.batches == 5


def test_a_request_larger_than_the_batch_runs_alone():
    fn = Recorder()
    results = run(_submit_all(MicroBatcher(fn, max_batch_size=2, max_wait_ms=20), [["a", "b", "c", "d"], ["e"]]))
    assert results == [["A", "B", "C", "D"], ["E"]]
    assert fn.calls == [["a", "b", "c", "d"], ["e"]]


def test_max_batch_size_one_is_one_call_per_request():
    fn = Recorder()
    requests = [[f"x{i}"] for i in range(12)]
    results = run(_submit_all(MicroBatcher(fn, max_batch_size=1, max_wait_ms=50), requests))
    assert results == [[f"X{i}"] for i in range(12)]
    assert fn.calls == requests


def test_one_bad_request_fails_alone():
    fn = Recorder()
    requests = [["a"], ["b", "bad"], ["c", "d"]]
    batcher = MicroBatcher(fn, max_batch_size=32, max_wait_ms=50)
    results = run(_submit_all(batcher, requests))
    assert results[0] == ["A"] and results[2] == ["C", "D"]
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad item"
    # the batch call failed, then each request ran on its own
    assert fn.calls == [["a", "b", "bad", "c", "d"], ["a"], ["b", "bad"], ["c", "d"]]
    assert batcher.stats.split_batches == 1 and batcher.stats.calls == 4


def test_requests_with_different_options_never_share_a_call():
    fn = Recorder()
    results = run(_submit_all(MicroBatcher(fn, max_batch_size=32, max_wait_ms=50), [["a"], ["b"], ["c"]],
                              keys=[(("k", 1),), (("k", 2),), (("k", 1),)]))
    assert results == [["A(('k', 1),)"], ["B(('k', 2),)"], ["C(('k', 1),)"]]
    assert sorted(map(tuple, fn.calls)) == [("a", "c"), ("b",)]


def test_first_request_waits_at_most_max_wait():
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=32, max_wait_ms=150)
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.03)  # arrives within the first one's wait: joins its batch
        second = asyncio.ensure_future(batcher.submit(["b"]))
        done = await asyncio.gather(first, second)
        took = loop.time() - start
        await asyncio.sleep(0.2)  # past the wait: a batch of its own
        late = await batcher.submit(["c"])
        await batcher.close()
        return done, took, late

    done, took, late = run(main())
    assert done == [["A"], ["B"]] and late == ["C"]
    assert fn.calls == [["a", "b"], ["c"]]
    assert 0.14 <= took < 1.0  # the batch waited (about) 150 ms for more requests after the first, not longer


def test_zero_wait_takes_only_what_is_already_queued():
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=32, max_wait_ms=0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        out = await batcher.submit(["a"])
        took = loop.time() - start
        await batcher.close()
        return out, took

    out, took = run(main())
    assert out == ["A"] and took < 0.1


def test_requests_queue_while_the_model_is_busy_and_run_in_one_thread():
    """While a slow call runs, new requests queue and then share the next call; every call
    runs in the same worker thread, never two at a time."""
    fn = Recorder(delay_s=0.1)

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=32, max_wait_ms=1)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.03)  # the first call is running now
        rest = [asyncio.ensure_future(batcher.submit([f"q{i}"])) for i in range(5)]
        out = await asyncio.gather(first, *rest)
        await batcher.close()
        return out

    out = run(main())
    assert out == [["A"], *[[f"Q{i}"] for i in range(5)]]
    assert fn.calls == [["a"], [f"q{i}" for i in range(5)]]
    assert len(fn.threads) == 1 and fn.max_active == 1


def test_close_fails_waiting_requests():
    fn = Recorder(delay_s=0.1)

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=1, max_wait_ms=0)
        tasks = [asyncio.ensure_future(batcher.submit([x])) for x in "abc"]
        await asyncio.sleep(0.02)
        await batcher.close()
        return await asyncio.gather(*tasks, return_exceptions=True)

    out = run(main())
    assert any(isinstance(r, RuntimeError) and "shutting down" in str(r) for r in out)


def test_run_batch_checks_the_number_of_results():
    outcomes = run_batch(lambda items, key: items[:-1], [(["a", "b"], None)])
    assert outcomes[0].results is None and "1 results for 2 items" in str(outcomes[0].error)


@pytest.mark.parametrize("kwargs, message", [({"max_batch_size": 0}, "max_batch_size"), ({"max_wait_ms": -1}, "max_wait_ms"),
                                             ({"max_batch_tokens": 0}, "max_batch_tokens")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MicroBatcher(Recorder(), **kwargs)


def test_batches_stay_within_max_batch_tokens():
    """Requests weighing 3, 3, 5, 1 and 9 tokens under a budget of 8: [3, 3], [5, 1], [9] (alone: over the budget)."""
    fn = Recorder()
    requests, weights = [["a"], ["b"], ["c"], ["d"], ["e"]], [3, 3, 5, 1, 9]

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=32, max_wait_ms=50, max_batch_tokens=8)
        try:
            return await asyncio.gather(*(batcher.submit(r, None, w) for r, w in zip(requests, weights)))
        finally:
            await batcher.close()

    assert run(main()) == [["A"], ["B"], ["C"], ["D"], ["E"]]
    assert fn.calls == [["a", "b"], ["c", "d"], ["e"]]


def test_a_cancelled_request_never_reaches_the_model():
    """Requests queued behind a slow call whose callers are cancelled (a client gone, a timeout)
    are dropped when their turn comes; the others run."""
    fn = Recorder(delay_s=0.2)

    async def main():
        batcher = MicroBatcher(fn, max_batch_size=1, max_wait_ms=0)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)  # "a" runs
        gone = [asyncio.ensure_future(batcher.submit([x])) for x in ("gone1", "gone2")]
        kept = asyncio.ensure_future(batcher.submit(["b"]))
        await asyncio.sleep(0.01)
        for task in gone:
            task.cancel()
        out = await asyncio.gather(first, kept)
        await batcher.close()
        return out, batcher.stats

    out, stats = run(main())
    assert out == [["A"], ["B"]]
    assert fn.calls == [["a"], ["b"]] and stats.dropped == 2 and stats.requests == 2


def test_stats_add_up():
    from spanbert.serve.batcher import BatcherStats

    assert BatcherStats(1, 2, 3, 4, 5, 6) + BatcherStats(10, 20, 30, 40, 50, 60) == BatcherStats(11, 22, 33, 44, 55, 66)
