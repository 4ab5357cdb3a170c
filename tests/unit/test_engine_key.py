"""Engine keys: stable names, and engines built for something else refused before loading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from model_export.tensorrt.engine_key import (
    BatchProfile,
    EngineKey,
    Environment,
    ForeignEngine,
    check_engine,
    engine_path,
    read_key,
    write_key,
)

H100 = Environment("10.3.0", "NVIDIA H100 80GB HBM3", "9.0")
KEY = EngineKey("ab" * 32, "fp16", BatchProfile(1, 64, 256), H100)


def test_digest_is_stable_and_names_the_file() -> None:
    assert KEY.digest() == replace(KEY).digest()
    name = engine_path("/cache", KEY).name
    assert name.startswith("abababababab-fp16-b1-64-256-") and name.endswith(".engine")


@pytest.mark.parametrize(
    "other",
    [
        replace(KEY, onnx_sha256="cd" * 32),
        replace(KEY, precision="int8"),
        replace(KEY, profile=BatchProfile(1, 128, 256)),
        replace(KEY, environment=replace(H100, tensorrt_version="10.4.0")),
        replace(KEY, environment=replace(H100, gpu_name="NVIDIA A100-SXM4-80GB")),
        replace(KEY, environment=replace(H100, compute_capability="8.0")),
    ],
)
def test_every_field_changes_the_key(other: EngineKey) -> None:
    assert other.digest() != KEY.digest()
    assert engine_path("/c", other) != engine_path("/c", KEY)


def test_key_round_trips_through_the_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / KEY.file_name()
    engine.write_bytes(b"serialized engine")
    write_key(engine, KEY)
    assert read_key(engine) == KEY


def test_an_engine_from_another_gpu_and_tensorrt_is_refused_naming_both_sides() -> None:
    a100 = replace(KEY, environment=Environment("10.1.0", "NVIDIA A100-SXM4-80GB", "8.0"))
    with pytest.raises(ForeignEngine) as err:
        check_engine(a100, KEY, "r100.engine")
    message = str(err.value)
    assert "NVIDIA A100-SXM4-80GB" in message and "NVIDIA H100 80GB HBM3" in message
    assert "TensorRT 10.1.0" in message and "10.3.0" in message
    assert "Rebuild it" in message


def test_wrong_precision_or_profile_is_refused() -> None:
    with pytest.raises(ForeignEngine, match="built for int8, wanted fp16"):
        check_engine(replace(KEY, precision="int8"), KEY)
    with pytest.raises(ForeignEngine, match="batch profile 1/8/8, wanted 1/64/256"):
        check_engine(replace(KEY, profile=BatchProfile(1, 8, 8)), KEY)


def test_matching_engine_passes() -> None:
    check_engine(replace(KEY), KEY)


def test_an_engine_without_key_file_is_refused(tmp_path: Path) -> None:
    engine = tmp_path / "someone_elses.engine"
    engine.write_bytes(b"\x00")
    with pytest.raises(ForeignEngine, match="no key file"):
        read_key(engine)


def test_a_corrupt_key_file_is_refused(tmp_path: Path) -> None:
    engine = tmp_path / "x.engine"
    engine.with_name("x.engine.json").write_text('{"precision": "fp8"}')
    with pytest.raises(ForeignEngine, match="unreadable engine key"):
        read_key(engine)


@pytest.mark.parametrize(("lo", "opt", "hi"), [(0, 1, 1), (8, 4, 16), (1, 64, 32)])
def test_nonsense_profiles_are_refused(lo: int, opt: int, hi: int) -> None:
    with pytest.raises(ValueError, match="min <= opt <= max"):
        BatchProfile(lo, opt, hi)
