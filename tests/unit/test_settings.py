"""Settings from FACEREC_* variables; a bad value stops the start naming it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from service.cli import cli
from service.settings import Settings


def test_environment_and_json_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEREC_DEVICE", "cuda:1")
    monkeypatch.setenv(
        "FACEREC_API_KEYS", '[{"name": "app", "key": "0123456789abcdef", "scopes": ["recognize"]}]'
    )
    settings = Settings()
    assert settings.device == "cuda:1"
    assert settings.api_keys[0].scopes == ["recognize"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FACEREC_DEVICE", "gpu"),
        ("FACEREC_PORT", "eighty"),
        ("FACEREC_DET_THRESHOLD", "2"),
        ("FACEREC_API_KEYS", '[{"name": "x", "key": "short", "scopes": ["recognize"]}]'),
    ],
)
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    field = name.removeprefix("FACEREC_").lower()
    assert field in str(err.value)


def test_serve_refuses_to_start_on_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEREC_MAX_IMAGE_BYTES", "-5")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "max_image_bytes" in result.output
