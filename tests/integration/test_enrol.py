"""``facerec enrol DIR``: one identity per folder, skipped images explained, resumable."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from service.cli import cli
from service.gallery.gallery import FaissGallery
from service.models.packs import load_pack
from service.recognition.folder_enrolment import enrol_folder
from service.recognition.pipeline import Pipeline
from service.vision.detectors.base import DetectorConfig
from tests.helpers import T1_BOXES


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, insightface_images: Path) -> Path:
    """Six people cut out of t1.jpg, two crops each; a group photo; a broken file."""
    root = tmp_path_factory.mktemp("enrol")
    t1 = cv2.imread(str(insightface_images / "t1.jpg"))
    for i, (x1, y1, x2, y2) in enumerate(T1_BOXES):
        person = root / f"person{i}"
        person.mkdir()
        for j, margin in enumerate((40, 60)):
            crop = t1[max(0, y1 - margin) : y2 + margin, max(0, x1 - margin) : x2 + margin]
            cv2.imwrite(str(person / f"{j}.jpg"), crop)
    (root / "person0" / "group.jpg").write_bytes((insightface_images / "t1.jpg").read_bytes())
    (root / "person1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def test_enrol_cli_reports_skips(folder: Path, test_pack: Path, tmp_path: Path) -> None:
    args = [
        "enrol",
        str(folder),
        "--pack",
        str(test_pack),
        "--data-dir",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "6 identities, 12 faces enrolled" in result.output
    assert "too_many_faces" in result.output and "invalid_image" in result.output
    again = CliRunner().invoke(cli, args)
    assert "0 faces enrolled, 14 already enrolled (resumed)" in again.output


def test_an_interrupted_enrolment_resumes_without_duplicates(
    folder: Path, test_pack: Path, tmp_path: Path
) -> None:
    pack = load_pack(test_pack)
    pipeline = Pipeline.from_pack(test_pack, device="cpu", detector=DetectorConfig(threshold=0.5))
    gallery = FaissGallery(tmp_path, pack.model_id, 512)
    seen = 0

    def interrupt_after_five(n: int) -> None:
        nonlocal seen
        seen += n
        if seen == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        enrol_folder(folder, pipeline, gallery, interrupt_after_five)
    first = gallery.counts()
    summary = enrol_folder(folder, pipeline, gallery)
    assert summary.already_done == 5
    counts = gallery.counts()
    assert counts["faces"] == 12 and counts["identities"] == 6 and counts["indexed"] == 6
    assert first["faces"] < 12
    gallery.close()
