"""YuNet (+ O-Net landmarks) on ONNX Runtime's CUDA provider equals the CPU run."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.refine import ONetLandmarks, RefinedDetector
from service.vision.detectors.yunet import YuNet

CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")


def test_yunet_on_cuda_equals_cpu(insightface_images: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
    bgr = cv2.imread(str(insightface_images / "t1.jpg"))
    t1 = np.ascontiguousarray(bgr[:, :, ::-1])
    images = [t1, np.ascontiguousarray(t1[7:, 3:]), t1]
    config = DetectorConfig(min_face_size=0)
    cpu = RefinedDetector(YuNet(config=config), ONetLandmarks()).detect(images)
    gpu_detector = RefinedDetector(
        YuNet(config=config, providers=CUDA), ONetLandmarks(providers=CUDA)
    )
    gpu = gpu_detector.detect(images)
    for a_faces, b_faces in zip(cpu, gpu, strict=True):
        assert len(a_faces) == len(b_faces) == 6
        for a, b in zip(a_faces, b_faces, strict=True):
            assert np.abs(a.bbox - b.bbox).max() <= 0.5
            assert np.abs(a.landmarks - b.landmarks).max() <= 0.5
            assert abs(a.score - b.score) <= 1e-3
