"""Gallery searches batched across concurrent requests.

A flat scan of the gallery is memory-bound: one pass answers 8–16 queries for about the cost
of one, so the searches of concurrent ``/identify`` requests are gathered by a
:class:`~service.inference.batcher.MicroBatcher` (at most 16 queries, 1 ms) and run off the
event loop. Each query carries the gallery it searches; the queries of one batch that share
a gallery are answered by one call to its ``search``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.gallery.types import Gallery, Match
from service.inference.batcher import MicroBatcher
from service.recognition.pipeline import BatchObserver

__all__ = ["SEARCH_K", "GallerySearch"]

SEARCH_K = 100  # the largest top_k a request may ask for
Query = tuple[Gallery, npt.NDArray[np.float32]]


def _search_batch(queries: list[Query]) -> list[list[Match]]:
    """Each query's SEARCH_K best matches, one ``search`` call per gallery in the batch."""
    found: list[list[Match]] = [[] for _ in queries]
    by_gallery: dict[int, list[int]] = {}
    for i, (gallery, _) in enumerate(queries):
        by_gallery.setdefault(id(gallery), []).append(i)
    for rows in by_gallery.values():
        gallery = queries[rows[0]][0]
        results = gallery.search(np.stack([queries[i][1] for i in rows]), SEARCH_K)
        for i, matches in zip(rows, results, strict=True):
            found[i] = matches
    return found


class GallerySearch:
    """The search leg of identification: ``search(gallery, embeddings, k)``, batched."""

    def __init__(
        self,
        *,
        max_queue: int,
        max_batch: int = 16,  # a flat scan is memory-bound: 8–16 queries per pass
        max_wait_ms: float = 1.0,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.batcher: MicroBatcher[Query, list[Match]] = MicroBatcher(
            "search",
            _search_batch,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            on_batch=on_batch,
        )

    @property
    def queue_depth(self) -> int:
        return self.batcher.queue_depth

    def admit(self) -> None:
        """Raise ``Overloaded`` now if the search queue is full (before any work)."""
        self.batcher.admit()

    async def start(self) -> None:
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    async def search(
        self, gallery: Gallery, embeddings: Sequence[npt.NDArray[np.float32]], k: int
    ) -> list[list[Match]]:
        """The ``k`` best matches in ``gallery`` of each embedding, most similar first.

        Queued even over the queue's bound: the request was admitted (``admit``) and its
        faces already detected and embedded."""
        if not embeddings:
            return []
        results = await self.batcher.submit_many([(gallery, e) for e in embeddings], admitted=True)
        return [r[:k] for r in results]
