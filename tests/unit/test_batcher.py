"""The micro-batcher: fewer calls than requests, isolated failures, bounded queue."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.errors import Overloaded
from service.inference.batcher import MicroBatcher


def _doubler(calls: list[list[int]]) -> object:
    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.005)  # a model call takes time; requests pile up meanwhile
        return [2 * i for i in items]

    return fn


async def test_concurrent_requests_share_model_calls() -> None:
    calls: list[list[int]] = []
    batcher: MicroBatcher[int, int] = MicroBatcher(
        "t", _doubler(calls), max_batch=16, max_wait_ms=5
    )  # type: ignore[arg-type]
    await batcher.start()
    results = await asyncio.gather(*(batcher.submit(i) for i in range(32)))
    await batcher.stop()
    assert results == [2 * i for i in range(32)]
    assert len(calls) < 32
    assert max(len(c) for c in calls) <= 16
    assert batcher.stats.items == 32 and batcher.stats.calls == len(calls)


async def test_one_bad_item_fails_only_its_own_request() -> None:
    def fn(items: list[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i + 1 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher("t", fn, max_batch=8, max_wait_ms=20)
    await batcher.start()
    results = await asyncio.gather(
        *(batcher.submit(i) for i in [1, 2, -1, 3]), return_exceptions=True
    )
    await batcher.stop()
    assert results[:2] == [2, 3] and results[3] == 4
    assert isinstance(results[2], ValueError)


async def test_full_queue_is_refused_at_once() -> None:
    release = threading.Event()

    def slow(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(
        "t", slow, max_batch=1, max_queue=2, max_wait_ms=0
    )
    await batcher.start()
    first = asyncio.create_task(batcher.submit(0))  # taken by the worker, blocks in the model
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(Overloaded):
        await batcher.submit(3)
    assert time.perf_counter() - started < 0.1
    with pytest.raises(Overloaded, match="queue is full"):
        batcher.admit()  # the early check callers make before decoding
    release.set()
    assert await first == 0 and [await q for q in queued] == [1, 2]
    # the queue drained: new work is accepted again
    batcher.admit(2)
    with pytest.raises(Overloaded):
        batcher.admit(3)  # more items than the queue holds at all
    assert await batcher.submit(4) == 4
    await batcher.stop()


async def test_wrong_output_count_is_an_error_not_a_mixup() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(
        "t", lambda items: items[:-1] or [0], max_batch=4
    )
    await batcher.start()
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    await batcher.stop()
    # retried one by one: single items return one output each
    assert results == [0, 0, 0]


async def test_submit_before_start_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher("t", lambda items: items)
    with pytest.raises(RuntimeError, match="not started"):
        await batcher.submit(1)


async def test_items_of_an_admitted_request_are_queued_past_the_bound() -> None:
    """A request let in earlier (its faces already detected) is not refused halfway."""
    release = threading.Event()

    def slow(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(
        "t", slow, max_batch=1, max_queue=1, max_wait_ms=0
    )
    await batcher.start()
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded):
        await batcher.submit_many([2, 3])
    admitted = asyncio.create_task(batcher.submit_many([2, 3], admitted=True))
    await asyncio.sleep(0.01)
    assert batcher.queue_depth == 3  # over the bound of 1, by the admitted request's items
    release.set()
    assert [await first, await queued, await admitted] == [0, 1, [2, 3]]
    await batcher.stop()
