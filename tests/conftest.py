"""Markers by folder: tests/unit → unit, tests/integration → integration, and so on."""

from __future__ import annotations

from pathlib import Path

import pytest

_FOLDER_MARKERS = {"unit", "integration", "e2e", "gpu", "reliability", "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for folder in _FOLDER_MARKERS.intersection(parts):
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def insightface_images() -> Path:
    """The sample photos the insightface wheel ships (``t1.jpg``, ``Tom_Hanks_54745.png``)."""
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        pytest.skip("insightface is not installed (it is in the dev extra)")
    folder = Path(spec.origin).parent / "data" / "images"
    if not (folder / "t1.jpg").is_file():
        pytest.skip(f"insightface's sample images are not at {folder}")
    return folder


@pytest.fixture(scope="session")
def test_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default test pack: YuNet (vendored, O-Net landmarks) + a random-initialised r18."""
    from service.models.testpack import build_test_pack

    return build_test_pack(tmp_path_factory.mktemp("packs") / "test-r18", arch="r18", seed=0).root


@pytest.fixture(scope="session")
def mtcnn_test_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test pack of real MTCNN + the same random-initialised r18."""
    from service.models.testpack import build_test_pack

    folder = tmp_path_factory.mktemp("packs") / "test-mtcnn-r18"
    return build_test_pack(folder, arch="r18", seed=0, detector="mtcnn").root
