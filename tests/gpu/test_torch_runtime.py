"""The PyTorch CUDA runtime and GPU search, on a machine with a CUDA GPU (skipped elsewhere).

Checks the fast path against the plain one: CUDA graphs per bucket against eager PyTorch,
fp16 against fp32 (cosine ≥ 0.999, the TensorRT fp16 bar), every batch size up to and past
``max_batch`` (padding and chunking), concurrent callers on separate lanes, and exact GPU
search against FAISS.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("PyTorch sees no CUDA GPU", allow_module_level=True)

from model_export.onnx_export import random_backbone  # noqa: E402
from service.gallery.index import TemplateIndex  # noqa: E402
from service.gallery.torch_search import TorchFlatSearch  # noqa: E402
from service.inference.embedder import l2_normalise  # noqa: E402
from service.inference.torch_runtime import TorchRuntime  # noqa: E402


def _crops(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def runtimes() -> dict[str, TorchRuntime]:
    def make(precision: str, graphs: bool) -> TorchRuntime:
        return TorchRuntime(
            random_backbone("r18", 0), "cuda", precision, 16, cuda_graphs=graphs, lanes=2
        )

    return {
        "fp32-eager": make("fp32", False),
        "fp32-graphs": make("fp32", True),
        "fp16-graphs": make("fp16", True),
    }


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(l2_normalise(a) * l2_normalise(b), axis=1)


@pytest.mark.parametrize("n", [1, 3, 8, 13, 16, 17, 40])
def test_graphs_match_eager_at_every_batch_size(runtimes: dict[str, TorchRuntime], n: int) -> None:
    crops = _crops(n, seed=n)
    eager = runtimes["fp32-eager"].run_crops(crops)
    graphs = runtimes["fp32-graphs"].run_crops(crops)
    assert graphs.shape == (n, 512)
    assert _cos(eager, graphs).min() > 0.9999


def test_fp16_is_within_the_fp16_bar_of_fp32(runtimes: dict[str, TorchRuntime]) -> None:
    crops = _crops(32, seed=1)
    cos = _cos(runtimes["fp32-eager"].run_crops(crops), runtimes["fp16-graphs"].run_crops(crops))
    assert cos.min() >= 0.999


def test_concurrent_callers_get_their_own_results(runtimes: dict[str, TorchRuntime]) -> None:
    runtime = runtimes["fp16-graphs"]
    batches = [_crops(5 + i, seed=100 + i) for i in range(8)]
    expected = [runtime.run_crops(b) for b in batches]
    got: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        for _ in range(5):
            got[i] = runtime.run_crops(batches[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        assert _cos(got[i], want).min() > 0.9999


def test_gpu_search_finds_what_faiss_finds() -> None:
    rng = np.random.default_rng(0)
    gallery = l2_normalise(rng.standard_normal((5000, 64)).astype(np.float32))
    probes = l2_normalise(gallery[:50] + 0.5 * rng.standard_normal((50, 64)).astype(np.float32))
    faiss_index = TemplateIndex(64)
    faiss_index.upsert(np.arange(5000), gallery)
    want_scores, want_ids = faiss_index.search(probes, 5)
    for precision in ("fp32", "fp16"):
        gpu = TorchFlatSearch(64, "cuda", precision, slice_rows=1500)  # several slices merged
        gpu.add(gallery[:2000])
        gpu.add(gallery[2000:])
        scores, ids = gpu.search(probes, 5)
        assert (ids[:, 0] == want_ids[:, 0]).all()
        np.testing.assert_allclose(scores, want_scores, atol=2e-3 if precision == "fp16" else 1e-5)


def test_gallery_index_on_the_gpu_tracks_updates_like_the_cpu_one() -> None:
    rng = np.random.default_rng(1)
    dim = 32
    cpu, gpu = TemplateIndex(dim, compact_every=7), TemplateIndex(dim, 7, device="cuda")
    assert gpu.on_gpu
    for step in range(20):  # upserts, replacements and removals, with compactions between
        seqs = rng.choice(200, size=10, replace=False)
        vectors = l2_normalise(rng.standard_normal((10, dim)).astype(np.float32))
        removed = rng.choice(200, size=3, replace=False) if step % 3 else []
        for index in (cpu, gpu):
            index.upsert(seqs, vectors)
            index.remove(removed)
    rng_probe = l2_normalise(np.random.default_rng(2).standard_normal((16, dim)).astype(np.float32))
    want_scores, want_seqs = cpu.search(rng_probe, 5)
    scores, seqs = gpu.search(rng_probe, 5)
    assert len(gpu) == len(cpu)
    np.testing.assert_array_equal(seqs, want_seqs)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
