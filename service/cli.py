"""The ``facerec`` command line. Sub-commands import what they need when they run."""

from __future__ import annotations

import logging
import sys

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


cli.add_command(export_group)
cli.add_command(models_group)
cli.add_command(bench_group)


def main() -> None:
    cli()
