"""Model packs: import of insightface layouts, fetch over HTTP, list, verify, and loading.

The insightface packs are rebuilt here with their real file names and ONNX interfaces: a
random-initialised recognizer and an SCRFD-shaped detector where they are loaded, tiny
graphs with the right shapes for the files that are only classified and left out.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from model_export.onnx_export import export_onnx, recognizer_from
from model_export.onnx_io import read_metadata
from service.cli import cli
from service.errors import ModelPackError
from service.models.importer import import_pack, safe_extract
from service.models.packs import load_pack
from service.recognition.pipeline import Pipeline
from tests.scrfd_net import export_scrfd_like


def _shape_only(path: Path, in_shape: list[int], out_shape: list[int]) -> None:
    """A graph with the given interface (classification reads shapes only)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "stub",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    onnx.save(helper.make_model(graph), str(path))


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("parts")
    model, meta = recognizer_from("mbf", seed=1)
    rec = export_onnx(model, meta, folder / "rec.onnx")
    proto = onnx.load(str(rec))
    del proto.metadata_props[:]  # insightface's files carry no facerec metadata
    onnx.save(proto, str(rec))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = export_scrfd_like(folder / "det.onnx")
    return {"rec": rec, "det": det}


def _insightface_pack(root: Path, parts: dict[str, Path], layout: str) -> Path:
    names = {
        "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
        "buffalo_s": ("det_500m.onnx", "w600k_mbf.onnx"),
        "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
    }[layout]
    folder = root / layout
    folder.mkdir(parents=True)
    shutil.copyfile(parts["det"], folder / names[0])
    shutil.copyfile(parts["rec"], folder / names[1])
    _shape_only(folder / "1k3d68.onnx", [1, 3, 192, 192], [1, 3309])
    _shape_only(folder / "2d106det.onnx", [1, 3, 192, 192], [1, 212])
    _shape_only(folder / "genderage.onnx", [1, 3, 96, 96], [1, 3])
    return folder


@pytest.mark.parametrize("layout", ["buffalo_l", "buffalo_s", "antelopev2"])
def test_import_recognises_each_layout_by_shapes(
    layout: str, parts: dict[str, Path], tmp_path: Path
) -> None:
    source = _insightface_pack(tmp_path / "src", parts, layout)
    result = CliRunner().invoke(
        cli, ["models", "import", str(source), "--packs-dir", str(tmp_path / "packs")]
    )
    assert result.exit_code == 0, result.output
    assert "non-commercial research purposes only" in result.output
    assert "left out    1k3d68.onnx, 2d106det.onnx, genderage.onnx" in result.output
    pack = load_pack(tmp_path / "packs" / layout, verify=True)
    assert pack.manifest.detector.kind == "scrfd"
    assert pack.manifest.recognizer.embedding_size == 512
    assert (pack.manifest.recognizer.input_mean, pack.manifest.recognizer.input_std) == (
        127.5,
        127.5,
    )
    # the recognizer file now states its preprocessing itself
    assert read_metadata(pack.path(pack.manifest.recognizer.file)).input_std == 127.5


def test_imported_pack_runs_the_pipeline(
    parts: dict[str, Path], tmp_path: Path, insightface_images: Path
) -> None:
    report = import_pack(
        _insightface_pack(tmp_path / "src", parts, "buffalo_l"), tmp_path / "packs"
    )
    pipeline = Pipeline.from_pack(report.pack.root, device="cpu")
    faces = pipeline.faces((insightface_images / "t1.jpg").read_bytes())
    assert faces and all(f.embedding.shape == (512,) for f in faces)  # random SCRFD: junk boxes


def test_import_from_zip_and_zip_slip_refused(parts: dict[str, Path], tmp_path: Path) -> None:
    source = _insightface_pack(tmp_path / "src", parts, "buffalo_s")
    archive = tmp_path / "buffalo_s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in source.iterdir():
            zf.write(f, f"buffalo_s/{f.name}")
    assert import_pack(archive, tmp_path / "packs").pack.name == "buffalo_s"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../outside.onnx", b"x")
    with pytest.raises(ModelPackError, match="unsafe entry"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "outside.onnx").exists()


def test_a_folder_without_a_recognizer_is_refused(parts: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    shutil.copyfile(parts["det"], folder / "det_10g.onnx")
    with pytest.raises(ModelPackError, match="one recognizer and one SCRFD detector"):
        import_pack(folder, tmp_path / "packs")


def test_verify_names_a_tampered_file(parts: dict[str, Path], tmp_path: Path) -> None:
    report = import_pack(
        _insightface_pack(tmp_path / "src", parts, "antelopev2"), tmp_path / "packs"
    )
    runner = CliRunner()
    ok = runner.invoke(cli, ["models", "verify", str(report.pack.root)])
    assert ok.exit_code == 0 and "OK: 2 files" in ok.output
    with open(report.pack.root / "glintr100.onnx", "ab") as f:
        f.write(b"\0")
    bad = runner.invoke(cli, ["models", "verify", str(report.pack.root)])
    assert bad.exit_code == 1 and "recognizer: glintr100.onnx has sha256" in bad.output
    with pytest.raises(ModelPackError, match="failed verification"):
        load_pack(report.pack.root, verify=True)


def test_manifest_paths_cannot_leave_the_pack(parts: dict[str, Path], tmp_path: Path) -> None:
    report = import_pack(
        _insightface_pack(tmp_path / "src", parts, "buffalo_l"), tmp_path / "packs"
    )
    manifest = report.pack.root / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"w600k_r50.onnx"', '"../../etc/passwd"'))
    with pytest.raises(ModelPackError, match="outside the pack"):
        load_pack(report.pack.root)


@pytest.fixture
def zoo(tmp_path: Path, parts: dict[str, Path]) -> Iterator[str]:
    """A local model zoo on 127.0.0.1 serving antelopev2.zip, built here."""
    served = tmp_path / "zoo"
    served.mkdir()
    source = _insightface_pack(tmp_path / "src", parts, "antelopev2")
    with zipfile.ZipFile(served / "antelopev2.zip", "w") as zf:
        for f in source.iterdir():
            zf.write(f, f"antelopev2/{f.name}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_fetch_downloads_with_insightfaces_downloader_and_imports(zoo: str, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    args = ["models", "fetch", "antelopev2", "--base-url", zoo, "--packs-dir", str(packs)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "non-commercial research purposes only" in result.output
    load_pack(packs / "antelopev2", verify=True)
    listed = CliRunner().invoke(cli, ["models", "list", "--packs-dir", str(packs)])
    assert "antelopev2" in listed.output and "scrfd" in listed.output


def test_fetch_of_a_missing_pack_fails_cleanly(zoo: str, tmp_path: Path) -> None:
    args = ["models", "fetch", "buffalo_x", "--base-url", zoo, "--packs-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "could not download" in result.output


def test_test_pack_says_it_is_untrained(test_pack: Path, tmp_path: Path) -> None:
    pack = load_pack(test_pack, verify=True)
    assert pack.manifest.recognizer.untrained and pack.manifest.detector.kind == "yunet"
    assert "Apache-2.0" in pack.manifest.detector.license
    listed = CliRunner().invoke(cli, ["models", "list", "--packs-dir", str(test_pack.parent)])
    assert "UNTRAINED" in listed.output
