"""Markers by folder: tests/unit → unit, tests/integration → integration, and so on."""

from __future__ import annotations

from pathlib import Path

import pytest

_FOLDER_MARKERS = {"unit", "integration", "e2e", "gpu"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for folder in _FOLDER_MARKERS.intersection(parts):
            item.add_marker(getattr(pytest.mark, folder))
