"""``facerec bench search``: gallery search latency, memory and recall, per search backend.

Backends:

- ``faiss-flat``: the gallery's own index (:class:`~service.gallery.index.TemplateIndex`,
  FAISS flat inner product, fp32, exact) — what ``/identify`` pays for the search step today.
- ``torch-fp32`` / ``torch-fp16``: exact search as one matrix product on a GPU
  (:class:`~service.gallery.torch_search.TorchFlatSearch`), where faiss-gpu is absent.
- ``milvus-flat`` / ``milvus-ivf``: a Milvus collection shaped like the Milvus gallery's
  templates (int64 id + vector, inner product), FLAT (exact) or IVF_FLAT (``nprobe`` lists),
  on Milvus Lite in a temporary folder, or on the server at ``milvus_uri``.
- ``faiss-ivf``: an approximate FAISS index (IVF, fp16 scalar-quantised lists, ``nprobe``
  lists searched), to show what approximation buys and costs.

Gallery: random unit vectors. Probes: noisy copies of gallery members (cosine ≈ 0.6 to their
mate, as a new photo of an enrolled person), so the top-k has structure and recall means
something. Recall@1 is against exact fp32 search of the same probes; beyond the mate, random
galleries have no real neighbours, so deeper recall would measure noise.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from service.gallery.index import TemplateIndex

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
BACKENDS = ("faiss-flat", "torch-fp32", "torch-fp16", "faiss-ivf", "milvus-flat", "milvus-ivf")
_CHUNK = 250_000


class _Searcher(Protocol):
    def search(self, queries: F32, k: int) -> tuple[F32, I64]: ...


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _unit(x: F32) -> F32:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _gallery_chunks(n: int, dim: int, seed: int) -> Iterator[tuple[int, F32]]:
    rng = np.random.default_rng(seed)
    for start in range(0, n, _CHUNK):
        size = min(_CHUNK, n - start)
        yield start, _unit(rng.standard_normal((size, dim), dtype=np.float32))


def _probes(n: int, dim: int, queries: int, seed: int) -> tuple[F32, I64]:
    """Noisy copies of ``queries`` gallery members and those members' ids."""
    rng = np.random.default_rng(seed + 1)
    mates = np.sort(rng.choice(n, size=queries, replace=False)).astype(np.int64)
    rows = np.empty((queries, dim), np.float32)
    for start, chunk in _gallery_chunks(n, dim, seed):
        inside = (mates >= start) & (mates < start + len(chunk))
        rows[inside] = chunk[mates[inside] - start]
    noise = _unit(rng.standard_normal((queries, dim), dtype=np.float32))
    probes = _unit(0.6 * rows + 0.8 * noise)
    order = rng.permutation(queries)
    return probes[order], mates[order]


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def unavailable(backend: str) -> str | None:
    if backend.startswith("torch-") and not _torch_cuda():
        return "needs PyTorch with a CUDA GPU"
    if backend.startswith("milvus-"):
        import importlib.util

        if importlib.util.find_spec("pymilvus") is None:
            return "needs pymilvus (pip install -e '.[milvus]')"
    if backend not in BACKENDS:
        return f"unknown backend (choose from {', '.join(BACKENDS)})"
    return None


class _FaissIVF:
    def __init__(self, dim: int, n: int, nprobe: int, train: F32) -> None:
        import faiss

        nlist = int(max(16, min(65536, 4 * np.sqrt(n))))
        self.description = f"IVF{nlist},SQfp16 nprobe={nprobe}"
        self._index: Any = faiss.index_factory(
            dim, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT
        )
        self._index.train(train[: max(nlist * 39, 1)])
        faiss.extract_index_ivf(self._index).nprobe = nprobe

    def add(self, start: int, x: F32) -> None:
        self._index.add(x)

    def search(self, queries: F32, k: int) -> tuple[F32, I64]:
        s, i = self._index.search(queries, k)
        return s, i


class _Milvus:
    def __init__(self, uri: str, dim: int, n: int, index: str, nprobe: int) -> None:
        from pymilvus import DataType, MilvusClient

        self._client = MilvusClient(uri=uri)
        self._name = f"bench_{index.lower()}"
        if self._client.has_collection(self._name):
            self._client.drop_collection(self._name)
        schema = self._client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        params = self._client.prepare_index_params()
        nlist = int(max(16, min(65536, 4 * np.sqrt(n))))
        extra = {"nlist": nlist} if index == "IVF_FLAT" else {}
        params.add_index(field_name="vector", index_type=index, metric_type="IP", params=extra)
        self._client.create_collection(
            self._name, schema=schema, index_params=params, consistency_level="Strong"
        )
        self._search = {"metric_type": "IP", "params": {"nprobe": nprobe} if extra else {}}
        self.description = f"Milvus {index}" + (f" nlist={nlist} nprobe={nprobe}" if extra else "")

    def add(self, start: int, x: F32) -> None:
        step = 20_000
        for i in range(0, len(x), step):
            rows = [
                {"id": start + i + j, "vector": v} for j, v in enumerate(x[i : i + step].tolist())
            ]
            self._client.insert(self._name, rows)

    def ready(self) -> None:
        self._client.flush(self._name)
        self._client.load_collection(self._name)

    def search(self, queries: F32, k: int) -> tuple[F32, I64]:
        hits = self._client.search(
            self._name, data=queries.tolist(), limit=k, search_params=self._search
        )
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, ids

    def close(self) -> None:
        self._client.drop_collection(self._name)
        self._client.close()


