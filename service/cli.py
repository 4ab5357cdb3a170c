"""The ``facerec`` command line. Sub-commands import what they need when they run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from model_export.cli import export_group
from service import __version__
from service.bench.cli import bench_group
from service.models.cli import models_group


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group()
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
    from pydantic import ValidationError

    from service.app import create_app
    from service.settings import Settings

    overrides = {"pack": pack, "host": host, "port": port, "data_dir": data_dir, "device": device}
    try:
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = Settings.model_validate({**Settings().model_dump(), **given})
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings:\n{exc}") from None
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.request_timeout_s),
    )


cli.add_command(export_group)
cli.add_command(models_group)
cli.add_command(bench_group)


def main() -> None:
    cli()
