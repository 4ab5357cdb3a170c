"""Load and verify a model pack folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from model_export.files import atomic_write_bytes, sha256_file
from model_export.metadata import RecognizerMetadata
from service.errors import ModelPackError
from service.models.manifest import FileRef, Manifest

__all__ = ["MANIFEST", "ModelPack", "load_pack", "write_manifest"]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelPack:
    root: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def model_id(self) -> str:
        """What makes embeddings comparable: the recognizer's file hash."""
        return f"{self.manifest.recognizer.arch}:{self.manifest.recognizer.file.sha256}"

    def path(self, ref: FileRef) -> Path:
        """The file a reference names, refusing anything outside the pack folder."""
        root = self.root.resolve()
        target = (root / ref.path).resolve()
        if root not in target.parents:
            raise ModelPackError(f"{ref.path!r} points outside the pack {root}")
        if not target.is_file():
            raise ModelPackError(f"pack {self.name}: {ref.path} is missing")
        return target

    def recognizer_metadata(self) -> RecognizerMetadata:
        spec = self.manifest.recognizer
        return RecognizerMetadata(
            arch=spec.arch,
            embedding_size=spec.embedding_size,
            input_mean=spec.input_mean,
            input_std=spec.input_std,
            color_order=spec.color_order,
            input_width=spec.input_size,
            input_height=spec.input_size,
            random_init=spec.untrained,
        )

    def files(self) -> dict[str, FileRef]:
        refs = {f"detector.{k}": v for k, v in self.manifest.detector.files.items()}
        refs["recognizer"] = self.manifest.recognizer.file
        return refs

    def verify(self) -> list[str]:
        """Problems found (missing files, hash mismatches); empty when the pack is intact."""
        problems = []
        for label, ref in self.files().items():
            try:
                path = self.path(ref)
            except ModelPackError as exc:
                problems.append(f"{label}: {exc.message}")
                continue
            digest = sha256_file(path)
            if digest != ref.sha256:
                problems.append(
                    f"{label}: {ref.path} has sha256 {digest[:12]}…, "
                    f"manifest says {ref.sha256[:12]}…"
                )
        return problems


def load_pack(folder: str | os.PathLike[str], verify: bool = False) -> ModelPack:
    root = Path(folder)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ModelPackError(f"{root} is not a model pack: no {MANIFEST}")
    try:
        manifest = Manifest.model_validate(json.loads(manifest_path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelPackError(f"{manifest_path} is not a valid manifest: {exc}") from exc
    pack = ModelPack(root, manifest)
    for ref in pack.files().values():
        pack.path(ref)
    if verify and (problems := pack.verify()):
        raise ModelPackError(f"pack {pack.name} failed verification: " + "; ".join(problems))
    return pack


def write_manifest(folder: str | os.PathLike[str], manifest: Manifest) -> Path:
    path = Path(folder) / MANIFEST
    text = json.dumps(manifest.model_dump(), indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode())
    return path


def file_ref(root: Path, path: Path) -> FileRef:
    return FileRef(path=str(path.relative_to(root)), sha256=sha256_file(path))
