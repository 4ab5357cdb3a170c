"""``facerec bench detect``: images/s of the pack's detector by input size and batch.

The pack's detector (SCRFD where the pack holds one, else MTCNN) runs on photos resized to
each size, ``batch`` images per ``detect`` call, as the detect batcher calls it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.vision.detectors.base import RGBImage


def _resized(image: RGBImage, size: tuple[int, int]) -> RGBImage:
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def bench_detect(
    pack_dir: Path,
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

    pack = load_pack(pack_dir)
    detector = build_detector(pack, DetectorConfig(), device)
    rows = []
    for size in sizes:
        scaled = [_resized(img, size) for img in images]
        for batch in batch_sizes:
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
            row = {
                "width": size[0],
                "height": size[1],
                "batch": batch,
                "calls": len(times),
                "p50_ms": round(median * 1000, 2),
                "images_per_s": round(batch / median, 2),
                "faces_per_call": faces,
            }
            rows.append(row)
            progress(
                f"{size[0]:>5}×{size[1]:<5}{batch:>6}{row['p50_ms']:>10.2f}"
                f"{row['images_per_s']:>11.2f}{faces:>7}"
            )
    return {
        "pack": str(pack_dir),
        "detector": pack.manifest.detector.kind,
        "device": device,
        "rows": rows,
    }
