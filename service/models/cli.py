"""``facerec models …``: import, fetch, list, verify and build model packs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from service.errors import ModelPackError

PACKS_DIR = click.option(
    "--packs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("FACEREC_PACKS_DIR", "packs"),
    show_default="$FACEREC_PACKS_DIR or ./packs",
)


@click.group("models")
def models_group() -> None:
    """Model packs: a detector, a recognizer and a manifest with hashes and license."""


def _report(report: object) -> None:
    from service.models.importer import ImportReport

    assert isinstance(report, ImportReport)
    pack = report.pack
    rec = pack.manifest.recognizer
    click.echo(f"pack {pack.name} at {pack.root}")
    click.echo(f"  detector    scrfd  {report.detector}")
    click.echo(
        f"  recognizer  {report.recognizer}  {rec.embedding_size}-d, {rec.color_order}, "
        f"(x - {rec.input_mean:g}) / {rec.input_std:g}"
    )
    if report.ignored:
        click.echo(f"  left out    {', '.join(report.ignored)}")
    click.echo(f"  threshold   {pack.manifest.verify_threshold.value} (uncalibrated default)")
    click.echo(f"LICENSE: {pack.manifest.license}")


@models_group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="pack name (default: the folder or zip name)")
@PACKS_DIR
def import_command(source: Path, name: str | None, packs_dir: Path) -> None:
    """Import an insightface pack folder or zip (buffalo_l, buffalo_s, antelopev2, …)."""
    from service.models.importer import import_pack

    try:
        _report(import_pack(source, packs_dir, name))
    except ModelPackError as exc:
        raise click.ClickException(exc.message) from None


@models_group.command("fetch")
@click.argument("name")
@click.option("--base-url", default=None, help="model zoo URL (default: insightface's)")
@PACKS_DIR
def fetch_command(name: str, base_url: str | None, packs_dir: Path) -> None:
    """Download a public insightface pack (e.g. antelopev2, buffalo_l) and import it."""
    from service.models.fetch import fetch_pack

    try:
        _report(fetch_pack(name, packs_dir, base_url))
    except ModelPackError as exc:
        raise click.ClickException(exc.message) from None


@models_group.command("list")
@PACKS_DIR
def list_command(packs_dir: Path) -> None:
    """List the packs in the packs folder."""
    from service.models.packs import load_pack

    folders = sorted(p.parent for p in packs_dir.glob("*/manifest.json"))
    if not folders:
        click.echo(f"no packs in {packs_dir}")
        return
    for folder in folders:
        try:
            m = load_pack(folder).manifest
        except ModelPackError as exc:
            click.echo(f"{folder.name:<20} BROKEN: {exc.message}")
            continue
        note = "  UNTRAINED" if m.recognizer.untrained else ""
        click.echo(
            f"{m.name:<20} {m.detector.kind:<6} {m.recognizer.arch:<8} "
            f"{m.recognizer.embedding_size}-d  threshold {m.verify_threshold.value}{note}"
        )


@models_group.command("verify")
@click.argument("pack", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_command(pack: Path) -> None:
    """Check every file of PACK against the sha256 in its manifest."""
    from service.models.packs import load_pack

    try:
        loaded = load_pack(pack)
    except ModelPackError as exc:
        raise click.ClickException(exc.message) from None
    problems = loaded.verify()
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"OK: {len(loaded.files())} files of {loaded.name} match their hashes")


DETECTOR = click.option(
    "--detector",
    type=click.Choice(["yunet", "mtcnn"]),
    default="yunet",
    show_default=True,
    help="yunet: vendored with facerec (Apache-2.0), O-Net landmarks; mtcnn: MIT, slower",
)


@models_group.command("build-test-pack")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@DETECTOR
@click.option("--arch", default="r18", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def build_test_pack_command(out: Path, detector: str, arch: str, seed: int) -> None:
    """A pack needing no downloads: a real detector + an UNTRAINED recognizer (for trying)."""
    from service.models.testpack import build_test_pack

    pack = build_test_pack(out, arch, seed, detector)  # type: ignore[arg-type]
    click.echo(f"pack {pack.name} at {pack.root}: {detector} + untrained {arch} (seed {seed})")
    click.echo(f"LICENSE: {pack.manifest.license}")
    click.echo("UNTRAINED: its similarities mean nothing about faces; for tests and trials only.")


@models_group.command("build-pack")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@DETECTOR
@click.option(
    "--recognizer",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="ONNX recognizer: exported by `facerec export onnx`, or an insightface file",
)
@click.option("--name", default=None, help="pack name (default: the folder name)")
@click.option("--arch", default=None, help="recognizer architecture, where its file lacks it")
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 1.0),
    default=None,
    help="verify threshold (default: uncalibrated 0.3; `facerec eval calibrate` sets one)",
)
def build_pack_command(
    out: Path,
    detector: str,
    recognizer: Path,
    name: str | None,
    arch: str | None,
    threshold: float | None,
) -> None:
    """A pack of a detector shipped with facerec and your own recognizer."""
    from service.models.build import build_pack

    try:
        pack = build_pack(
            out,
            recognizer,
            detector,  # type: ignore[arg-type]
            name=name,
            arch=arch,
            threshold=threshold,
        )
    except ModelPackError as exc:
        raise click.ClickException(exc.message) from None
    m = pack.manifest
    rec = m.recognizer
    click.echo(f"pack {pack.name} at {pack.root}")
    click.echo(f"  detector    {m.detector.kind}  (landmarks: {m.detector.landmarks})")
    click.echo(
        f"  recognizer  {rec.file.path}  {rec.arch}, {rec.embedding_size}-d, {rec.color_order}, "
        f"(x - {rec.input_mean:g}) / {rec.input_std:g}"
    )
    click.echo(f"  threshold   {m.verify_threshold.value} ({m.verify_threshold.note})")
    click.echo(f"LICENSE: {m.license}")
    if rec.untrained:
        click.echo("UNTRAINED: its similarities mean nothing about faces.")
