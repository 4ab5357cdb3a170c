"""``facerec bench …``: each prints a table and writes a JSON result with the machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.group("bench")
def bench_group() -> None:
    """Benchmarks: figures are measured, printed, and saved with the machine described."""


def _save(result: dict[str, Any], out: Path | None) -> None:
    from service.bench.machine import describe_machine

    result = {"machine": describe_machine(), **result}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {out}")


def _default_images() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise click.UsageError("give --images DIR (insightface's sample photos are not installed)")
    return [Path(spec.origin).parent / "data" / "images" / "t1.jpg"]


@bench_group.command("pipeline")
@click.option(
    "--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="folder of photos (default: insightface's t1.jpg)",
)
@click.option("--repeat", type=int, default=10, show_default=True)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--max-batch", type=int, default=64, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def pipeline_command(
    pack: Path,
    images: Path | None,
    repeat: int,
    concurrency: int,
    device: str,
    max_batch: int,
    json_out: Path | None,
) -> None:
    """Images/s and faces/s end to end, and insightface's own path on the same faces."""
    from service.bench.pipeline import bench_pipeline

    paths = (
        sorted(p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        if images
        else _default_images()
    )
    result = bench_pipeline(pack, paths, repeat, concurrency, device, max_batch)
    click.echo(f"{'':<26}{'images/s':>10}{'faces/s':>10}{'faces':>7}")
    for stage in ("end_to_end", "recognition_only"):
        for who in ("ours", "insightface"):
            r = result[stage][who]
            label = f"{stage} {who}"
            click.echo(
                f"{label:<26}{r['images_per_s']:>10.2f}{r['faces_per_s']:>10.2f}{r['faces']:>7}"
            )
        click.echo(f"{stage + ' ratio':<26}{result[stage]['ratio']:>10.2f}x")
    _save(result, json_out)


@bench_group.command("search")
@click.option("--gallery", "gallery_size", type=int, default=1_000_000, show_default=True)
@click.option("--queries", type=int, default=256, show_default=True)
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--batch-sizes", default="1,8,64", show_default=True)
@click.option("--dim", type=int, default=512, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def search_command(
    gallery_size: int, queries: int, k: int, batch_sizes: str, dim: int, json_out: Path | None
) -> None:
    """Search latency (p50/p99) and memory of the gallery index on random unit vectors."""
    from service.bench.search import bench_search

    sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    result = bench_search(gallery_size, queries, k, sizes, dim)
    click.echo(
        f"gallery {result['gallery']:,} × {dim}-d ({result['index_mb']} MB of vectors), built in "
        f"{result['build_s']} s; RSS {result['rss_before_mb']} → {result['rss_after_build_mb']} MB"
    )
    click.echo(f"{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'ms/query':>10}{'queries/s':>11}")
    for r in result["latency"]:
        click.echo(
            f"{r['batch']:>6}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['per_query_ms']:>10.3f}{r['queries_per_s']:>11.1f}"
        )
    _save(result, json_out)
