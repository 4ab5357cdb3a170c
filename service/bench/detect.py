"""``facerec bench detect``: images/s of the packs' detectors by input size and batch.

Each pack's detector (YuNet, SCRFD or MTCNN, at the pack's threshold and with its landmark
stage) runs on photos resized to each size, ``batch`` images per ``detect`` call, as the
detect batcher calls it. With several packs the points alternate between them (so that load
from other processes falls on all), and each row carries its images/s relative to the first
pack's at the same size and batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.vision.detectors.base import Detector, RGBImage


def _resized(image: RGBImage, size: tuple[int, int]) -> RGBImage:
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def bench_detect(
    pack_dirs: Path | Sequence[Path],
    images: Sequence[RGBImage],
    sizes: Sequence[tuple[int, int]],
    batch_sizes: Sequence[int],
    *,
    device: str = "cpu",
    seconds: float = 1.0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    from service.models.loading import build_detector
    from service.models.packs import load_pack
    from service.vision.detectors.base import DetectorConfig

    dirs = [pack_dirs] if isinstance(pack_dirs, Path) else list(pack_dirs)
    packs = [load_pack(d) for d in dirs]
    detectors = [build_detector(p, DetectorConfig(), device) for p in packs]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        scaled = [_resized(img, size) for img in images]
        for batch in batch_sizes:
            first: float | None = None
            for pack_dir, detector in zip(dirs, detectors, strict=True):
                row = _point(detector, scaled, size, batch, seconds)
                row = {"pack": str(pack_dir), "detector": detector.name, **row}
                first = first or row["images_per_s"]
                row["vs_first_pack"] = round(row["images_per_s"] / first, 2) if first else None
                rows.append(row)
                progress(
                    f"{detector.name:<12}{size[0]:>5}×{size[1]:<5}{batch:>6}{row['p50_ms']:>10.2f}"
                    f"{row['images_per_s']:>11.2f}{row['faces_per_call']:>7}"
                    f"{row['vs_first_pack']:>8.2f}x"
                )
    return {
        "pack": str(dirs[0]),
        "packs": [str(d) for d in dirs],
        "detector": packs[0].manifest.detector.kind,
        "detectors": [d.name for d in detectors],
        "device": device,
        "rows": rows,
    }


def _point(
    detector: Detector, scaled: list[RGBImage], size: tuple[int, int], batch: int, seconds: float
) -> dict[str, Any]:
    """One size and batch: the median time of ``detect`` calls over ``seconds`` (≥ 3 calls)."""
    lot = [scaled[i % len(scaled)] for i in range(batch)]
    detector.detect(lot)  # warm up
    times: list[float] = []
    faces = 0
    end = time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < end:
        t0 = time.perf_counter()
        found = detector.detect(lot)
        times.append(time.perf_counter() - t0)
        faces = sum(len(f) for f in found)
    median = float(np.median(times))
    return {
        "width": size[0],
        "height": size[1],
        "batch": batch,
        "calls": len(times),
        "p50_ms": round(median * 1000, 2),
        "images_per_s": round(batch / median, 2),
        "faces_per_call": faces,
    }