def _build(
    backend: str, n: int, dim: int, seed: int, nprobe: int, milvus_uri: str = ""
) -> tuple[_Searcher, str, float]:
    """The index of ``backend`` over the gallery, its description, and its vectors' MB."""
    if backend == "faiss-flat":
        flat = TemplateIndex(dim)
        for start, chunk in _gallery_chunks(n, dim, seed):
            flat.upsert(np.arange(start, start + len(chunk)), chunk)
        where = "GPU" if flat.on_gpu else "CPU"
        return flat, f"FAISS IndexIDMap2(IndexFlatIP) fp32 exact, {where}", n * dim * 4 / 2**20
    if backend.startswith("torch-"):
        from service.gallery.torch_search import TorchFlatSearch

        precision = backend.split("-", 1)[1]
        gpu = TorchFlatSearch(dim, "cuda", precision)
        for _, chunk in _gallery_chunks(n, dim, seed):
            gpu.add(chunk)
        return gpu, f"PyTorch matmul + top-k, {precision}, exact, GPU", gpu.memory_mb()
    if backend.startswith("milvus-"):
        import tempfile

        uri = milvus_uri or str(Path(tempfile.mkdtemp(prefix="facerec-bench-")) / "bench.db")
        index = "FLAT" if backend == "milvus-flat" else "IVF_FLAT"
        milvus = _Milvus(uri, dim, n, index, nprobe)
        for start, chunk in _gallery_chunks(n, dim, seed):
            milvus.add(start, chunk)
        milvus.ready()
        return (
            milvus,
            f"{milvus.description}, {uri.split('://')[0] if '://' in uri else 'Lite'}",
            (n * dim * 4 / 2**20),
        )
    first = next(_gallery_chunks(n, dim, seed))[1]
    ivf = _FaissIVF(dim, n, nprobe, first)
    for start, chunk in _gallery_chunks(n, dim, seed):
        ivf.add(start, chunk)
    return ivf, f"FAISS {ivf.description}, CPU", n * dim * 2 / 2**20


def _latency(
    index: _Searcher, probes: F32, k: int, batch_sizes: Sequence[int]
) -> list[dict[str, Any]]:
    rows = []
    for batch in batch_sizes:
        if batch > len(probes):
            continue
        index.search(probes[:batch], k)  # warm up
        times = []
        for start in range(0, len(probes) - batch + 1, batch):
            t0 = time.perf_counter()
            index.search(probes[start : start + batch], k)
            times.append(time.perf_counter() - t0)
        arr = np.array(times) * 1000
        median = float(np.median(arr))
        rows.append(
            {
                "batch": batch,
                "calls": len(times),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "per_query_ms": round(median / batch, 4),
                "queries_per_s": round(batch / (median / 1000), 1),
            }
        )
    return rows


def _recall_at_1(found: I64, exact: I64) -> float:
    """Share of probes whose first result is exact search's first result."""
    return round(float(np.mean(found[:, 0] == exact[:, 0])), 4)


def bench_search(
    gallery_size: int,
    queries: int,
    k: int,
    batch_sizes: Sequence[int],
    dim: int = 512,
    seed: int = 0,
    backends: Sequence[str] = ("faiss-flat",),
    nprobe: int = 32,
    progress: Callable[[str], None] = lambda _: None,
    milvus_uri: str = "",
) -> dict[str, Any]:
    probes, mates = _probes(gallery_size, dim, queries, seed)
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    exact: I64 | None = None
    exact_first = sorted(backends, key=lambda b: b not in ("torch-fp32", "faiss-flat"))
    for backend in exact_first:
        why = unavailable(backend)
        if why is not None:
            skipped.append({"backend": backend, "reason": why})
            continue
        rss_before = _rss_mb()
        started = time.perf_counter()
        index, description, vectors_mb = _build(
            backend, gallery_size, dim, seed, nprobe, milvus_uri
        )
        build_s = time.perf_counter() - started
        _, found = index.search(probes, k)
        if exact is None and backend in ("faiss-flat", "torch-fp32"):
            exact = found
        entry: dict[str, Any] = {
            "backend": backend,
            "index": description,
            "build_s": round(build_s, 2),
            "vectors_mb": round(vectors_mb, 1),
            "rss_before_mb": round(rss_before, 1),
            "rss_after_build_mb": round(_rss_mb(), 1),
            "mate_at_1": round(float(np.mean(found[:, 0] == mates)), 4),
            "latency": _latency(index, probes, k, batch_sizes),
        }
        if exact is not None:
            entry["recall_at_1_vs_exact"] = _recall_at_1(found, exact)
        results.append(entry)
        for r in entry["latency"]:
            progress(
                f"{backend:<12}{r['batch']:>6}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}"
                f"{r['per_query_ms']:>10.4f}{r['queries_per_s']:>12.1f}"
            )
        close = getattr(index, "close", None)
        if close is not None:
            close()
        del index
    return {
        "gallery": gallery_size,
        "dim": dim,
        "k": k,
        "queries": queries,
        "probes": "noisy copies of gallery members, cosine ≈ 0.6 to their mate",
        "backends": results,
        "skipped": skipped,
    }
