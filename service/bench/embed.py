"""``facerec bench embed``: faces/s and latency of the recognizer per runtime, precision, batch.

Every runtime is measured the way the service calls it: RGB uint8 crops in, L2-normalised
embeddings out (:meth:`Embedder.embed`), so host↔device copies and preprocessing are counted.
The same network runs everywhere: the pack's ONNX file on ONNX Runtime and TensorRT, and on
PyTorch the backbone it was exported from (its checkpoint, or its seed when untrained).

Each row also gives the lowest cosine between that runtime's embeddings and ONNX Runtime
CPU fp32's on one fixed batch of crops (the reference), so a fast runtime that computes
something else shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.inference.embedder import Embedder

RUNTIMES = ("onnxruntime-cpu", "openvino-cpu", "onnxruntime-cuda", "torch-cuda", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Case:
    runtime: str
    precision: str


def gpu_memory_used_mb() -> float | None:
    """Memory in use on GPU 0 as the driver reports it (all processes), or None."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        used = float(pynvml.nvmlDeviceGetMemoryInfo(handle).used) / 2**20
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None
    return round(used, 1)


def _unavailable(case: Case, cuda_graphs: bool) -> str | None:
    """Why ``case`` cannot run on this machine, or None."""
    import importlib.util

    import onnxruntime as ort

    if case.runtime == "onnxruntime-cpu" and case.precision != "fp32":
        return "ONNX Runtime CPU runs the fp32 model only"
    if case.runtime == "openvino-cpu":
        if importlib.util.find_spec("openvino") is None:
            return "OpenVINO is not installed (pip install 'facerec[openvino]')"
        if case.precision == "int8":
            return "OpenVINO runs INT8 from a Q/DQ model: bench a pack built on one"
    if case.runtime == "onnxruntime-cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "no CUDA provider in ONNX Runtime (install onnxruntime-gpu)"
        if case.precision != "fp32":
            return "ONNX Runtime CUDA runs the fp32 model (TF32 on Ampere and later)"
    if case.runtime == "torch-cuda":
        if importlib.util.find_spec("torch") is None:
            return "PyTorch is not installed"
        import torch

        if not torch.cuda.is_available():
            return "PyTorch sees no CUDA GPU"
        if case.precision == "int8":
            return "the PyTorch runtime runs fp32 and fp16; int8 is TensorRT's"
    if case.runtime == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed"
    return None


def _embedder(
    case: Case,
    pack: Any,
    max_batch: int,
    cuda_graphs: bool,
    cache: Path,
    lanes: int = 1,
    compile_model: bool = False,
) -> Embedder:
    from service.models.loading import build_embedder

    runtime = {
        "onnxruntime-cpu": "onnxruntime",
        "openvino-cpu": "openvino",
        "onnxruntime-cuda": "onnxruntime",
        "torch-cuda": "torch",
        "tensorrt": "tensorrt",
    }[case.runtime]
    device = "cpu" if case.runtime.endswith("-cpu") else "cuda:0"
    return build_embedder(
        pack,
        device,
        max_batch=max_batch,
        runtime=runtime,
        engine_cache=cache,
        precision=case.precision,
        cuda_graphs=cuda_graphs,
        lanes=lanes,
        compile_model=compile_model,
    )


def _crops(n: int, size: tuple[int, int], seed: int) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    # smooth random images: closer to faces' statistics than white noise
    small = rng.integers(0, 256, (n, size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(small.repeat(8, axis=1).repeat(8, axis=2))


def _time(fn: Callable[[], object], seconds: float, min_calls: int = 5) -> list[float]:
    for _ in range(2):
        fn()  # warm up: first calls pick kernels and fill caches
    times: list[float] = []
    budget_end = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < budget_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _measure(
    embedder: Embedder,
    case: Case,
    batch: int,
    size: tuple[int, int],
    seconds: float,
    streams: int,
) -> dict[str, Any]:
    crops = _crops(batch, size, seed=batch)

    def call() -> object:
        return embedder.embed(crops)

    times = _time(call, seconds)
    median = float(np.median(times))
    row: dict[str, Any] = {
        "runtime": case.runtime,
        "precision": case.precision,
        "batch": batch,
        "calls": len(times),
        "p50_ms": round(median * 1000, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1000, 3),
        "faces_per_s": round(batch / median, 1),
    }
    if streams > 1:
        row[f"faces_per_s_{streams}_streams"] = round(
            _concurrent_rate(call, batch, streams, seconds), 1
        )
    return row


def _concurrent_rate(
    embed: Callable[[], object], batch: int, streams: int, seconds: float
) -> float:
    """Faces/s with ``streams`` threads calling at once (the batcher's workers)."""
    done = [0] * streams
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            embed()
            done[i] += batch

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


def bench_embed(
    pack_dir: Path,
    runtimes: Sequence[str],
    precisions: Sequence[str],
    batch_sizes: Sequence[int],
    *,
    seconds: float = 1.0,
    streams: int = 1,
    cuda_graphs: bool = True,
    engine_cache: Path = Path("data/engines"),
    compile_model: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    from service.models.packs import load_pack

    pack = load_pack(pack_dir)
    meta = pack.recognizer_metadata()
    size = (meta.input_width, meta.input_height)
    probe = _crops(8, size, seed=1)
    reference = _embedder(Case("onnxruntime-cpu", "fp32"), pack, 8, False, engine_cache)
    expected = reference.embed(probe)
    max_batch = max(batch_sizes)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for runtime in runtimes:
        for precision in precisions:
            case = Case(runtime, precision)
            why = _unavailable(case, cuda_graphs)
            if why is not None:
                skipped.append({"runtime": runtime, "precision": precision, "reason": why})
                continue
            memory_before = gpu_memory_used_mb()
            embedder = _embedder(
                case, pack, max_batch, cuda_graphs, engine_cache, streams, compile_model
            )
            cosine = float(np.min(np.sum(embedder.embed(probe) * expected, axis=1)))
            case_rows = [
                _measure(embedder, case, batch, size, seconds, streams) for batch in batch_sizes
            ]
            memory = getattr(embedder.runtime, "memory", None)
            used_after = gpu_memory_used_mb()
            for row in case_rows:
                row["min_cosine_vs_cpu_fp32"] = round(cosine, 5)
                if memory is not None:
                    row["torch_memory"] = memory()
                if memory_before is not None and used_after is not None:
                    row["gpu_memory_delta_mb"] = round(used_after - memory_before, 1)
                progress(
                    f"{runtime:<17}{precision:<6}{row['batch']:>5}{row['p50_ms']:>10.2f}"
                    f"{row['faces_per_s']:>11.1f}"
                )
            rows.extend(case_rows)
    return {
        "pack": str(pack_dir),
        "arch": meta.arch,
        "untrained": meta.random_init,
        "seconds_per_point": seconds,
        "streams": streams,
        "cuda_graphs": cuda_graphs,
        "torch_compile": compile_model,
        "rows": rows,
        "skipped": skipped,
    }


def plot_embed(result: dict[str, Any], out: Path) -> None:
    """Faces/s against batch size, one line per runtime and precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in result["rows"]:
        series.setdefault((row["runtime"], row["precision"]), []).append(
            (row["batch"], row["faces_per_s"])
        )
    for (runtime, precision), points in sorted(series.items()):
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", label=f"{runtime} {precision}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("faces/s (embedding, crops in → unit vectors out)")
    gpus = result.get("machine", {}).get("gpus") or []
    where = gpus[0].split(",")[0] if gpus else result.get("machine", {}).get("cpu", "")
    ax.set_title(f"{result['arch']} recognizer on {where}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
