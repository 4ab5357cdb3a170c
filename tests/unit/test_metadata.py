"""The preprocessing contract survives a round trip and refuses what it cannot read."""

from __future__ import annotations

import pytest

from model_export.metadata import MetadataError, RecognizerMetadata


def test_round_trip_keeps_every_field() -> None:
    meta = RecognizerMetadata(
        arch="r100", embedding_size=512, checkpoint_sha256="ab" * 32, random_init=True, seed=7
    )
    props = meta.to_props()
    assert props["facerec.input_mean"] == "127.5"
    assert props["facerec.color_order"] == "RGB"
    assert props["facerec.random_init"] == "true"
    assert RecognizerMetadata.from_props(props) == meta


def test_foreign_keys_are_ignored() -> None:
    props = {**RecognizerMetadata(arch="r50", embedding_size=512).to_props(), "author": "x"}
    assert RecognizerMetadata.from_props(props).arch == "r50"


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("facerec.embedding_size", "many", "invalid"),
        ("facerec.random_init", "yes", "random_init"),
        ("facerec.color_order", "GBR", "color_order"),
        ("facerec.input_std", "0", "input_std"),
    ],
)
def test_bad_values_are_named(key: str, value: str, match: str) -> None:
    props = RecognizerMetadata(arch="r50", embedding_size=512).to_props()
    props[key] = value
    with pytest.raises(MetadataError, match=match):
        RecognizerMetadata.from_props(props)


def test_absent_metadata_points_to_inspect() -> None:
    with pytest.raises(MetadataError, match="facerec export inspect"):
        RecognizerMetadata.from_props({"producer": "mxnet"})


def test_missing_required_field_is_an_error() -> None:
    with pytest.raises(MetadataError):
        RecognizerMetadata.from_props({"facerec.arch": "r50"})
