"""``facerec eval`` through the pipeline on real images (insightface's samples, augmented)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import cli
from service.evaluation.datasets import read_bin, read_pairs, write_bin
from service.models.packs import load_pack


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    m = cv2.getRotationMatrix2D((56, 56), rng.uniform(-3, 3), rng.uniform(0.98, 1.02))
    m[:, 2] += rng.uniform(-1.5, 1.5, 2)
    out = cv2.warpAffine(crop, m, (112, 112), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def aligned_faces(insightface_images: Path, test_pack: Path) -> list[np.ndarray]:
    """Seven aligned 112×112 crops (BGR): the six of t1.jpg and Tom Hanks."""
    from service.recognition.pipeline import Pipeline
    from service.vision.align import align_faces
    from service.vision.detectors.base import DetectorConfig

    pipeline = Pipeline.from_pack(test_pack, device="cpu", detector=DetectorConfig(threshold=0.7))
    rgb = pipeline.decode((insightface_images / "t1.jpg").read_bytes())
    crops = list(align_faces(rgb, pipeline.detector.detect([rgb])[0]))
    crops.append(pipeline.decode((insightface_images / "Tom_Hanks_54745.png").read_bytes()))
    return [cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops]


@pytest.fixture(scope="module")
def bin_set(aligned_faces: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small set in insightface's .bin layout: genuine pairs are two augmentations of one
    crop, impostor pairs two different people; 140 pairs, half genuine."""
    rng = np.random.default_rng(0)
    images, same = [], []
    for i in range(140):
        a = int(rng.integers(len(aligned_faces)))
        shift = 0 if i % 2 == 0 else int(rng.integers(1, len(aligned_faces)))
        b = (a + shift) % len(aligned_faces)
        images += [_png(_augment(aligned_faces[a], rng)), _png(_augment(aligned_faces[b], rng))]
        same.append(a == b)
    path = tmp_path_factory.mktemp("eval") / "synthetic.bin"
    write_bin(path, images, same)
    return path


def test_bin_round_trip(bin_set: Path) -> None:
    data = read_bin(bin_set)
    assert len(data.images) == 280 and len(data.same) == 140 and data.aligned
    assert sum(data.same) == 70 and data.pairs[3] == (6, 7)
    assert cv2.imdecode(np.frombuffer(data.images[0], np.uint8), 1).shape == (112, 112, 3)


def test_a_bin_cannot_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("owned",))

    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([Evil()], [True])))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        read_bin(path)


def test_lfw_pairs_file(tmp_path: Path, aligned_faces: list[np.ndarray]) -> None:
    for name, n in (("Ada", 2), ("Bob", 1)):
        (tmp_path / name).mkdir()
        for i in range(1, n + 1):
            cv2.imwrite(str(tmp_path / name / f"{name}_{i:04d}.jpg"), aligned_faces[i])
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nAda\t1\t2\nAda\t1\tBob\t1\n")
    data = read_pairs(pairs, tmp_path)
    assert data.same == [True, False] and len(data.images) == 3
    assert data.pairs == [(0, 1), (0, 2)]


@pytest.mark.slow  # embeds the 280 images twice (--flip): 40-60 s on two busy cores
def test_eval_verify_reports_and_plots(bin_set: Path, test_pack: Path, tmp_path: Path) -> None:
    args = [
        "eval",
        "verify",
        "--pack",
        str(test_pack),
        "--bin",
        str(bin_set),
        "--device",
        "cpu",
        "--flip",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 140 and report["genuine"] == 70
    # the recognizer is untrained, but a crop and its slight augmentation stay close while
    # different faces do not (see testpack.py): the pairs of this set are separable
    assert report["accuracy"] > 0.9
    assert set(report["tar_at_far"]) == {"0.1"}  # 70 impostors: lower FARs are not measurable
    png = (tmp_path / "roc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow  # embeds the 280 images: 35-55 s on two busy cores
def test_calibrate_writes_the_threshold_into_the_pack(
    bin_set: Path, test_pack: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(test_pack, pack)
    args = [
        "eval",
        "calibrate",
        "--pack",
        str(pack),
        "--bin",
        str(bin_set),
        "--far",
        "0.1",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    spec = load_pack(pack, verify=True).manifest.verify_threshold
    assert spec.source == "calibrated" and spec.far == 0.1 and -1 <= spec.value <= 1
    too_low = CliRunner().invoke(cli, [*args[:-4], "--far", "1e-4", "--device", "cpu"])
    assert too_low.exit_code == 1 and "not measurable" in too_low.output


def test_eval_identify_with_distractors(
    aligned_faces: list[np.ndarray], test_pack: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    for role in ("gallery", "probes"):
        for i, face in enumerate(aligned_faces[:5]):
            folder = tmp_path / role / f"person{i}"
            folder.mkdir(parents=True)
            cv2.imwrite(str(folder / "0.png"), _augment(face, rng))
    distractors = tmp_path / "distractors"
    distractors.mkdir()
    for j in range(8):
        cv2.imwrite(str(distractors / f"{j}.png"), _augment(aligned_faces[5 + j % 2], rng))
    args = [
        "eval",
        "identify",
        "--pack",
        str(test_pack),
        "--gallery",
        str(tmp_path / "gallery"),
        "--probes",
        str(tmp_path / "probes"),
        "--distractors",
        str(distractors),
        "--aligned",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "identify.json").read_text())
    assert report["closed_set"]["rank1"] == 1.0 and report["closed_set"]["gallery"] == 5
    assert [r["distractors"] for r in report["with_distractors"]] == [0, 2, 4, 8]
