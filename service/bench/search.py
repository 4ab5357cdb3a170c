"""``facerec bench search``: gallery search latency and memory on random unit vectors.

Uses the gallery's own index (:class:`~service.gallery.index.TemplateIndex`: FAISS flat inner
product), so the figures are what ``/identify`` pays for the search step.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.gallery.index import TemplateIndex


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _unit(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def bench_search(
    gallery_size: int,
    queries: int,
    k: int,
    batch_sizes: Sequence[int],
    dim: int = 512,
    seed: int = 0,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rss_before = _rss_mb()
    index = TemplateIndex(dim)
    started = time.perf_counter()
    chunk = 100_000
    for start in range(0, gallery_size, chunk):
        n = min(chunk, gallery_size - start)
        index.upsert(np.arange(start, start + n), _unit(n, dim, rng))
    build_s = time.perf_counter() - started
    rss_after = _rss_mb()
    probes = _unit(queries, dim, rng)
    rows = []
    for batch in batch_sizes:
        times = []
        for start in range(0, queries, batch):
            q = probes[start : start + batch]
            if len(q) < batch:
                break
            t0 = time.perf_counter()
            index.search(q, k)
            times.append(time.perf_counter() - t0)
        if not times:
            continue
        arr = np.array(times) * 1000
        rows.append(
            {
                "batch": batch,
                "calls": len(times),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "per_query_ms": round(float(np.median(arr)) / batch, 4),
                "queries_per_s": round(batch / (float(np.median(arr)) / 1000), 1),
            }
        )
    return {
        "gallery": gallery_size,
        "dim": dim,
        "k": k,
        "index": "FAISS IndexIDMap2(IndexFlatIP), float32, exact",
        "device": "gpu" if index.on_gpu else "cpu",
        "build_s": round(build_s, 2),
        "index_mb": round(gallery_size * dim * 4 / 2**20, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_build_mb": round(rss_after, 1),
        "latency": rows,
    }
