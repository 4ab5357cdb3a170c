"""``facerec models import``: an insightface pack folder or zip → a facerec model pack.

insightface's packs (``buffalo_l``, ``buffalo_s``, ``antelopev2``, …) are folders of ONNX
files without a manifest. Each file is recognised by its interface, not its name:

- a **recognizer** has one input ``(N, 3, S, S)`` and one output ``(N, E)``;
- an **SCRFD detector** has one input ``(N, 3, H, W)`` and 6, 9, 10 or 15 outputs;
- everything else (landmark, gender/age, swap models) is listed and left out.

The recognizer's preprocessing comes from ``facerec export inspect``'s structural reading of
its graph and is written into the manifest and into the file's own metadata.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from model_export.inspect import inspect_recognizer
from model_export.onnx_io import write_props
from service.errors import ModelPackError
from service.models.manifest import (
    INSIGHTFACE_LICENSE,
    DetectorSpec,
    Manifest,
    RecognizerSpec,
    ThresholdSpec,
)
from service.models.packs import ModelPack, file_ref, load_pack, write_manifest

__all__ = ["ImportReport", "import_pack", "safe_extract"]

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = 4 * 2**30  # uncompressed
MAX_ZIP_MEMBERS = 200
# insightface does not calibrate its packs for us; 0.3 is a common starting point for its
# R100/R50 recognizers at a low false-accept rate. `facerec eval calibrate` replaces it.
DEFAULT_THRESHOLD = 0.3


@dataclass
class ImportReport:
    pack: ModelPack
    detector: str
    recognizer: str
    ignored: list[str] = field(default_factory=list)


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip refusing absolute paths, ``..``, links and zip bombs."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ModelPackError(
                f"{archive.name}: {len(members)} entries; at most {MAX_ZIP_MEMBERS}"
            )
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise ModelPackError(f"{archive.name}: uncompressed size over {MAX_ZIP_BYTES} bytes")
        root = target.resolve()
        for member in members:
            name = member.filename
            dest = (root / name).resolve()
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if (
                name.startswith(("/", "\\"))
                or (root not in dest.parents and dest != root)
                or is_link
            ):
                raise ModelPackError(f"{archive.name}: unsafe entry {name!r}")
        zf.extractall(root)


def _classify(path: Path) -> str:
    """'recognizer', 'scrfd' or 'other', from the ONNX file's inputs and outputs."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in inits]
    if len(inputs) != 1:
        return "other"

    def dims(value: object) -> list[int | str]:
        shape = value.type.tensor_type.shape.dim  # type: ignore[attr-defined]
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape]

    in_dims = dims(inputs[0])
    if len(in_dims) != 4 or in_dims[1] != 3:
        return "other"
    outputs = list(proto.graph.output)
    if len(outputs) in (6, 9, 10, 15):
        return "scrfd"
    if len(outputs) == 1:
        out_dims = dims(outputs[0])
        square = (
            isinstance(in_dims[2], int) and in_dims[2] == in_dims[3] and in_dims[2] in (112, 128)
        )
        if len(out_dims) == 2 and isinstance(out_dims[1], int) and out_dims[1] >= 64 and square:
            return "recognizer"
    return "other"


def import_pack(source: str | Path, packs_dir: str | Path, name: str | None = None) -> ImportReport:
    """Copy the detector and recognizer of an insightface pack into ``packs_dir/name``."""
    src = Path(source)
    with tempfile.TemporaryDirectory() as tmp:
        if src.is_file() and zipfile.is_zipfile(src):
            safe_extract(src, Path(tmp))
            folder = Path(tmp)
            default_name = src.stem
        elif src.is_dir():
            folder = src
            default_name = src.name
        else:
            raise ModelPackError(f"{src} is neither a folder nor a zip file")
        files = sorted(p for p in folder.rglob("*.onnx") if p.is_file())
        kinds = {p: _classify(p) for p in files}
        recognizers = [p for p, k in kinds.items() if k == "recognizer"]
        detectors = [p for p, k in kinds.items() if k == "scrfd"]
        ignored = sorted(p.name for p, k in kinds.items() if k == "other")
        if len(recognizers) != 1 or len(detectors) != 1:
            raise ModelPackError(
                f"{src}: expected one recognizer and one SCRFD detector, found "
                f"{[p.name for p in recognizers]} and {[p.name for p in detectors]}"
            )
        pack_name = name or default_name
        root = Path(packs_dir) / pack_name
        if (root / "manifest.json").exists():
            raise ModelPackError(f"a pack named {pack_name!r} already exists in {packs_dir}")
        root.mkdir(parents=True, exist_ok=True)
        det = root / detectors[0].name
        rec = root / recognizers[0].name
        shutil.copyfile(detectors[0], det)
        shutil.copyfile(recognizers[0], rec)

    found = inspect_recognizer(rec)
    meta = found.proposed
    log.info("%s: %s", rec.name, found.reason)
    write_props(rec, meta.to_props())  # the file states its own preprocessing from now on
    manifest = Manifest(
        name=pack_name,
        detector=DetectorSpec(kind="scrfd", files={"model": file_ref(root, det)}),
        recognizer=RecognizerSpec(
            file=file_ref(root, rec),
            arch=meta.arch,
            embedding_size=meta.embedding_size,
            input_size=meta.input_width,
            input_mean=meta.input_mean,
            input_std=meta.input_std,
            color_order=meta.color_order,
            untrained=meta.random_init,
        ),
        verify_threshold=ThresholdSpec(
            value=DEFAULT_THRESHOLD,
            note="uncalibrated default; run `facerec eval calibrate` for your data and FAR",
        ),
        license=INSIGHTFACE_LICENSE,
        source=f"insightface pack {default_name}",
    )
    write_manifest(root, manifest)
    return ImportReport(load_pack(root, verify=True), det.name, rec.name, ignored)
