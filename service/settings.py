"""All settings, from ``FACEREC_*`` environment variables and an optional ``.env`` file.

A bad value stops the start with a message naming the variable (pydantic's validation
error lists each offending field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiKey", "Settings", "settings_from_options"]

Scope = Literal["recognize", "manage"]


class ApiKey(BaseModel):
    """A client key: who it is (for logs and the audit log), the secret, and what it may do.

    The secret is a ``SecretStr``: it prints as ``**********`` in any repr or dump.
    """

    name: str = Field(min_length=1, max_length=64)
    key: SecretStr = Field(min_length=16)
    scopes: list[Scope] = Field(min_length=1)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value is not echoed in the start-up error, so a
    # malformed FACEREC_API_KEYS (or token) never reaches a log; the field is still named
    model_config = SettingsConfigDict(
        env_prefix="FACEREC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # models
    pack: Path | None = Field(None, description="model pack folder (holds manifest.json)")
    packs_dir: Path = Field(Path("packs"), description="where `facerec models` keeps packs")
    device: str = Field("auto", description="cpu, cuda, cuda:N or auto (CUDA when present)")
    runtime: Literal["auto", "onnxruntime", "tensorrt", "torch", "openvino"] = Field(
        "auto",
        description="auto: TensorRT on a GPU where installed, else ONNX Runtime; openvino: CPU",
    )
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp16",
        description="recognizer precision (TensorRT; torch: fp32/fp16; openvino: fp32 exact, "
        "fp16 the CPU's bf16/f16 where it has one)",
    )
    torch_checkpoint: Path | None = Field(
        None, description="backbone.pth the recognizer was exported from (runtime torch)"
    )
    torch_cuda_graphs: bool = Field(True, description="runtime torch: one CUDA graph per bucket")
    torch_compile: bool = Field(
        False, description="runtime torch: TorchInductor (≈1.5× on R100; minutes to start)"
    )
    engine_cache_dir: Path = Field(Path("data/engines"), description="TensorRT engines, built once")
    threads: int = Field(
        0, ge=0, description="recognizer CPU threads (ONNX Runtime, OpenVINO; 0: all cores)"
    )
    detect_threads: int = Field(
        0, ge=0, description="detector CPU threads per ONNX Runtime session (YuNet, O-Net; 0: all)"
    )
    ort_spinning: bool = Field(
        False,
        description="ONNX Runtime CPU threads spin while waiting (ONNX Runtime's default); off: "
        "the detector's and recognizer's sessions do not take turns from each other",
    )

    # detection
    detector_device: str | None = Field(
        None, description="cpu, cuda, cuda:N, auto for the detector; unset: FACEREC_DEVICE"
    )
    det_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="detector score threshold; unset: the pack's (mtcnn 0.7, scrfd 0.5, yunet 0.6)",
    )
    landmarks: Literal["detector", "onet"] | None = Field(
        None,
        description="landmarks from the detector itself or MTCNN's O-Net on its boxes "
        "(YuNet, SCRFD); unset: the pack's choice (YuNet packs: onet)",
    )
    min_face_size: int = Field(20, ge=0)
    max_faces: int = Field(32, ge=1, description="faces kept per image, largest scores first")
    det_input_size: int = Field(
        640, ge=32, le=4096, description="SCRFD / YuNet network input (square)"
    )

    # verification default; the model pack's threshold applies when unset
    verify_threshold: float | None = Field(None, ge=-1.0, le=1.0)

    # input limits
    max_image_bytes: int = Field(15 * 2**20, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_image_side: int = Field(16_384, ge=1, description="longest side an image may declare")
    max_body_bytes: int = Field(40 * 2**20, ge=1024)
    max_images_per_request: int = Field(10, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)

    # batching
    embed_max_batch: int = Field(64, ge=1)
    embed_max_wait_ms: float = Field(2.0, ge=0)
    detect_max_batch: int = Field(8, ge=1)
    detect_max_wait_ms: float = Field(2.0, ge=0)
    embed_workers: int = Field(1, ge=1, le=16, description="recognizer calls in flight at once")
    detect_workers: int = Field(1, ge=1, le=64, description="detector calls in flight at once")
    max_queue: int = Field(2048, ge=1, description="items waiting per model before 503")

    # gallery
    data_dir: Path = Field(Path("data"), description="gallery database and index")
    index_device: Literal["cpu", "cuda"] = Field(
        "cpu", description="faiss gallery index: cpu, or cuda (faiss-gpu, else PyTorch exact)"
    )
    gallery_backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="faiss: SQLite + in-process FAISS; milvus: shared by replicas"
    )
    milvus_uri: str | None = Field(
        None, description="http://host:19530, or a Milvus Lite path (default data_dir/...)"
    )
    milvus_token: SecretStr | None = Field(None, description="user:password or API key")
    milvus_prefix: str = Field("facerec", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    milvus_index: str = Field("FLAT", description="template index: FLAT (exact), HNSW, ...")
    milvus_index_params: dict[str, Any] = Field(default_factory=dict)
    milvus_search_params: dict[str, Any] = Field(default_factory=dict)

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: list[ApiKey] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    console: bool = Field(True, description="serve the web console at /console")
    shutdown_timeout_s: float | None = Field(
        None, gt=0, description="seconds in-flight requests get at SIGTERM; unset: request timeout"
    )

    # security
    rate_limit_per_s: float = Field(
        0.0, ge=0.0, description="requests per second per API key (token bucket); 0: no limit"
    )
    rate_limit_burst: int = Field(
        20, ge=1, description="requests a key may make at once before the rate applies"
    )
    audit_log: Path | None = Field(
        None, description="JSON-lines audit log of gallery changes; default data_dir/audit.jsonl"
    )

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log if self.audit_log is not None else self.data_dir / "audit.jsonl"

    @field_validator("device", "detector_device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if (
            value is None
            or value in ("auto", "cpu", "cuda")
            or (value.startswith("cuda:") and value[5:].isdigit())
        ):
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.max_image_bytes > self.max_body_bytes:
            raise ValueError("max_image_bytes cannot exceed max_body_bytes")
        names = [k.name for k in self.api_keys]
        if len(set(names)) != len(names):
            raise ValueError("api_keys names must be unique")
        return self


def settings_from_options(**options: object) -> Settings:
    """Settings from the environment and ``.env``, with a command's given options on top
    (``None``: not given). For the command line: a bad value raises ``click.ClickException``
    with pydantic's message naming the field, so the command exits 1 with it, not a
    traceback."""
    import click
    from pydantic import ValidationError

    try:
        base = Settings().model_dump()
        given = {k: v for k, v in options.items() if v is not None}
        return Settings.model_validate({**base, **given})
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings:\n{exc}") from None
