"""Cross-request micro-batching: many concurrent callers, few model calls.

Each model gets one :class:`MicroBatcher`. Callers ``await submit(item)``; a worker task takes
the first waiting item, gathers more until ``max_batch`` items or ``max_wait_ms`` have
passed, and runs the model once on the lot in a thread (off the event loop). Every item has
its own future, so one caller's failure is its own: when a batch raises, its items are run
again one by one and only the item that still fails gets the error. The queue is bounded:
when it is full, ``submit`` raises :class:`~service.errors.Overloaded` at once rather than
letting latency grow without limit. A pipeline checks every stage's room with ``admit``
before it starts a request, and then queues the request's later items as ``admitted``: a
request is refused before any model work is done for it, never halfway through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service.errors import Overloaded

__all__ = ["BatchStats", "MicroBatcher"]

In = TypeVar("In")
Out = TypeVar("Out")

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters for tests and metrics."""

    calls: int = 0
    items: int = 0
    batch_sizes: list[int] = field(default_factory=list)


@dataclass
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


class MicroBatcher(Generic[In, Out]):
    """Batch ``fn(list[In]) -> Sequence[Out]`` across concurrent ``submit`` calls."""

    def __init__(
        self,
        name: str,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
        workers: int = 1,
        executor: Executor | None = None,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or workers < 1:
            raise ValueError("max_batch, max_queue and workers must be at least 1")
        self.name = name
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._workers = workers
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[In, Out]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = BatchStats()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        if self._tasks:
            return
        self._queue = asyncio.Queue()  # bounded by ``admit``: see ``submit``
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name}-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        """Finish what is queued, then stop the workers."""
        if self._queue is not None:
            await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._own_executor:
            self._executor.shutdown(wait=True)

    async def submit(self, item: In, admitted: bool = False) -> Out:
        """The model's output for ``item``; raises ``Overloaded`` when the queue is full.

        ``admitted``: the item belongs to a request that was let in earlier and already has
        model work done for it (its faces were detected): it is queued even over the bound
        rather than wasting that work. The entrance check (``admit`` on every stage a request
        will reach) keeps such overflow bounded."""
        if self._queue is None:
            raise RuntimeError(f"batcher {self.name} is not started")
        if not admitted:
            self.admit()
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, future))
        return await future

    def admit(self, count: int = 1) -> None:
        """Raise ``Overloaded`` now unless ``count`` more items fit in the queue.

        Callers check before costly work (reading and decoding an image), so that under
        overload a request is refused in microseconds instead of after doing work for
        nothing. ``submit`` checks again: this is an early answer, not a reservation."""
        if self._queue is not None and self.queue_depth + count > self.max_queue:
            raise Overloaded(
                f"{self.name} queue is full ({self.queue_depth} of {self.max_queue} items "
                f"waiting, {count} more asked); retry shortly"
            )

    async def submit_many(self, items: Sequence[In], admitted: bool = False) -> list[Out]:
        """Submit several items (e.g. all faces of one image); fails if any fails."""
        if not admitted:
            self.admit(len(items))
        return list(await asyncio.gather(*(self.submit(i, admitted=True) for i in items)))

    async def _gather(self) -> list[_Pending[In, Out]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            live = [p for p in batch if not p.future.done()]  # callers that gave up are skipped
            try:
                if live:
                    await self._run(loop, live)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[In, Out]]) -> None:
        items = [p.item for p in batch]
        started = time.perf_counter()
        try:
            outputs = await loop.run_in_executor(self._executor, self._call, items)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
                return
            log.warning(
                "%s: a batch of %d failed (%s); retrying one by one", self.name, len(batch), exc
            )
            for pending in batch:
                await self._run(loop, [pending])
            return
        self._record(len(batch), time.perf_counter() - started)
        for pending, output in zip(batch, outputs, strict=True):
            _settle(pending.future, result=output)

    def _call(self, items: list[In]) -> Sequence[Out]:
        outputs = self._fn(items)
        if len(outputs) != len(items):
            raise RuntimeError(f"{self.name}: {len(items)} items in, {len(outputs)} results out")
        return outputs

    def _record(self, size: int, seconds: float) -> None:
        self.stats.calls += 1
        self.stats.items += size
        if len(self.stats.batch_sizes) < 100_000:
            self.stats.batch_sizes.append(size)
        if self._on_batch is not None:
            self._on_batch(size, seconds)


def _settle(
    future: asyncio.Future[Out], result: Out | None = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
