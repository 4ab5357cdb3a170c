"""``facerec bench embed --profile``: where the PyTorch CUDA runtime's time goes.

At one batch size: the whole :meth:`Embedder.embed` call, the runtime alone (copies + graph),
the graph replay alone (GPU compute only), the top GPU kernels from PyTorch's profiler, and
``torch.compile`` of the same (BatchNorm-folded) network against eager for comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from service.inference.embedder import Embedder


def _median_ms(fn: Callable[[], object], sync: Callable[[], None], calls: int = 20) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 3)


def profile_torch(embedder: Embedder, batch: int, table_out: Path) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    runtime: Any = embedder.runtime
    crops = np.random.default_rng(0).integers(0, 256, (batch, 112, 112, 3), dtype=np.uint8)
    sync = torch.cuda.synchronize
    lane = runtime._lanes.get()
    runtime._lanes.put(lane)
    bucket = runtime._bucket(batch)
    result: dict[str, Any] = {"batch": batch, "precision": runtime.precision}
    result["embed_ms"] = _median_ms(lambda: embedder.embed(crops), sync)
    result["runtime_ms"] = _median_ms(lambda: runtime.run_crops(crops), sync)
    if bucket in lane.graphs:
        result["graph_replay_ms"] = _median_ms(lane.graphs[bucket].replay, sync)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            embedder.embed(crops)
        sync()
    averages = prof.key_averages()
    for key in ("self_device_time_total", "self_cuda_time_total"):
        try:
            table = averages.table(sort_by=key, row_limit=25)
            break
        except (AttributeError, KeyError, ValueError):
            continue
    table_out.parent.mkdir(parents=True, exist_ok=True)
    table_out.write_text(table)
    x = torch.zeros((bucket, 3, 112, 112), device=runtime._device, dtype=runtime._dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    model = runtime._model
    with torch.inference_mode():
        result["eager_forward_ms"] = _median_ms(lambda: model(x), sync)
        try:
            started = time.perf_counter()
            compiled: Any = torch.compile(model, dynamic=False)
            compiled(x)
            sync()
            result["compile_s"] = round(time.perf_counter() - started, 1)
            result["compiled_forward_ms"] = _median_ms(lambda: compiled(x), sync)
        except Exception as exc:  # an experiment: report why it did not run
            result["compile_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return result
